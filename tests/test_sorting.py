"""The sorting kernels against plain Python sorts, on small domains full of ties and repeats."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from licensecore.kernels.sorting import distinct_sorted_pairs

pairs = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40)), max_size=80)


@given(pairs, st.sampled_from([6, 70_000]))
def test_distinct_sorted_pairs_is_sorted_set(rows, n_first):
    """``n_first`` 70,000 takes the multi-digit counting passes."""
    first = np.array([a for a, _ in rows], np.int64)
    second = np.array([b for _, b in rows], np.int64)
    got_first, got_second = distinct_sorted_pairs(first, second, n_first, 41)
    assert list(zip(got_first.tolist(), got_second.tolist())) == sorted(set(rows))
