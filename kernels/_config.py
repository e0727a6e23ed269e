"""Numba options in one place: compiled once and cached on disk, GIL released for server threads."""

JIT = dict(nogil=True, cache=True)  # for njit, which is always nopython
