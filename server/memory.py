"""Keep freed memory in the process for the next request instead of handing it back to the OS.

glibc serves every block above 32 MiB with its own ``mmap`` and unmaps it on ``free``, so each
large NumPy array of the next computation faults all its pages in again; on the virtual machines
measured here that costs about 0.7 s per GB, a quarter of a computation at size XL. Arrow's own
allocator (mimalloc) already keeps its memory. ``keep_freed_memory`` makes glibc do the same:
one arena, no ``mmap`` for large blocks, and no trimming below 2 GiB of free heap. The process's
resident size then stays at its high-water mark between requests (as with Arrow's allocator).
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_KEEP_BYTES = 2**31 - 1  # mallopt takes an int


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as described above; False (and no change) where it is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: nothing to tune
        return False
    return all(mallopt(option, value) == 1 for option, value in (
        (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _KEEP_BYTES)))
