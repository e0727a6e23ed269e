"""Plain-Python reference of SPEC section 2 (directory reconciliation), straight from the text.

Built on the section-1 reference's output; one tenant and one SKU at a time, sets and dicts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from .consumption import _sortable, reference_consumption

Row = dict[str, Any]


def _rows(tables: Mapping[str, pa.Table], name: str) -> list[Row]:
    table = tables.get(name)
    return [] if table is None else table.to_pylist()


def reference_reconcile(
    tables: Mapping[str, pa.Table], *, inactive_days: int = 90, as_of: dt.datetime
) -> dict[str, list[Row]]:
    """Section 1 outputs plus `reconciliation`, `reconciliation_detail`, `reclaim` as sorted rows."""
    out = reference_consumption(tables)
    licenses = _rows(tables, "licenses")
    devices = {(r["tenant_id"], r["device_id"]): r.get("user_id") for r in _rows(tables, "devices")}
    users = {(r["tenant_id"], r["user_id"]): r for r in _rows(tables, "users")}
    metric = {(r["tenant_id"], r["license_id"]): r["metric"] for r in licenses}
    sku_of = {(r["tenant_id"], r["license_id"]): r.get("sku_id") for r in licenses}
    # "one seat per user per SKU" (duplicates, state and assigned_by_group do not change it)
    seats = {(r["tenant_id"], r["sku_id"], r["user_id"]) for r in _rows(tables, "directory_licenses")}

    # Per SKU, each user u is one detail row keyed by its user_id; a device consumer counts under
    # its device's user_id whatever that user's status, else under its own device_id.
    contributions: dict[tuple, list[Row]] = {}
    for row in out["consumption"]:
        sku = sku_of[(row["tenant_id"], row["license_id"])]
        if sku is None:
            continue
        key = row["consumer_id"]
        if row["consumer_type"] == "device":
            owner = devices.get((row["tenant_id"], row["consumer_id"]))
            key = owner if owner is not None else row["consumer_id"]
        rows = contributions.setdefault((row["tenant_id"], sku, key), [])
        rows.append({**row, "metric": metric[(row["tenant_id"], row["license_id"])]})

    detail = []
    for tenant, sku, key in set(contributions) | seats:
        rows = contributions.get((tenant, sku, key), [])
        seat = 1 if (tenant, sku, key) in seats else 0
        computed = sum(r["consumption"] for r in rows)
        if computed - seat == 0:
            continue  # "Only rows with difference ≠ 0."
        # "Reasons for a detail row, first that applies"
        if any(r["reason"] == "exempt" for r in rows):
            reason = "exempt"
        elif any(r["reason"] == "override" for r in rows):
            reason = "override"
        elif any(r["consumer_type"] == "user" and r["consumption"] > 1 for r in rows):
            reason = "multiple_use_overflow"
        elif any(r["consumer_type"] == "device" and r["metric"] == "user" for r in rows):
            reason = "unknown_user_device"
        elif seat == 0:
            reason = "not_in_directory"
        elif computed == 0:
            reason = "not_consumed"
        else:
            reason = "other"
        detail.append({"tenant_id": tenant, "sku_id": sku, "consumer_id": key,
                       "directory_seats": seat, "computed": float(computed),
                       "difference": float(computed - seat), "reason": reason})

    # "SKUs compared: those of licenses and of directory_licenses together."
    skus = {(r["tenant_id"], r["sku_id"]) for r in licenses if r.get("sku_id") is not None}
    skus |= {(t, s) for t, s, _ in seats}
    summary = []
    for tenant, sku in skus:
        directory = len({u for t, s, u in seats if (t, s) == (tenant, sku)})
        computed = sum(sum(r["consumption"] for r in rows)
                       for (t, s, _), rows in contributions.items() if (t, s) == (tenant, sku))
        summary.append({"tenant_id": tenant, "sku_id": sku, "directory_seats": directory,
                        "computed": float(computed), "difference": float(computed - directory)})

    # Reclaim: disabled, then never_signed_in, then inactive ("older than" is strict), only when
    # `users` has a `last_sign_in` column; users missing from `users` never get a row.
    tracked = tables.get("users") is not None and "last_sign_in" in tables["users"].column_names
    cutoff = as_of - dt.timedelta(days=inactive_days)
    reclaim = []
    for tenant, sku, user_id in seats:
        user = users.get((tenant, user_id))
        if user is None:
            continue
        last = user.get("last_sign_in")
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=dt.timezone.utc)  # "naive timestamps are UTC"
        if user.get("account_enabled") is False:
            reason = "disabled"
        elif tracked and last is None:
            reason = "never_signed_in"
        elif tracked and last < cutoff:
            reason = "inactive"
        else:
            continue
        # "monthly_cost comes from the license with the smallest license_id for that SKU"
        costs = sorted((r["license_id"], r.get("unit_cost")) for r in licenses
                       if r["tenant_id"] == tenant and r.get("sku_id") == sku)
        cost = (costs[0][1] if costs[0][1] is not None else 0.0) if costs else None
        reclaim.append({"tenant_id": tenant, "sku_id": sku, "user_id": user_id, "reason": reason,
                        "last_sign_in": last, "monthly_cost": cost})

    def ordered(rows: list[Row], keys: tuple[str, ...]) -> list[Row]:
        return sorted(rows, key=lambda r: [_sortable(r[k]) for k in keys])

    out["reconciliation"] = ordered(summary, ("tenant_id", "sku_id"))
    out["reconciliation_detail"] = ordered(detail, ("tenant_id", "sku_id", "consumer_id"))
    out["reclaim"] = ordered(reclaim, ("tenant_id", "sku_id", "user_id"))
    return out
