"""Linear-time stable orderings over dense integer codes (counting sorts), and run helpers."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT


DIGIT_BITS = 12  # 4,096 counters: a pass's counting stays in cache however many buckets there are
ONE_PASS_BUCKETS = 1 << 16


@njit(**JIT)
def counting_order(keys: np.ndarray, n_buckets: int, order: np.ndarray) -> np.ndarray:
    """Reorder ``order`` stably by ``keys[order]``; keys lie in ``[0, n_buckets)``.

    Chaining calls from the least to the most significant key gives a lexicographic order
    (an LSD radix sort whose digits are whole codes), in O(n + n_buckets) per call. Many buckets
    (millions of parties) are sorted by ``DIGIT_BITS``-bit digits, least significant first, so that
    the counters fit in cache instead of missing it on every element.
    """
    if n_buckets <= ONE_PASS_BUCKETS:
        return _pass(keys[order], order, 0, -1, n_buckets)[1]
    sorted_keys = keys[order]
    shift = 0
    while (n_buckets - 1) >> shift:
        sorted_keys, order = _pass(sorted_keys, order, shift, (1 << DIGIT_BITS) - 1, 1 << DIGIT_BITS)
        shift += DIGIT_BITS
    return order


@njit(**JIT)
def _pass(
    keys: np.ndarray, order: np.ndarray, shift: int, mask: int, n_digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """One stable counting pass of (keys, order) by the digit ``(key >> shift) & mask``, which
    lies in ``[0, n_digits)`` (mask -1: the whole key)."""
    counts = np.zeros(n_digits + 1, np.int64)
    for i in range(keys.size):
        counts[((keys[i] >> shift) & mask) + 1] += 1
    for k in range(n_digits):
        counts[k + 1] += counts[k]
    out_keys = np.empty_like(keys)
    out = np.empty_like(order)
    for i in range(keys.size):
        k = (keys[i] >> shift) & mask
        out_keys[counts[k]] = keys[i]
        out[counts[k]] = order[i]
        counts[k] += 1
    return out_keys, out


@njit(**JIT)
def distinct_sorted_pairs(
    first: np.ndarray, second: np.ndarray, n_first: int, n_second: int
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (first, second) pairs, in ascending (first, second) order."""
    order = np.arange(first.size)
    order = counting_order(second, n_second, order)
    order = counting_order(first, n_first, order)
    # One gather into sorted order, so the scans below read sequentially.
    sorted_first = first[order]
    sorted_second = second[order]
    n = 0
    for i in range(order.size):
        if i == 0 or sorted_first[i] != sorted_first[i - 1] or sorted_second[i] != sorted_second[i - 1]:
            n += 1
    out_first = np.empty(n, first.dtype)
    out_second = np.empty(n, second.dtype)
    k = -1
    for i in range(order.size):
        if i == 0 or sorted_first[i] != sorted_first[i - 1] or sorted_second[i] != sorted_second[i - 1]:
            k += 1
            out_first[k] = sorted_first[i]
            out_second[k] = sorted_second[i]
    return out_first, out_second


def csr_offsets(group: np.ndarray, n_groups: int) -> np.ndarray:
    """Offsets of a CSR relation whose rows are sorted by ``group``."""
    offsets = np.zeros(n_groups + 1, np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups), out=offsets[1:])
    return offsets
