"""Byte-order sorting of distinct strings given as Arrow-style ``offsets`` and ``data``.

The strings are ordered by their first 8 bytes packed into a big-endian uint64 (one integer sort
instead of millions of string comparisons); runs that tie on those bytes are ordered by the next
8 bytes, and so on, and short runs by plain byte comparison. Shorter strings pad with zero bytes,
so a tie between padded keys is always settled by the byte comparison.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT

SMALL_RUN = 16  # runs this short are insertion-sorted by full comparison


@njit(inline="always", **JIT)
def _key(offsets: np.ndarray, data: np.ndarray, i: int, depth: int) -> np.uint64:
    """Bytes ``depth .. depth + 7`` of string ``i``, big-endian, zero-padded."""
    key = np.uint64(0)
    start, end = offsets[i] + depth, offsets[i + 1]
    for j in range(8):
        key <<= np.uint64(8)
        if start + j < end:
            key |= np.uint64(data[start + j])
    return key


@njit(inline="always", **JIT)
def _less(offsets: np.ndarray, data: np.ndarray, a: int, b: int) -> bool:
    """String ``a`` < string ``b`` in byte order."""
    a0, b0 = offsets[a], offsets[b]
    la, lb = offsets[a + 1] - a0, offsets[b + 1] - b0
    for k in range(min(la, lb)):
        if data[a0 + k] != data[b0 + k]:
            return data[a0 + k] < data[b0 + k]
    return la < lb


@njit(**JIT)
def _insertion_sort(order: np.ndarray, lo: int, hi: int, offsets: np.ndarray, data: np.ndarray) -> None:
    for a in range(lo + 1, hi):
        x = order[a]
        b = a - 1
        while b >= lo and _less(offsets, data, x, order[b]):
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = x


@njit(**JIT)
def sort_order(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """The permutation that sorts the strings in byte order (the order of ``pc.array_sort_indices``
    for UTF-8; equal strings keep their input order)."""
    n = offsets.size - 1
    keys = np.empty(n, np.uint64)
    for i in range(n):
        keys[i] = _key(offsets, data, i, 0)
    order = np.argsort(keys, kind="mergesort")
    keys = keys[order]  # from here on, keys[k] belongs to order[k]
    # Runs still tied, with the depth their first bytes agree to: (start, end, depth).
    stack = [(0, 0, 0)]
    stack.pop()
    _push_ties(order, keys, 0, n, 8, offsets, data, stack)
    while stack:
        lo, hi, depth = stack.pop()
        run = order[lo:hi].copy()
        run_keys = np.empty(hi - lo, np.uint64)
        for k in range(hi - lo):
            run_keys[k] = _key(offsets, data, run[k], depth)
        sub = np.argsort(run_keys, kind="mergesort")
        for k in range(hi - lo):
            order[lo + k] = run[sub[k]]
            keys[lo + k] = run_keys[sub[k]]
        _push_ties(order, keys, lo, hi, depth + 8, offsets, data, stack)
    return order


@njit(**JIT)
def _push_ties(order, keys, lo, hi, depth, offsets, data, stack) -> None:
    """Settle or queue each run of equal ``keys`` in ``order[lo:hi]``: short runs, or runs whose
    strings all end before ``depth``, by insertion sort; longer ones for the next 8 bytes."""
    i = lo
    while i < hi:
        j = i + 1
        while j < hi and keys[j] == keys[i]:
            j += 1
        if j - i > 1:
            longest = 0
            for k in range(i, j):
                longest = max(longest, offsets[order[k] + 1] - offsets[order[k]])
            if j - i <= SMALL_RUN or longest <= depth:
                _insertion_sort(order, i, j, offsets, data)
            else:
                stack.append((i, j, depth))
        i = j
