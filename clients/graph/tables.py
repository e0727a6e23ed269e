"""Graph objects (as the JSON Graph returns) to the SPEC input tables, and the incremental merge.

Mapping (``tenant_id`` is the ``--tenant`` value in every table; ids are Graph object ids):

- ``users``: ``user_id`` = user id; ``status`` = active if ``accountEnabled`` else inactive;
  ``account_enabled``; ``org_unit`` = ``department``; ``last_sign_in`` =
  ``signInActivity.lastSignInDateTime`` (UTC; null when never signed in or not permitted).
- ``people``: ``person_id`` = ``account_id`` = user id; ``enabled`` = ``accountEnabled``;
  ``location_id`` = ``usageLocation``; attribute columns ``department``, ``job_title``,
  ``country``, ``user_principal_name``.
- ``directory_licenses``: one row per (user, ``skuId``) from ``licenseAssignmentStates``; when a
  SKU is assigned several ways the row is the first of: an Active state before others, direct before
  group, then the smallest group id (``assigned_by_group`` = that group id, null for direct;
  ``state`` as Graph gives it). SKUs only in ``assignedLicenses`` get a direct row, null state.
- ``skus``: ``sku_id`` = ``skuId`` (GUID string); ``enabled_units`` = ``prepaidUnits.enabled``;
  extra ``sku_part_number``, ``consumed_units``, ``service_plans`` (plan names).
- ``devices``: ``device_id`` = device object id; ``user_id`` = the first registered owner that is
  a pulled user (null otherwise, so the reference always resolves); ``host_id``, ``cores`` null.
- ``license_group_members``: groups with ``assignedLicenses`` (group-based licensing) and their
  direct user members (nested groups are not expanded: Entra does not license through nesting).

Every table is sorted by its key columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("us", tz="UTC")
_S = pa.string()
SCHEMAS: dict[str, pa.Schema] = {
    "users": pa.schema([("tenant_id", _S), ("user_id", _S), ("status", _S), ("org_unit", _S),
                        ("account_enabled", pa.bool_()), ("last_sign_in", TIMESTAMP)]),
    "people": pa.schema([("tenant_id", _S), ("person_id", _S), ("account_id", _S),
                         ("enabled", pa.bool_()), ("location_id", _S), ("department", _S),
                         ("job_title", _S), ("country", _S), ("user_principal_name", _S)]),
    "directory_licenses": pa.schema([("tenant_id", _S), ("user_id", _S), ("sku_id", _S),
                                     ("assigned_by_group", _S), ("state", _S)]),
    "skus": pa.schema([("tenant_id", _S), ("sku_id", _S), ("enabled_units", pa.int64()),
                       ("sku_part_number", _S), ("consumed_units", pa.int64()),
                       ("service_plans", pa.list_(_S))]),
    "devices": pa.schema([("tenant_id", _S), ("device_id", _S), ("user_id", _S), ("host_id", _S),
                          ("cores", pa.int32())]),
    "license_group_members": pa.schema([("tenant_id", _S), ("license_group_id", _S),
                                        ("account_id", _S)]),
}
KEYS = {"users": ("user_id",), "people": ("person_id",), "directory_licenses": ("user_id", "sku_id"),
        "skus": ("sku_id",), "devices": ("device_id",),
        "license_group_members": ("license_group_id", "account_id")}
# Tables whose rows each come from one user, and the column holding that user's id.
PER_USER = {"users": "user_id", "people": "person_id", "directory_licenses": "user_id"}


def _table(name: str, rows: list[dict]) -> pa.Table:
    table = pa.Table.from_pylist(rows, schema=SCHEMAS[name])
    return sort_table(name, table)


def sort_table(name: str, table: pa.Table) -> pa.Table:
    """``table`` in SPEC order: by tenant, then the key columns."""
    keys = [("tenant_id", "ascending")] + [(k, "ascending") for k in KEYS[name]]
    return table.sort_by(keys)


def utc(value: str | None) -> datetime | None:
    """A Graph ``DateTimeOffset`` string as an aware UTC datetime (None stays None)."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


def _licenses(user: dict) -> list[dict]:
    best: dict[str, dict] = {}
    for state in user.get("licenseAssignmentStates") or ():
        sku, group = str(state.get("skuId")), state.get("assignedByGroup")
        rank = (state.get("state") != "Active", group is not None, group or "")
        if sku not in best or rank < best[sku]["rank"]:
            best[sku] = {"rank": rank, "assigned_by_group": group, "state": state.get("state")}
    for assigned in user.get("assignedLicenses") or ():
        best.setdefault(str(assigned.get("skuId")), {"assigned_by_group": None, "state": None})
    return [{"sku_id": sku, "assigned_by_group": v["assigned_by_group"], "state": v["state"]}
            for sku, v in best.items()]


