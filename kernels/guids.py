"""Ids that are canonical GUIDs, as 128-bit integers: parsed, made distinct and printed back.

Directory, device-management and SAM ids are nearly always GUIDs (36 lowercase hex characters in
8-4-4-4-12 groups). For those, (hi, lo) = the 32 hex digits is a bijection onto the strings, and
integer order is the strings' byte order (``-`` sits at the same places; ``0-9`` sort before
``a-f``), so a hash table and a sort of integer pairs do what a string dictionary would, without
touching string bytes again. Parsing checks and converts 8 characters at a time in a 64-bit word
(SWAR: per-byte arithmetic with no carry between bytes).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT

GUID_LENGTH = 36
_EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)  # a table slot's index when free
_MIX = np.uint64(0x9E3779B97F4A7C15)
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8).copy()  # digit value -> byte
_ONES = np.uint64(0x0101010101010101)  # 1 in each byte of a word
_LOW = np.uint64(0x0F) * _ONES
_HIGH = np.uint64(0x80) * _ONES


@njit(**JIT)
def _word(row: np.ndarray, k: int) -> np.uint64:
    """Bytes ``k .. k + 3`` of ``row`` as a little-endian integer (LLVM makes it one load when ``k``
    is a constant)."""
    return (np.uint64(row[k]) | (np.uint64(row[k + 1]) << np.uint64(8))
            | (np.uint64(row[k + 2]) << np.uint64(16)) | (np.uint64(row[k + 3]) << np.uint64(24)))


@njit(**JIT)
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


@njit(**JIT)
def _slot(h: np.uint64, w: np.uint64, shift: np.uint64) -> np.int64:
    return np.int64(((h ^ (w * _MIX)) * _MIX) >> shift)


@njit(**JIT)
def part_sizes(hi: np.ndarray, lo: np.ndarray, valid: np.ndarray, parts: int) -> np.ndarray:
    """How many valid pairs fall in each of ``parts`` hash parts."""
    sizes = np.zeros(parts, np.int64)
    for i in range(hi.size):
        if valid[i]:
            sizes[part_of(hi[i], lo[i], parts)] += 1
    return sizes


@njit(**JIT)
def rebase(codes: np.ndarray, hi: np.ndarray, lo: np.ndarray, base: np.ndarray) -> None:
    """Add to each code (not -1) the ``base`` of its pair's part: part-local codes become global."""
    parts = base.size
    for i in range(codes.size):
        if codes[i] >= 0:
            codes[i] += base[part_of(hi[i], lo[i], parts)]


@njit(**JIT)
def part_of(h: np.uint64, w: np.uint64, parts: int) -> np.int64:
    """The hash part of a pair: parts are made distinct independently (one per thread)."""
    return np.int64(((h ^ w) * _MIX) >> np.uint64(32)) % parts


@njit(**JIT)
def distinct_part(hi: np.ndarray, lo: np.ndarray, valid: np.ndarray, parts: int, p: int,
                  codes: np.ndarray, out_hi: np.ndarray, out_lo: np.ndarray) -> int:
    """Number the distinct valid pairs of part ``p`` in first-seen order: each one's code into
    ``codes`` (other rows untouched), the pairs into ``out_hi``/``out_lo``; returns how many.

    Open addressing with linear probing over (hi, lo, code) slots; the table doubles when half
    full, so it stays about the size of the part's distinct pairs, not of the rows.
    """
    bits = 12
    table = np.empty((1 << bits, 3), np.uint64)
    table[:, 2] = _EMPTY
    count = 0
    for i in range(hi.size):
        if not valid[i]:
            continue
        h, w = hi[i], lo[i]
        if part_of(h, w, parts) != p:
            continue
        mask = (1 << bits) - 1
        s = _slot(h, w, np.uint64(64 - bits))
        while True:
            code = table[s, 2]
            if code == _EMPTY:
                table[s, 0] = h
                table[s, 1] = w
                table[s, 2] = count
                out_hi[count] = h
                out_lo[count] = w
                codes[i] = count
                count += 1
                break
            if table[s, 0] == h and table[s, 1] == w:
                codes[i] = np.int64(code)
                break
            s = (s + 1) & mask
        if 2 * count >= (1 << bits):
            bits += 1
            table = _rehash(table, bits)
    return count


@njit(**JIT)
def _rehash(old: np.ndarray, bits: int) -> np.ndarray:
    table = np.empty((1 << bits, 3), np.uint64)
    table[:, 2] = _EMPTY
    mask = (1 << bits) - 1
    for r in range(old.shape[0]):
        if old[r, 2] != _EMPTY:
            s = _slot(old[r, 0], old[r, 1], np.uint64(64 - bits))
            while table[s, 2] != _EMPTY:
                s = (s + 1) & mask
            table[s, 0] = old[r, 0]
            table[s, 1] = old[r, 1]
            table[s, 2] = old[r, 2]
    return table


@njit(**JIT)
def format_guids(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The canonical lowercase text of each pair, as the data buffer of a fixed-width string array
    (string ``i`` is bytes ``36 i .. 36 i + 35``)."""
    n = hi.size
    out = np.empty(n * GUID_LENGTH, np.uint8)
    for i in range(n):
        base = i * GUID_LENGTH
        digit = 0
        for k in range(GUID_LENGTH):
            if k == 8 or k == 13 or k == 18 or k == 23:
                out[base + k] = 45
                continue
            word = hi[i] if digit < 16 else lo[i]
            shift = np.uint64(4 * (15 - digit % 16))
            out[base + k] = _HEX[(word >> shift) & np.uint64(15)]
            digit += 1
    return out


@njit(**JIT)
def sort_order(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The permutation that sorts distinct pairs by (hi, lo): by ``hi`` (LSD radix sort), then runs
    of equal ``hi`` (rare for random GUIDs, common for sequential ones) by ``lo``."""
    order = _radix_order(hi)
    n = order.size
    i = 0
    while i < n:
        j = i + 1
        while j < n and hi[order[j]] == hi[order[i]]:
            j += 1
        if j - i > 1:
            run = order[i:j].copy()
            sub = np.argsort(lo[run])
            order[i:j] = run[sub]
        i = j
    return order


RADIX_BITS = 11  # 2,048 counters per pass: they stay in cache


@njit(**JIT)
def _radix_order(keys: np.ndarray) -> np.ndarray:
    """Stable order of uint64 ``keys``: one counting pass per 11-bit digit, least significant
    first, skipping digits that are the same for every key."""
    n = keys.size
    order = np.arange(n)
    sorted_keys = keys.copy()
    out_keys = np.empty_like(sorted_keys)
    out = np.empty_like(order)
    n_digits = 1 << RADIX_BITS
    mask = np.uint64(n_digits - 1)
    for shift in range(0, 64, RADIX_BITS):
        counts = np.zeros(n_digits + 1, np.int64)
        for i in range(n):
            counts[np.int64((sorted_keys[i] >> np.uint64(shift)) & mask) + 1] += 1
        if counts.max() == n:
            continue
        for k in range(n_digits):
            counts[k + 1] += counts[k]
        for i in range(n):
            k = np.int64((sorted_keys[i] >> np.uint64(shift)) & mask)
            out_keys[counts[k]] = sorted_keys[i]
            out[counts[k]] = order[i]
            counts[k] += 1
        sorted_keys, out_keys = out_keys, sorted_keys
        order, out = out, order
    return order
