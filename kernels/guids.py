"""Ids that are canonical GUIDs, as 128-bit integers: parsed, made distinct and printed back.

Directory, device-management and SAM ids are nearly always GUIDs (36 lowercase hex characters in
8-4-4-4-12 groups). For those, (hi, lo) = the 32 hex digits is a bijection onto the strings, and
integer order is the strings' byte order (``-`` sits at the same places; ``0-9`` sort before
``a-f``), so hash tables and sorts of integer pairs do what a string dictionary would, without
touching string bytes again. Parsing checks and converts 8 characters at a time in a 64-bit word
(SWAR: per-byte arithmetic with no carry between bytes). The pairs are then partitioned by their
high bits, in order (one counting pass, one scatter), and each partition is made distinct and
sorted on its own: its hash table fits in cache, where one table for all the ids (about 100 MB at
millions of ids) made every probe a cache miss, and laid end to end the partitions are sorted.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT

GUID_LENGTH = 36
_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)  # the greatest uint64: where a running minimum starts
_MIX = np.uint64(0x9E3779B97F4A7C15)
_ONES = np.uint64(0x0101010101010101)  # 1 in each byte of a word
_LOW = np.uint64(0x0F) * _ONES
_HIGH = np.uint64(0x80) * _ONES


@njit(inline="always", **JIT)
def _word(row: np.ndarray, k: int) -> np.uint64:
    """Bytes ``k .. k + 3`` of ``row`` as a little-endian integer (LLVM makes it one load when ``k``
    is a constant)."""
    return (np.uint64(row[k]) | (np.uint64(row[k + 1]) << np.uint64(8))
            | (np.uint64(row[k + 2]) << np.uint64(16)) | (np.uint64(row[k + 3]) << np.uint64(24)))


@njit(inline="always", **JIT)
def _hex8(x: np.uint64) -> tuple[np.uint64, np.uint64]:
    """The value of the 8 characters in ``x`` (its low byte is the first, most significant digit),
    and a word that is 0 exactly when each of them is a lowercase hex digit.

    Per byte, with no carry between bytes: ``v`` is the digit value of ``0-9``/``a-f`` and at most 24
    for any byte; a byte is a digit exactly when ``v < 16`` and ``v`` spelled as a digit is the byte.
    """
    v = (x & _LOW) + np.uint64(9) * ((x >> np.uint64(6)) & _ONES)
    letter = ((v + np.uint64(0x76) * _ONES) & _HIGH) >> np.uint64(7)  # 1 where v > 9
    spelled = v + np.uint64(0x30) * _ONES + np.uint64(39) * letter  # v + '0', or v - 10 + 'a'
    bad = ((v + np.uint64(0x70) * _ONES) & _HIGH) | (spelled ^ x)  # v >= 16, or another byte
    # Gather the 8 nibbles, first byte's highest: pairs of bytes, then of 16-bit, then of 32-bit lanes.
    v = ((v << np.uint64(4)) | (v >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = ((v << np.uint64(8)) | (v >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = ((v << np.uint64(16)) | (v >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    return v, bad


@njit(**JIT)
def parse(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray,
          hi: np.ndarray, lo: np.ndarray) -> bool:
    """Parse string ``i`` (where ``valid[i]``; all when ``valid`` is empty) into ``hi[i], lo[i]``.

    False when any valid string is not a canonical lowercase GUID (the outputs are then garbage).
    """
    n = offsets.size - 1
    errors = 0
    for i in range(n):
        s = offsets[i]
        if (valid.size and not valid[i]) or offsets[i + 1] - s != GUID_LENGTH:
            hi[i] = 0
            lo[i] = 0
            errors += 0 if valid.size and not valid[i] else 1
            continue
        row = data[s:s + GUID_LENGTH]  # constant indices into it: no negative-index wrap, so word loads
        w0, bad0 = _hex8(_word(row, 0) | (_word(row, 4) << np.uint64(32)))
        w1, bad1 = _hex8(_word(row, 9) | (_word(row, 14) << np.uint64(32)))
        w2, bad2 = _hex8(_word(row, 19) | (_word(row, 24) << np.uint64(32)))
        w3, bad3 = _hex8(_word(row, 28) | (_word(row, 32) << np.uint64(32)))
        dashes = (row[8] == 45) & (row[13] == 45) & (row[18] == 45) & (row[23] == 45)
        hi[i] = (w0 << np.uint64(32)) | w1
        lo[i] = (w2 << np.uint64(32)) | w3
        errors += 0 if dashes and (bad0 | bad1 | bad2 | bad3) == 0 else 1
    return errors == 0


PARTITION_BITS = 10  # up to 1,024 partitions: one's rows and hash table stay in the L2 cache


@njit(inline="always", **JIT)
def _slot(h: np.uint64, w: np.uint64, shift: np.uint64) -> np.int64:
    return np.int64(((h ^ (w * _MIX)) * _MIX) >> shift)


@njit(inline="always", **JIT)
def _find_or_add(table: np.ndarray, mask: int, shift: np.uint64, seen_hi: np.ndarray, seen_lo: np.ndarray,
                 d: int, h: np.uint64, w: np.uint64) -> int:
    """The number of the pair ``(h, w)`` in an open-addressing ``table`` (a slot holds -1 or a
    number into ``seen_hi/seen_lo``), the pair added as number ``d`` when new; -1 when it is new
    and ``seen_hi`` is full."""
    s = _slot(h, w, shift)
    while True:
        e = table[s]
        if e < 0:
            if d == seen_hi.size:
                return -1
            table[s] = d
            seen_hi[d] = h
            seen_lo[d] = w
            return d
        if seen_hi[e] == h and seen_lo[e] == w:
            return e
        s = (s + 1) & mask


@njit(**JIT)
def hi_range(hi: np.ndarray, valid: np.ndarray) -> tuple[np.uint64, np.uint64, np.int64]:
    """The least and greatest ``hi`` of the valid rows, and how many rows are valid."""
    least, greatest, count = _MAX, np.uint64(0), 0
    for i in range(hi.size):
        if valid[i]:
            least = min(least, hi[i])
            greatest = max(greatest, hi[i])
            count += 1
    return least, greatest, count


@njit(**JIT)
def partition_shift(least: np.uint64, greatest: np.uint64) -> np.uint64:
    """The shift that maps ``hi - least`` onto at most ``2 ** PARTITION_BITS`` partitions, in
    ``hi`` order: so partitions of sorted pairs are sorted, whatever range the GUIDs span."""
    span = greatest - least
    shift = np.uint64(0)
    while (span >> shift) >= np.uint64(1 << PARTITION_BITS):
        shift += np.uint64(1)
    return shift


@njit(**JIT)
def partition_counts(hi: np.ndarray, valid: np.ndarray, least: np.uint64, shift: np.uint64,
                     counts: np.ndarray) -> None:
    """Add to ``counts[k]`` how many valid rows fall in partition ``k``."""
    for i in range(hi.size):
        if valid[i]:
            counts[np.int64((hi[i] - least) >> shift)] += 1


@njit(**JIT)
def scatter(hi: np.ndarray, lo: np.ndarray, valid: np.ndarray, first_row: int, least: np.uint64,
            shift: np.uint64, cursor: np.ndarray, out_hi: np.ndarray, out_lo: np.ndarray,
            out_row: np.ndarray) -> None:
    """Copy each valid row's pair and row number (``first_row`` + its index) to its partition's
    next place, ``cursor[k]`` (advanced): rows keep their order within a partition."""
    for i in range(hi.size):
        if valid[i]:
            k = np.int64((hi[i] - least) >> shift)
            c = cursor[k]
            out_hi[c] = hi[i]
            out_lo[c] = lo[i]
            out_row[c] = first_row + i
            cursor[k] = c + 1


@njit(**JIT)
def distinct_partitions(bounds: np.ndarray, first: int, last: int, hi: np.ndarray, lo: np.ndarray,
                        local: np.ndarray, distinct: np.ndarray) -> None:
    """Make partitions ``first .. last - 1`` distinct (partition ``k`` = rows ``bounds[k] ..
    bounds[k + 1]`` of ``hi``/``lo``): ``distinct[k]`` = how many distinct pairs, ``local[r]`` = the
    rank of row ``r``'s pair among them, and the sorted distinct pairs overwrite the partition's
    first ``distinct[k]`` places of ``hi``/``lo`` (its rows are not needed after).

    One open-addressing hash table (slots hold the index of a first-seen pair) per partition, sized
    for the partition, so its probes stay in cache.
    """
    most = 0
    for k in range(first, last):
        most = max(most, bounds[k + 1] - bounds[k])
    bits = 1
    while (1 << bits) < 2 * most:
        bits += 1
    table = np.empty(1 << bits, np.int64)
    seen_hi = np.empty(most, np.uint64)
    seen_lo = np.empty(most, np.uint64)
    for k in range(first, last):
        a, b = bounds[k], bounds[k + 1]
        bits = 1
        while (1 << bits) < 2 * (b - a):
            bits += 1
        mask = (1 << bits) - 1
        table[:mask + 1] = -1
        d = 0
        for r in range(a, b):
            e = _find_or_add(table, mask, np.uint64(64 - bits), seen_hi, seen_lo, d, hi[r], lo[r])
            local[r] = e
            if e == d:
                d += 1
        order = _pair_order(seen_hi[:d], seen_lo[:d])
        rank = np.empty(d, np.int64)
        for j in range(d):
            rank[order[j]] = j
            hi[a + j] = seen_hi[order[j]]
            lo[a + j] = seen_lo[order[j]]
        for r in range(a, b):
            local[r] = rank[local[r]]
        distinct[k] = d


@njit(**JIT)
def first_seen(hi: np.ndarray, lo: np.ndarray, valid: np.ndarray, codes: np.ndarray,
               seen_hi: np.ndarray, seen_lo: np.ndarray) -> int:
    """Number the distinct pairs of the valid rows in order of first appearance: ``codes[i]`` = row
    ``i``'s number (-1: not valid), ``seen_hi/seen_lo[j]`` = pair ``j``; returns how many, or -1 as
    soon as there are more than ``seen_hi.size`` (one hash table of twice that many slots, small
    enough to stay in cache, so a column of few distinct GUIDs is numbered in one pass)."""
    bits = 1
    while (1 << bits) < 2 * seen_hi.size:
        bits += 1
    mask = (1 << bits) - 1
    table = np.full(mask + 1, -1, np.int64)
    d = 0
    for i in range(hi.size):
        if valid.size and not valid[i]:
            codes[i] = -1
            continue
        e = _find_or_add(table, mask, np.uint64(64 - bits), seen_hi, seen_lo, d, hi[i], lo[i])
        if e < 0:
            return -1
        codes[i] = e
        if e == d:
            d += 1
    return d


@njit(**JIT)
def place_codes(bounds: np.ndarray, first: int, last: int, base: np.ndarray, distinct: np.ndarray,
                local: np.ndarray, rows: np.ndarray, hi: np.ndarray, lo: np.ndarray,
                codes: np.ndarray, out_hi: np.ndarray, out_lo: np.ndarray) -> None:
    """For partitions ``first .. last - 1``: each row's code (``base[k]`` + its rank) at its row
    number in ``codes``, and the partition's distinct pairs at ``out_hi/out_lo[base[k]:]``."""
    for k in range(first, last):
        a, b = bounds[k], bounds[k + 1]
        for r in range(a, b):
            codes[rows[r]] = base[k] + local[r]
        for j in range(distinct[k]):
            out_hi[base[k] + j] = hi[a + j]
            out_lo[base[k] + j] = lo[a + j]