def user_tables(tenant: str, users: Iterable[dict]) -> dict[str, pa.Table]:
    """The ``users``, ``people`` and ``directory_licenses`` rows of ``users`` (Graph JSON).

    ``last_sign_in`` is left null: delta queries cannot return ``signInActivity``, so the pull
    fills it from a separate listing (:func:`with_sign_ins`).
    """
    rows: dict[str, list[dict]] = {name: [] for name in PER_USER}
    for user in users:
        uid, enabled = user["id"], user.get("accountEnabled")
        rows["users"].append({
            "tenant_id": tenant, "user_id": uid, "status": "active" if enabled else "inactive",
            "org_unit": user.get("department"), "account_enabled": enabled,
            "last_sign_in": None})
        rows["people"].append({
            "tenant_id": tenant, "person_id": uid, "account_id": uid, "enabled": enabled,
            "location_id": user.get("usageLocation"), "department": user.get("department"),
            "job_title": user.get("jobTitle"), "country": user.get("country"),
            "user_principal_name": user.get("userPrincipalName")})
        rows["directory_licenses"].extend({"tenant_id": tenant, "user_id": uid, **lic}
                                          for lic in _licenses(user))
    return {name: _table(name, r) for name, r in rows.items()}


def merge_users(previous: Mapping[str, pa.Table], changed: Mapping[str, pa.Table],
                removed: Iterable[str]) -> dict[str, pa.Table]:
    """The per-user tables of ``previous`` with the rows of ``changed`` users replaced and those of
    ``removed`` users dropped."""
    out = {}
    for name, column in PER_USER.items():
        drop = pa.array(set(removed) | set(changed[name].column(column).to_pylist()), _S)
        old = previous[name].select(SCHEMAS[name].names).cast(SCHEMAS[name])
        kept = old.filter(pc.invert(pc.is_in(old.column(column), value_set=drop)))
        out[name] = sort_table(name, pa.concat_tables([kept, changed[name]]))
    return out


def with_sign_ins(users: pa.Table, sign_ins: Mapping[str, datetime | None] | None) -> pa.Table:
    """``users`` with ``last_sign_in`` from ``sign_ins`` (user id -> time); all null when None."""
    ids = users.column("user_id").to_pylist()
    values = [sign_ins.get(u) if sign_ins is not None else None for u in ids]
    index = users.schema.get_field_index("last_sign_in")
    return users.set_column(index, "last_sign_in", pa.array(values, TIMESTAMP))


def sku_table(tenant: str, skus: Iterable[dict]) -> pa.Table:
    """``skus`` from ``subscribedSkus``."""
    return _table("skus", [{
        "tenant_id": tenant, "sku_id": str(s["skuId"]),
        "enabled_units": (s.get("prepaidUnits") or {}).get("enabled"),
        "sku_part_number": s.get("skuPartNumber"), "consumed_units": s.get("consumedUnits"),
        "service_plans": [p.get("servicePlanName") for p in s.get("servicePlans") or ()],
    } for s in skus])


def device_table(tenant: str, devices: Iterable[dict], user_ids: set[str]) -> pa.Table:
    """``devices`` from ``devices?$expand=registeredOwners``; owners outside ``user_ids`` are
    dropped so that ``devices.user_id`` always resolves in ``users``."""
    rows = []
    for device in devices:
        owners = [o["id"] for o in device.get("registeredOwners") or () if o.get("id") in user_ids]
        rows.append({"tenant_id": tenant, "device_id": device["id"],
                     "user_id": owners[0] if owners else None, "host_id": None, "cores": None})
    return _table("devices", rows)


def member_table(tenant: str, members: Mapping[str, set[str]]) -> pa.Table:
    """``license_group_members`` from license group id -> user ids."""
    return _table("license_group_members", [
        {"tenant_id": tenant, "license_group_id": g, "account_id": u}
        for g, users in members.items() for u in users])


def members_of(table: pa.Table) -> dict[str, set[str]]:
    """The inverse of :func:`member_table`."""
    out: dict[str, set[str]] = {}
    for g, u in zip(table.column("license_group_id").to_pylist(),
                    table.column("account_id").to_pylist()):
        out.setdefault(g, set()).add(u)
    return out
