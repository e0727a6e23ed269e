"""``kernels.summary.chargeback``: both ways of summing (a table of every key, or sorting the
rows) against sums written straight from SPEC 1.6 (per (license, org unit), rows in input order)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from licensecore.kernels.summary import chargeback

rows = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3),
                          st.sampled_from([0.0, 0.1, 0.25, 1.0, 1 / 3, 5.0])), max_size=60)


def reference(row_rows: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    sums: dict[tuple[int, int], float] = {}
    for lic, org, value in row_rows:
        sums[(lic, org)] = sums.get((lic, org), 0.0) + value
    return [(lic, org, total) for (lic, org), total in sorted(sums.items())]


@given(rows, st.sampled_from([0, 1 << 22]))
def test_chargeback_equals_the_plain_sums(row_rows, dense_cells):
    lic, org, value = (np.array([r[i] for r in row_rows], dtype) for i, dtype in
                       enumerate((np.int64, np.int64, np.float64)))
    n_org = 3  # org code 3 stands for null
    got = chargeback(lic, org, value, n_org, dense_cells)
    assert list(zip(*(a.tolist() for a in got))) == reference(row_rows)  # exact: adds in one order
