"""Per-license totals and chargeback groups (SPEC 1.6), from the consumer rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def chargeback(
    row_license: np.ndarray, row_org: np.ndarray, consumption: np.ndarray, n_org: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consumption per (license, org unit) with at least one consumer, in that order.

    ``row_org`` is an org-unit code, ``n_org`` standing for null so that null sorts last.
    Returns (license, org, consumption).
    """
    width = n_org + 1
    groups, inverse = np.unique(row_license * width + row_org, return_inverse=True)
    sums = np.bincount(inverse.ravel(), weights=consumption, minlength=groups.size)
    return groups // width, groups % width, sums
