"""Keep freed memory in the process for the next request instead of handing it back to the OS.

glibc serves every block above 32 MiB with its own ``mmap`` and unmaps it on ``free``, trims the
top of its heap, and gives each new thread an arena of its own whose 64 MiB heaps are unmapped
once empty; so each computation faults its pages in again, and the kernel zeroes them: on the
virtual machines measured here up to 2–3 s of system time in a 6 s computation at size XL, more in
a server's worker thread than in the main thread. ``keep_freed_memory`` makes glibc keep what it
frees: one arena for every thread, no ``mmap`` for large blocks, no trimming. Arrow's buffers are
then allocated from the same heap (its system pool instead of mimalloc, which also hands freed
memory back after a short delay). The process's resident size stays at its high-water mark
between requests.

Threads that allocated before the call keep arenas of their own, which later threads may be
given too, and importing NumPy or Arrow starts threads; so entry points call this first, before
those imports (``licensecore.__main__``, ``bench.probe``). Called later it still keeps the main
arena's memory, not necessarily the workers'.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_NEVER = -1  # mallopt takes an int; glibc reads the trim threshold as size_t: -1 is SIZE_MAX


def keep_freed_memory() -> bool:
    """Tune glibc's malloc and Arrow's default pool as described above; False (and no change)
    where it is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: nothing to tune
        return False
    if not all(mallopt(option, value) == 1 for option, value in (
            (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER))):
        return False
    import pyarrow as pa  # after mallopt: importing Arrow starts threads

    pa.set_memory_pool(pa.system_memory_pool())
    return True
