"""Hypothesis strategies for valid SPEC section 1 inputs, built to collide.

Ids come from tiny domains (users and devices 0..6, applications and licenses 0..4) so that users,
devices, candidates, allocations and VM hosts meet often. One draw picks the id type of the whole
example: every id column a string (each column in its own flavour: string, large_string,
string_view or dictionary<string>), or every id column int64; `tenant_id` is always a string.
Numbers are multiples of 1/8, so float sums are exact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from licensecore.server.schema import CONSUMPTION_INPUTS, Column

# Byte order of the strings and numeric order of the ints both differ from the index order.
STR_IDS = ("9", "10", "a", "B", "é", "Z1", "ß")
INT_IDS = (5, 0, -2, 17, 3, 2**40, 1)
TENANTS = ("t1", "T0", "é", "t10")
PARTIES, APPLICATIONS, LICENSES = range(7), range(5), range(5)
METRICS = ("device", "user", "core")
ALLOCATION_TYPES = ("allocated", "permanent", "awaiting_inventory", "unallocated")
ORG_UNITS = ("sales", "Sales", "ü-ops")

_ARROW_TYPES = {
    "tenant": pa.string(),
    "string": pa.string(),
    "enum": pa.string(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "timestamp": pa.timestamp("us"),
}
# "Ids are strings (string, large_string or dictionary<string>)"; docs/decisions.md adds
# string_view.
STRING_ID_TYPES = (
    pa.string(),
    pa.string(),
    pa.large_string(),
    pa.string_view(),
    pa.dictionary(pa.int32(), pa.string()),
)


def eighths(high: int) -> st.SearchStrategy[float]:
    """Multiples of 1/8 from 0 to ``high / 8``."""
    return st.integers(0, high).map(lambda k: k / 8)


def or_null(strategy: st.SearchStrategy[Any], null_every: int = 2) -> st.SearchStrategy[Any]:
    """``strategy`` or, about once in ``null_every`` draws, None."""
    return st.integers(1, null_every).flatmap(lambda k: st.none() if k == 1 else strategy)


def _rare(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``strategy`` about one draw in five, else None."""
    return st.integers(1, 5).flatmap(lambda k: strategy if k == 1 else st.none())


def _pick(draw: st.DrawFn, values: list[Any] | tuple[Any, ...]) -> Any:
    """One of ``values`` or None; None when there are no values."""
    return draw(or_null(st.sampled_from(values))) if values else None


