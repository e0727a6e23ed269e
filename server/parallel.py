"""Independent Arrow and Numba steps of one request, run side by side.

Arrow compute functions and the ``nogil`` kernels release the GIL, so a few threads use every core
for steps that do not depend on each other (one id kind's dictionary and another's, one output
column and another). Tasks given to the step pool never wait on it, so requests sharing it cannot
deadlock; a step may split its own work into parts on the part pool, whose tasks wait on nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PARTS = os.cpu_count() or 1  # how many parts a step splits its work into
_POOL = ThreadPoolExecutor(max_workers=max(PARTS, 2) - 1, thread_name_prefix="licensecore-step")
_PARTS_POOL = ThreadPoolExecutor(max_workers=PARTS, thread_name_prefix="licensecore-part")


def run_all(*steps: Callable[[], Any]) -> list[Any]:
    """The results of ``steps`` in order: the first runs in the calling thread, the others in the
    pool (put the longest first). The first exception raised by a step is raised."""
    futures = [_POOL.submit(step) for step in steps[1:]]
    try:
        first = steps[0]()
    finally:
        results = [future.result() for future in futures]  # wait: no step outlives the call
    return [first, *results]


def run_parts(part: Callable[[int], Any], parts: int = PARTS) -> list[Any]:
    """``[part(0), ..., part(parts - 1)]``, run side by side; ``part`` must not use either pool."""
    if parts == 1:
        return [part(0)]
    return list(_PARTS_POOL.map(part, range(parts)))


def run_largest_first(steps: Sequence[Callable[[], Any]], sizes: Sequence[float]) -> list[Any]:
    """The results of ``steps`` in order, run side by side starting with the largest (so that the
    threads finish about together); the steps must not use either pool."""
    futures = {i: _PARTS_POOL.submit(steps[i]) for i in sorted(range(len(steps)), key=lambda i: -sizes[i])}
    return [futures[i].result() for i in range(len(steps))]
