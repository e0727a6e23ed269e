"""Per-license totals and chargeback groups (SPEC 1.6), from the consumer rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ._config import JIT
from .sorting import counting_order


@dataclass(frozen=True)
class LicenseTotals:
    consumed: np.ndarray
    available: np.ndarray  # NaN when unlimited
    shortfall: np.ndarray
    shortfall_cost: np.ndarray
    consumers: np.ndarray
    over_utilized: np.ndarray


def license_totals(
    row_license: np.ndarray,
    consumption: np.ndarray,
    over_utilized: np.ndarray,
    entitlements: np.ndarray,
    unit_cost: np.ndarray,
) -> LicenseTotals:
    """Consumed, available, shortfall and counts of every license (-1 entitlements: unlimited)."""
    n = entitlements.size
    consumed = np.bincount(row_license, weights=consumption, minlength=n).astype(np.float64)
    limited = entitlements >= 0
    available = np.where(limited, entitlements - consumed, np.nan)
    shortfall = np.where(limited, np.maximum(0.0, consumed - entitlements), 0.0)
    return LicenseTotals(
        consumed=consumed,
        available=available,
        shortfall=shortfall,
        shortfall_cost=shortfall * unit_cost,
        consumers=np.bincount(row_license, minlength=n).astype(np.int64),
        over_utilized=np.bincount(row_license[over_utilized], minlength=n).astype(np.int64),
    )


DENSE_CELLS = 1 << 22  # (license, org unit) key spaces up to this size are summed in place


def chargeback(
    row_license: np.ndarray, row_org: np.ndarray, consumption: np.ndarray, n_org: int,
    dense_cells: int = DENSE_CELLS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consumption per (license, org unit) with at least one consumer, in that order.

    ``row_org`` is an org-unit code, ``n_org`` standing for null so that null sorts last.
    Returns (license, org, consumption). Within a group the rows are summed in input order (the
    sums of ``np.bincount``): in one pass over a table of every key when there are at most
    ``dense_cells`` keys (licenses x org units are usually thousands), else by sorting the rows.
    """
    n_license = int(row_license.max()) + 1 if row_license.size else 0
    if n_license * (n_org + 1) <= dense_cells:
        return _dense_group_sums(row_license, row_org, consumption, n_license, n_org + 1)
    return _group_sums(row_license, row_org, consumption, n_license, n_org + 1)


@njit(**JIT)
def _dense_group_sums(
    first: np.ndarray, second: np.ndarray, weights: np.ndarray, n_first: int, n_second: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_group_sums`` through a table of all ``n_first * n_second`` keys."""
    sums = np.zeros(n_first * n_second, np.float64)
    seen = np.zeros(n_first * n_second, np.bool_)
    for r in range(first.size):
        cell = first[r] * n_second + second[r]
        sums[cell] += weights[r]
        seen[cell] = True
    cells = np.flatnonzero(seen)
    return cells // n_second, cells % n_second, sums[cells]


@njit(**JIT)
def _group_sums(
    first: np.ndarray, second: np.ndarray, weights: np.ndarray, n_first: int, n_second: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum of ``weights`` per distinct (first, second), in that order, by two counting passes.

    Within a group the rows keep their input order, so the sums are those of ``np.bincount``.
    """
    order = counting_order(second, n_second, np.arange(first.size))
    order = counting_order(first, n_first, order)
    g_first = np.empty(first.size, np.int64)
    g_second = np.empty(first.size, np.int64)
    sums = np.zeros(first.size, np.float64)
    k = -1
    for r in order:
        if k < 0 or first[r] != g_first[k] or second[r] != g_second[k]:
            k += 1
            g_first[k] = first[r]
            g_second[k] = second[r]
        sums[k] += weights[r]
    return g_first[:k + 1], g_second[:k + 1], sums[:k + 1]
