"""Linear-time stable orderings over dense integer codes (counting sorts), and run helpers."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT
from .keys import composite_keys


DIGIT_BITS = 12  # 4,096 counters: a pass's counting stays in cache however many buckets there are
ONE_PASS_BUCKETS = 1 << 16


@njit(**JIT)
def counting_order(keys: np.ndarray, n_buckets: int, order: np.ndarray) -> np.ndarray:
    """Reorder ``order`` stably by ``keys[order]``; keys lie in ``[0, n_buckets)``.

    Chaining calls from the least to the most significant key gives a lexicographic order
    (an LSD radix sort whose digits are whole codes), in O(n + n_buckets) per call. Many buckets
    (millions of parties) are sorted by ``DIGIT_BITS``-bit digits, least significant first, so that
    the counters fit in cache instead of missing it on every element. The result may be ``order``
    itself (when the keys are all equal).
    """
    if n_buckets <= ONE_PASS_BUCKETS:
        return _key_pass(keys[order], order, 0, -1, max(n_buckets, 1))[1]
    sorted_keys = keys[order]
    shift = 0
    while (n_buckets - 1) >> shift:
        sorted_keys, order = _key_pass(sorted_keys, order, shift, (1 << DIGIT_BITS) - 1, 1 << DIGIT_BITS)
        shift += DIGIT_BITS
    return order


@njit(**JIT)
def sort_keys(keys: np.ndarray, n_buckets: int, payload: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``keys`` (in ``[0, n_buckets)``) in ascending order, stably, with ``payload`` (empty, or one
    value per key) moved along.

    An LSD radix sort whose passes move the keys themselves (and the payload), so that no
    permutation is gathered through at random between passes: one pass up to
    ``ONE_PASS_BUCKETS`` buckets, else as few passes of at most ``DIGIT_BITS`` bits as cover the
    keys, skipping a digit that every key shares. The result may be the input arrays themselves.
    """
    if n_buckets <= ONE_PASS_BUCKETS:
        return _key_pass(keys, payload, 0, -1, max(n_buckets, 1))
    bits = 0
    while (n_buckets - 1) >> bits:
        bits += 1
    passes = (bits + DIGIT_BITS - 1) // DIGIT_BITS
    digit = (bits + passes - 1) // passes
    for p in range(passes):
        keys, payload = _key_pass(keys, payload, p * digit, (1 << digit) - 1, 1 << digit)
    return keys, payload


@njit(**JIT)
def _key_pass(keys: np.ndarray, payload: np.ndarray, shift: int, mask: int,
              n_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """One stable counting pass of ``keys`` (and ``payload``, when not empty) by the digit
    ``(key >> shift) & mask`` in ``[0, n_digits)``; the inputs themselves when every key has the
    same digit."""
    counts = np.zeros(n_digits + 1, np.int64)
    for i in range(keys.size):
        counts[((keys[i] >> shift) & mask) + 1] += 1
    if counts.max() == keys.size:
        return keys, payload
    for k in range(n_digits):
        counts[k + 1] += counts[k]
    out_keys = np.empty_like(keys)
    out_payload = np.empty_like(payload)
    carry = payload.size > 0
    for i in range(keys.size):
        k = (keys[i] >> shift) & mask
        c = counts[k]
        out_keys[c] = keys[i]
        if carry:
            out_payload[c] = payload[i]
        counts[k] = c + 1
    return out_keys, out_payload


@njit(**JIT)
def distinct_sorted_pairs(
    first: np.ndarray, second: np.ndarray, n_first: int, n_second: int
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (first, second) pairs, in ascending (first, second) order: the pairs as keys
    ``first * n_second + second`` (codes below 3e9 each fit an int64), sorted, made distinct."""
    width = max(n_second, 1)
    keys, _ = sort_keys(composite_keys(first, second, width), max(n_first, 1) * width, np.empty(0, np.int64))
    n = 0
    for i in range(keys.size):
        if i == 0 or keys[i] != keys[i - 1]:
            n += 1
    out_first = np.empty(n, first.dtype)
    out_second = np.empty(n, second.dtype)
    k = -1
    for i in range(keys.size):
        if i == 0 or keys[i] != keys[i - 1]:
            k += 1
            out_first[k] = keys[i] // width
            out_second[k] = keys[i] % width
    return out_first, out_second


def csr_offsets(group: np.ndarray, n_groups: int) -> np.ndarray:
    """Offsets of a CSR relation whose rows are sorted by ``group``."""
    offsets = np.zeros(n_groups + 1, np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups), out=offsets[1:])
    return offsets
