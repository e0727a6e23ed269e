"""The sorting kernels against plain Python sorts, on small domains full of ties and repeats."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from licensecore.kernels.sorting import distinct_sorted_pairs, sort_keys

pairs = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40)), max_size=80)


@given(pairs, st.sampled_from([6, 70_000, 2**40]))
def test_distinct_sorted_pairs_is_sorted_set(rows, n_first):
    """``n_first`` 70,000 and 2**40 take two and four digit passes (digits every key shares are
    skipped)."""
    first = np.array([a for a, _ in rows], np.int64)
    second = np.array([b for _, b in rows], np.int64)
    got_first, got_second = distinct_sorted_pairs(first, second, n_first, 41)
    assert list(zip(got_first.tolist(), got_second.tolist())) == sorted(set(rows))


@given(st.lists(st.integers(0, 9), max_size=80), st.sampled_from([1, 10, 70_000, 2**40]), st.booleans())
def test_sort_keys_is_a_stable_sort(digits, scale, carry):
    """Keys spread over ``scale`` (one pass, or several digits, high ones shared by every key) sort
    like Python's stable sort, and the payload (each key's input position) moves with its key."""
    keys = np.array([d * scale // 10 for d in digits], np.int64)
    payload = np.arange(keys.size) if carry else np.empty(0, np.int64)
    got_keys, got_payload = sort_keys(keys, max(scale, 10), payload)
    order = sorted(range(keys.size), key=lambda i: keys[i])
    assert got_keys.tolist() == [keys[i] for i in order]
    assert got_payload.tolist() == (order if carry else [])
