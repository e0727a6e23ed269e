"""Numba options in one place: compiled once and cached on disk, GIL released for server threads."""

JIT = dict(nopython=True, nogil=True, cache=True)
