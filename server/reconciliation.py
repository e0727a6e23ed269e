"""Section 2 of SPEC.md (directory reconciliation): why computed seats differ from Entra's.

Built on the section-1 outputs with Arrow's hash joins and group-bys: per SKU, one detail row per
directory user (or user-less device), the reason it differs, and the seats worth reclaiming.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from .consumption import compute_consumption
from .encode import cast_ids
from .errors import InputError
from .schema import CONSUMPTION_INPUTS, PARTY, RECONCILIATION_INPUTS, RECONCILIATION_OUTPUTS
from .tables import normalize_tables

KEY = ["tenant_id", "sku_id", "consumer_id"]


def reconcile(
    tables: Mapping[str, pa.Table], *, inactive_days: int = 90, as_of: dt.datetime | None = None
) -> dict[str, pa.Table]:
    """The section-1 outputs plus `reconciliation`, `reconciliation_detail` and `reclaim`.

    ``as_of`` defaults to now (UTC); a naive datetime is taken as UTC.
    """
    if not (isinstance(inactive_days, int) and inactive_days >= 0):
        raise InputError("options", "inactive_days", -1, inactive_days, 1, "must be an integer >= 0")
    as_of = (as_of or dt.datetime.now(dt.timezone.utc))
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.timezone.utc)
    t, id_types = normalize_tables(tables, {**CONSUMPTION_INPUTS, **RECONCILIATION_INPUTS})
    outputs = compute_consumption(tables)
    # Joins run on the normalised id types (string or int64); outputs go back to the input's.
    consumption = outputs["consumption"]
    for column, like in (("license_id", t["licenses"]["license_id"]), ("consumer_id", t["users"]["user_id"])):
        consumption = consumption.set_column(consumption.schema.get_field_index(column), column,
                                             consumption[column].cast(like.type))
    seats = _distinct(t["directory_licenses"].select(["tenant_id", "user_id", "sku_id"]))
    detail = _detail(t, consumption, seats)
    outputs["reconciliation"] = _per_sku(t["licenses"], detail, seats)
    outputs["reconciliation_detail"] = _explained(detail, id_types[PARTY])
    users = tables.get("users")
    tracked = users is not None and "last_sign_in" in users.column_names
    outputs["reclaim"] = _reclaim(t, seats, tracked, inactive_days, as_of, id_types[PARTY])
    return outputs


def _distinct(table: pa.Table) -> pa.Table:
    return table.group_by(table.column_names, use_threads=False).aggregate([])


def _outer(left: pa.Table, right: pa.Table, keys: list[str], right_keys: list[str] | None = None) -> pa.Table:
    return left.join(right, keys, right_keys, join_type="full outer", coalesce_keys=True)


def _detail(t: dict[str, pa.Table], consumption: pa.Table, seats: pa.Table) -> pa.Table:
    """Per (tenant, sku, user or user-less device): computed, seat, and what contributed."""
    licenses = t["licenses"].select(["tenant_id", "license_id", "metric", "sku_id"])
    rows = consumption.join(licenses, ["tenant_id", "license_id"]).filter(pc.is_valid(pc.field("sku_id")))
    devices = t["devices"].select(["tenant_id", "device_id", "user_id"]).rename_columns(
        ["tenant_id", "consumer_id", "device_user"])
    rows = rows.join(devices, ["tenant_id", "consumer_id"])
    is_device = pc.equal(rows["consumer_type"], "device")
    key = pc.if_else(pc.and_(is_device, pc.is_valid(rows["device_user"])), rows["device_user"],
                     rows["consumer_id"])
    rows = pa.table({
        "tenant_id": rows["tenant_id"], "sku_id": rows["sku_id"], "consumer_id": key,
        "consumption": rows["consumption"],
        "exempt": pc.equal(rows["reason"], "exempt"),
        "override": pc.equal(rows["reason"], "override"),
        "overflow": pc.and_(pc.invert(is_device), pc.greater(rows["consumption"], 1.0)),
        "unknown_user_device": pc.and_(is_device, pc.equal(rows["metric"], "user")),
    })
    per_key = rows.group_by(KEY, use_threads=False).aggregate([
        ("consumption", "sum"), ("exempt", "any"), ("override", "any"), ("overflow", "any"),
        ("unknown_user_device", "any"),
    ])
    seat_rows = seats.rename_columns(["tenant_id", "consumer_id", "sku_id"]).append_column(
        "seat", pa.array([1] * seats.num_rows, pa.int64()))
    return _outer(per_key, seat_rows, KEY)


def _explained(detail: pa.Table, party_type: pa.DataType) -> pa.Table:
    seat = detail["seat"].fill_null(0)
    computed = detail["consumption_sum"].fill_null(0.0)
    difference = pc.subtract(computed, pc.cast(seat, pa.float64()))
    flag = lambda name: detail[name].fill_null(False)  # noqa: E731
    reason = pc.case_when(
        pc.make_struct(flag("exempt_any"), flag("override_any"), flag("overflow_any"),
                       flag("unknown_user_device_any"), pc.equal(seat, 0), pc.equal(computed, 0.0)),
        "exempt", "override", "multiple_use_overflow", "unknown_user_device", "not_in_directory",
        "not_consumed", "other")
    out = pa.table({
        "tenant_id": detail["tenant_id"], "sku_id": detail["sku_id"],
        "consumer_id": detail["consumer_id"],
        "directory_seats": seat, "computed": computed, "difference": difference, "reason": reason,
    }).filter(pc.not_equal(pc.field("difference"), 0.0))
    return _sorted(out, KEY, "reconciliation_detail", {"consumer_id": party_type})


def _per_sku(licenses: pa.Table, detail: pa.Table, seats: pa.Table) -> pa.Table:
    keys = ["tenant_id", "sku_id"]
    computed = detail.group_by(keys, use_threads=False).aggregate([("consumption_sum", "sum")])
    users = seats.group_by(keys, use_threads=False).aggregate([("user_id", "count_distinct")])
    skus = _distinct(licenses.select(keys).filter(pc.is_valid(pc.field("sku_id"))))
    table = _outer(_outer(skus, computed, keys), users, keys)
    seat_count = table["user_id_count_distinct"].fill_null(0)
    computed = table["consumption_sum_sum"].fill_null(0.0)
    out = pa.table({
        "tenant_id": table["tenant_id"], "sku_id": table["sku_id"], "directory_seats": seat_count,
        "computed": computed, "difference": pc.subtract(computed, pc.cast(seat_count, pa.float64())),
    })
    return _sorted(out, keys, "reconciliation")


def _reclaim(t: dict[str, pa.Table], seats: pa.Table, tracked: bool, inactive_days: int,
             as_of: dt.datetime, party_type: pa.DataType) -> pa.Table:
    users = t["users"].select(["tenant_id", "user_id", "account_enabled", "last_sign_in"])
    rows = seats.join(users, ["tenant_id", "user_id"], join_type="inner")
    last = rows["last_sign_in"]
    disabled = pc.equal(rows["account_enabled"], False).fill_null(False)
    never = pc.and_(pa.scalar(tracked), pc.is_null(last))
    cutoff = pa.scalar(as_of - dt.timedelta(days=inactive_days), pa.timestamp("us", tz="UTC"))
    inactive = pc.and_(pa.scalar(tracked), pc.less(last, cutoff).fill_null(False))
    reason = pc.case_when(pc.make_struct(disabled, never, inactive),
                          "disabled", "never_signed_in", "inactive", pa.scalar(None, pa.string()))
    licenses = t["licenses"].filter(pc.is_valid(pc.field("sku_id")))
    first = licenses.sort_by([("license_id", "ascending")])
    first = first.group_by(["tenant_id", "sku_id"], use_threads=False).aggregate(
        [("unit_cost", "first")])
    rows = rows.append_column("reason", reason).filter(pc.is_valid(pc.field("reason")))
    rows = rows.join(first, ["tenant_id", "sku_id"])
    out = pa.table({
        "tenant_id": rows["tenant_id"], "sku_id": rows["sku_id"], "user_id": rows["user_id"],
        "reason": rows["reason"], "last_sign_in": pc.cast(rows["last_sign_in"], pa.timestamp("us", tz="UTC")),
        "monthly_cost": rows["unit_cost_first"],
    })
    return _sorted(out, ["tenant_id", "sku_id", "user_id"], "reclaim", {"user_id": party_type})


def _sorted(table: pa.Table, keys: list[str], name: str,
            id_types: Mapping[str, pa.DataType] | None = None) -> pa.Table:
    """The output table: sorted, SPEC columns in order, id columns in the input's type."""
    table = table.sort_by([(k, "ascending") for k in keys])
    id_types = id_types or {}
    return pa.table({c: cast_ids(table[c], id_types[c]) if c in id_types else table[c]
                     for c, _, _ in RECONCILIATION_OUTPUTS[name]})