@njit(inline="always", **JIT)
def _spell8(x: np.uint64) -> np.uint64:
    """The 8 hex digits of the low 32 bits of ``x`` as 8 bytes of text, the first (most
    significant) digit in the low byte: ``_hex8`` backwards, spreading the nibbles one per byte."""
    v = ((x >> np.uint64(16)) | (x << np.uint64(32))) & np.uint64(0x0000FFFF0000FFFF)
    v = ((v >> np.uint64(8)) | (v << np.uint64(16))) & np.uint64(0x00FF00FF00FF00FF)
    v = ((v >> np.uint64(4)) | (v << np.uint64(8))) & _LOW
    letter = ((v + np.uint64(0x76) * _ONES) & _HIGH) >> np.uint64(7)  # 1 where v > 9
    return v + np.uint64(0x30) * _ONES + np.uint64(39) * letter  # v + '0', or v - 10 + 'a'


@njit(inline="always", **JIT)
def _put4(row: np.ndarray, k: int, x: np.uint64) -> None:
    """The low 4 bytes of ``x`` at ``row[k:k + 4]``, little-endian (``_word`` backwards)."""
    for j in range(4):
        row[k + j] = (x >> np.uint64(8 * j)) & np.uint64(255)


@njit(**JIT)
def format_guids(hi: np.ndarray, lo: np.ndarray, out: np.ndarray) -> None:
    """The canonical lowercase text of each pair into ``out``, the data buffer of a fixed-width
    string array (string ``i`` is bytes ``36 i .. 36 i + 35``), 8 digits at a time."""
    low = np.uint64(0xFFFFFFFF)
    for i in range(hi.size):
        row = out[i * GUID_LENGTH:(i + 1) * GUID_LENGTH]
        w0, w1 = _spell8(hi[i] >> np.uint64(32)), _spell8(hi[i] & low)
        w2, w3 = _spell8(lo[i] >> np.uint64(32)), _spell8(lo[i] & low)
        _put4(row, 0, w0)
        _put4(row, 4, w0 >> np.uint64(32))
        _put4(row, 9, w1)
        _put4(row, 14, w1 >> np.uint64(32))
        _put4(row, 19, w2)
        _put4(row, 24, w2 >> np.uint64(32))
        _put4(row, 28, w3)
        _put4(row, 32, w3 >> np.uint64(32))
        for k in (8, 13, 18, 23):
            row[k] = 45  # '-'


@njit(**JIT)
def _pair_order(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The permutation that sorts pairs by (hi, lo): by ``hi``, then runs of equal ``hi`` (rare for
    random GUIDs, common for sequential ones) by ``lo``."""
    order = np.argsort(hi)
    n = order.size
    i = 0
    while i < n:
        j = i + 1
        while j < n and hi[order[j]] == hi[order[i]]:
            j += 1
        if j - i > 1:
            run = order[i:j].copy()
            order[i:j] = run[np.argsort(lo[run])]
        i = j
    return order
