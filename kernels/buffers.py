"""A growable int64 buffer for kernels whose output size is only known at the end."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT


@njit(**JIT)
def push(buf: np.ndarray, n: int, value: int) -> np.ndarray:
    """Store ``value`` at ``buf[n]``, doubling the buffer when full; returns the buffer."""
    if n == buf.size:
        grown = np.empty(buf.size * 2 + 16, buf.dtype)
        grown[:n] = buf[:n]
        buf = grown
    buf[n] = value
    return buf