@st.composite
def _tenant_rows(
    draw: st.DrawFn,
    tenant: str,
    metrics: tuple[str, ...],
    vm_rights: tuple[str, ...],
    bare_hosts: bool,
) -> dict[str, list[dict[str, Any]]]:
    """The rows of one tenant, with ids as indices into the id domains."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in CONSUMPTION_INPUTS}
    users = draw(st.lists(st.sampled_from(PARTIES), unique=True, max_size=7))
    for user in users:
        rows["users"].append(
            {
                "tenant_id": tenant,
                "user_id": user,
                "status": draw(or_null(st.sampled_from(("active", "inactive", "retired")), 3)),
                "org_unit": draw(or_null(st.sampled_from(ORG_UNITS))),
                "account_enabled": draw(or_null(st.booleans())),
                "last_sign_in": draw(or_null(st.just(datetime(2024, 1, 2, 3, 4, 5)))),
            }
        )
    # Hosts are among the first two of a random order: VMs share hosts, a host may be a VM, and
    # host_id has no cycle.
    devices = draw(st.lists(st.sampled_from(PARTIES), unique=True, max_size=7))
    for index, device in enumerate(devices):
        rows["devices"].append(
            {
                "tenant_id": tenant,
                "device_id": device,
                "user_id": _pick(draw, users),
                "host_id": _pick(draw, devices[: min(index, 2)]),
                "cores": draw(or_null(st.integers(0, 4), 3)),
            }
        )
    hosts = {r["host_id"] for r in rows["devices"] if bare_hosts and r["host_id"] is not None}
    if devices:
        pairs = st.tuples(st.sampled_from(devices), st.sampled_from(APPLICATIONS))
        for device, app in draw(st.lists(pairs, max_size=20)):  # duplicates welcome
            if device in hosts:
                continue
            rows["installations"].append(
                {"tenant_id": tenant, "device_id": device, "application_id": app}
            )
    licenses = draw(st.lists(st.sampled_from(LICENSES), unique=True, max_size=5))
    for lic in licenses:
        metric = draw(st.sampled_from(metrics))
        rows["licenses"].append(
            {
                "tenant_id": tenant,
                "license_id": lic,
                "metric": metric,
                "entitlements": draw(or_null(st.integers(0, 4), 3)),
                "multiple_use": draw(or_null(st.integers(0, 3), 3)),
                "allocations_consume": draw(or_null(st.booleans(), 3)),
                "vm_rights": draw(or_null(st.sampled_from(vm_rights), 3)),
                "priority": draw(or_null(st.integers(0, 2), 3)),
                "true_up": draw(or_null(st.booleans(), 3)),
                "unit_cost": draw(or_null(eighths(16), 3)),
                "points_per_core": draw(or_null(eighths(16), 3)),
                "min_points": draw(or_null(eighths(16), 3)),
                "sku_id": draw(or_null(st.sampled_from(("sku-a", "sku-b")))),
            }
        )
        # At most one row per (license, target); targets resolve for the license's metric.
        targets = users if metric == "user" else [d for d in devices if d not in hosts]
        for target in draw(st.lists(st.sampled_from(targets), unique=True)) if targets else []:
            rows["allocations"].append(
                {
                    "tenant_id": tenant,
                    "license_id": lic,
                    "target_id": target,
                    "type": draw(or_null(st.sampled_from(ALLOCATION_TYPES), 4)),
                    "override": draw(_rare(eighths(16))),
                    "exemption": draw(_rare(st.sampled_from(("audit", "test lab")))),
                }
            )
    if licenses:
        links = st.tuples(st.sampled_from(licenses), st.sampled_from(APPLICATIONS))
        for lic, app in draw(st.lists(links, max_size=12)):  # duplicates welcome
            rows["license_applications"].append(
                {"tenant_id": tenant, "license_id": lic, "application_id": app}
            )
    return rows


def _table(
    draw: st.DrawFn, name: str, rows: list[dict[str, Any]], ids: tuple[Any, ...]
) -> pa.Table | None:
    """One input table: optional columns sometimes absent, an empty table sometimes not given."""
    if not rows and draw(st.booleans()):
        return None  # "A table that is not given counts as empty."
    arrays, fields = [], []
    for column in CONSUMPTION_INPUTS[name]:
        if not column.required and draw(st.integers(0, 4)) == 0:
            continue  # "A nullable column may be absent; its default applies."
        values = [row[column.name] for row in rows]
        arrow_type = _ARROW_TYPES.get(column.kind)
        if column.kind == "id":
            values = [None if v is None else ids[v] for v in values]
            flavours = (pa.int64(),) if isinstance(ids[0], int) else STRING_ID_TYPES
            arrow_type = draw(st.sampled_from(flavours))
        arrays.append(pa.array(values, type=arrow_type))
        fields.append(pa.field(column.name, arrow_type))
    if draw(st.integers(0, 9)) == 0:  # "Extra columns are ignored."
        arrays.append(pa.array(["extra"] * len(rows), type=pa.string()))
        fields.append(pa.field("note", pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


@st.composite
def consumption_inputs(
    draw: st.DrawFn,
    *,
    int_ids: bool | None = None,
    min_tenants: int = 1,
    max_tenants: int = 3,
    metrics: tuple[str, ...] = METRICS,
    vm_rights: tuple[str, ...] = ("none", "host"),
    bare_hosts: bool = False,
) -> dict[str, pa.Table]:
    """Valid section 1 input tables of ``min_tenants``..``max_tenants`` tenants.

    ``int_ids`` fixes the id type (None: drawn); ``metrics`` and ``vm_rights`` limit the licenses
    drawn, and ``bare_hosts`` gives VM hosts no installation and no allocation (so they consume
    nothing and their VMs meet the core cap), to aim at one rule.
    """
    use_ints = draw(st.booleans()) if int_ids is None else int_ids
    ids = INT_IDS if use_ints else STR_IDS
    tenants = draw(
        st.lists(st.sampled_from(TENANTS), min_size=min_tenants, max_size=max_tenants, unique=True)
    )
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in CONSUMPTION_INPUTS}
    for tenant in tenants:
        tenant_rows = draw(_tenant_rows(tenant, metrics, vm_rights, bare_hosts))
        for name in rows:
            rows[name].extend(tenant_rows[name])
    tables = {name: _table(draw, name, rows[name], ids) for name in CONSUMPTION_INPUTS}
    return {name: table for name, table in tables.items() if table is not None}


def tables_from_rows(
    rows: dict[str, list[dict[str, Any]]], id_type: pa.DataType
) -> dict[str, pa.Table]:
    """Input tables from literal rows (hand-written tests); ids already in their final values.

    Each table has the columns its rows name, in SPEC order; missing values are null.
    """
    tables = {}
    for name, table_rows in rows.items():
        columns: list[Column] = [
            c
            for c in CONSUMPTION_INPUTS[name]
            if c.required or any(c.name in row for row in table_rows)
        ]
        fields = [
            pa.field(c.name, id_type if c.kind == "id" else _ARROW_TYPES[c.kind]) for c in columns
        ]
        data = {c.name: [r.get(c.name) for r in table_rows] for c in columns}
        tables[name] = pa.table(data, schema=pa.schema(fields))
    return tables


def describe(tables: dict[str, pa.Table]) -> str:
    """Every row of the input tables, in full (Arrow's repr elides long columns)."""
    lines = []
    for name, table in tables.items():
        lines.append(f"{name}: {table.schema.types}")
        lines.extend(f"    {row}" for row in table.to_pylist())
    return "\n".join(lines)
