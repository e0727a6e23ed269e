"""SPEC section 0 "Bad input" and section 6 "General", applied to the section 1.1 input tables.

Every bad-input case mutates one valid base dataset and asserts the exact ``InputError``: table,
column, first offending row (0-based; -1 for a table- or column-level problem such as a missing
column or a wrong Arrow type, where ``count`` is the number of rows of the column), value and
count. The positive cases check that defaults, absent tables, extra columns, id types and
duplicate link rows are accepted and handled as the SPEC says.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from licensecore import compact
from licensecore.server.consumption import compute_consumption
from licensecore.server.errors import InputError

T = "t1"
T2 = "t2"

# Arrow types of the base columns whose Python literals would not infer the SPEC type.
TYPES: dict[tuple[str, str], pa.DataType] = {
    ("devices", "cores"): pa.int32(),
    ("licenses", "entitlements"): pa.int64(),
    ("licenses", "multiple_use"): pa.int32(),
    ("licenses", "priority"): pa.int32(),
    ("licenses", "unit_cost"): pa.float64(),
    ("licenses", "points_per_core"): pa.float64(),
    ("licenses", "min_points"): pa.float64(),
    ("allocations", "override"): pa.float64(),
    ("users", "status"): pa.string(),
    ("users", "org_unit"): pa.string(),
    ("devices", "user_id"): pa.string(),
    ("devices", "host_id"): pa.string(),
    ("allocations", "exemption"): pa.string(),
}

Columns = dict[str, Any]  # column name -> Python list or Arrow array
Data = dict[str, Columns]

# A valid tenant: users u1..u3 (u3 inactive), devices d1..d4 (d3 a VM on d1), a device, a user
# and a core license, one allocation on each.
BASE: Data = {
    "users": {
        "tenant_id": [T, T, T],
        "user_id": ["u1", "u2", "u3"],
        "status": ["active", "active", "inactive"],
        "org_unit": ["sales", "ops", None],
    },
    "devices": {
        "tenant_id": [T, T, T, T],
        "device_id": ["d1", "d2", "d3", "d4"],
        "user_id": ["u1", "u2", None, "u1"],
        "host_id": [None, None, "d1", None],
        "cores": [4, 2, 2, None],
    },
    "installations": {
        "tenant_id": [T, T, T, T],
        "device_id": ["d1", "d2", "d3", "d4"],
        "application_id": ["a1", "a1", "a2", "a3"],
    },
    "licenses": {
        "tenant_id": [T, T, T],
        "license_id": ["L1", "L2", "L3"],
        "metric": ["device", "user", "core"],
        "entitlements": [10, 10, 10],
        "unit_cost": [1.0, 2.0, 0.5],
    },
    "license_applications": {
        "tenant_id": [T, T, T],
        "license_id": ["L1", "L2", "L3"],
        "application_id": ["a1", "a2", "a3"],
    },
    "allocations": {
        "tenant_id": [T, T, T],
        "license_id": ["L1", "L2", "L3"],
        "target_id": ["d1", "u1", "d2"],
        "type": ["allocated", "permanent", "allocated"],
    },
}


def base() -> Data:
    return copy.deepcopy(BASE)


def build(data: Data) -> dict[str, pa.Table]:
    """Arrow tables from column literals (an Arrow array is used as is)."""
    out = {}
    for name, cols in data.items():
        arrays = {}
        for col, values in cols.items():
            if isinstance(values, (pa.Array, pa.ChunkedArray)):
                arrays[col] = values
            else:
                arrays[col] = pa.array(values, type=TYPES.get((name, col)))
        out[name] = pa.table(arrays)
    return out


def run(data: Data) -> dict[str, pa.Table]:
    return compute_consumption(build(data))


def rows(out: dict[str, pa.Table]) -> dict[str, list[dict[str, Any]]]:
    return {name: table.to_pylist() for name, table in out.items()}


# ----- mutations ----------------------------------------------------------------------------------

Mutation = Callable[[Data], None]


def drop(table: str, column: str) -> Mutation:
    def m(d: Data) -> None:
        del d[table][column]
    return m


def put(table: str, column: str, values: Any) -> Mutation:
    """Replace (or add) a whole column; a list becomes an array of the type Arrow infers."""
    def m(d: Data) -> None:
        d[table][column] = values if isinstance(values, pa.Array) else pa.array(values)
    return m


def cell(table: str, column: str, row: int, value: Any) -> Mutation:
    """Set one cell (the column must be a Python list)."""
    def m(d: Data) -> None:
        d[table][column][row] = value
    return m


def append(table: str, **values: Any) -> Mutation:
    """Append a row: tenant T unless given, None for every other column not given."""
    def m(d: Data) -> None:
        cols = d[table]
        values.setdefault("tenant_id", T)
        assert set(values) <= set(cols), f"{set(values) - set(cols)} not in {table}"
        for col in cols:
            cols[col].append(values.get(col))
    return m


def both(*mutations: Mutation) -> Mutation:
    def m(d: Data) -> None:
        for mutation in mutations:
            mutation(d)
    return m


# ----- bad input ----------------------------------------------------------------------------------

# int64 ids for the int64 cases.
_ID_COLS = {
    "users": ("user_id",), "devices": ("device_id", "user_id", "host_id"),
    "installations": ("device_id", "application_id"), "licenses": ("license_id",),
    "license_applications": ("license_id", "application_id"),
    "allocations": ("license_id", "target_id"),
}
_INT = {"u1": 1, "u2": 2, "u3": 3, "d1": 11, "d2": 12, "d3": 13, "d4": 14,
        "a1": 21, "a2": 22, "a3": 23, "L1": 31, "L2": 32, "L3": 33}


def int_ids(then: Mutation) -> Mutation:
    """Every id column of the base as int64 (via ``_INT``), then ``then``."""
    def m(d: Data) -> None:
        for name, cols in _ID_COLS.items():
            for col in cols:
                d[name][col] = pa.array([_INT.get(v) for v in d[name][col]], pa.int64())
        then(d)
    return m


# (id, mutation, (table, column, row, value, count))
BAD: list[tuple[str, Mutation, tuple[str, str, int, Any, int]]] = [
    # Missing required column: a column-level problem, row -1, value None, count = rows in table.
    ("missing-users.user_id", drop("users", "user_id"), ("users", "user_id", -1, None, 3)),
    ("missing-users.tenant_id", drop("users", "tenant_id"), ("users", "tenant_id", -1, None, 3)),
    ("missing-devices.device_id", drop("devices", "device_id"), ("devices", "device_id", -1, None, 4)),
    ("missing-installations.application_id", drop("installations", "application_id"),
     ("installations", "application_id", -1, None, 4)),
    ("missing-licenses.metric", drop("licenses", "metric"), ("licenses", "metric", -1, None, 3)),
    ("missing-license_applications.license_id", drop("license_applications", "license_id"),
     ("license_applications", "license_id", -1, None, 3)),
    ("missing-allocations.target_id", drop("allocations", "target_id"),
     ("allocations", "target_id", -1, None, 3)),
    ("missing-column-in-empty-table",
     lambda d: d.__setitem__("allocations", {"tenant_id": pa.array([], pa.string()),
                                             "license_id": pa.array([], pa.string())}),
     ("allocations", "target_id", -1, None, 0)),
    # Wrong Arrow type: column-level, row -1, value None, count = rows in the column.
    ("wrong-type-cores-string", put("devices", "cores", ["4", "2", "2", None]),
     ("devices", "cores", -1, None, 4)),
    ("wrong-type-entitlements-float", put("licenses", "entitlements", [10.0, 10.0, 10.0]),
     ("licenses", "entitlements", -1, None, 3)),
    ("wrong-type-allocations_consume-int", put("licenses", "allocations_consume", [1, 0, 1]),
     ("licenses", "allocations_consume", -1, None, 3)),
    ("wrong-type-multiple_use-float", put("licenses", "multiple_use", [1.0, 5.0, 1.0]),
     ("licenses", "multiple_use", -1, None, 3)),
    ("wrong-type-unit_cost-string", put("licenses", "unit_cost", ["1", "2", "0.5"]),
     ("licenses", "unit_cost", -1, None, 3)),
    ("wrong-type-status-int", put("users", "status", [1, 1, 0]), ("users", "status", -1, None, 3)),
    ("wrong-type-last_sign_in-string", put("users", "last_sign_in", ["2024-01-01", None, None]),
     ("users", "last_sign_in", -1, None, 3)),
    ("wrong-type-override-string", put("allocations", "override", ["1", None, None]),
     ("allocations", "override", -1, None, 3)),
    ("wrong-type-user_id-int32", put("users", "user_id", pa.array([1, 2, 3], pa.int32())),
     ("users", "user_id", -1, None, 3)),
    ("wrong-type-license_id-int32", put("licenses", "license_id", pa.array([1, 2, 3], pa.int32())),
     ("licenses", "license_id", -1, None, 3)),
    ("wrong-type-tenant_id-int64", put("installations", "tenant_id", [1, 1, 1, 1]),
     ("installations", "tenant_id", -1, None, 4)),
    # One id kind, two types across tables: reported on the later table (SPEC table order).
    ("mixed-id-type-installations.device_id",
     put("installations", "device_id", [1, 2, 3, 4]), ("installations", "device_id", -1, None, 4)),
    ("mixed-id-type-devices.user_id",
     put("devices", "user_id", [1, 2, None, 1]), ("devices", "user_id", -1, None, 4)),
    ("mixed-id-type-license_applications.application_id",
     put("license_applications", "application_id", [1, 2, 3]),
     ("license_applications", "application_id", -1, None, 3)),
    ("mixed-id-type-allocations.license_id",
     put("allocations", "license_id", [1, 2, 3]), ("allocations", "license_id", -1, None, 3)),
    ("wrong-type-id-dictionary-int64",
     put("license_applications", "application_id", pa.array([1, 2, 3]).dictionary_encode()),
     ("license_applications", "application_id", -1, None, 3)),
    # Null in a required column: first null row, value None, count = null rows.
    ("null-typed-users.user_id", put("users", "user_id", pa.nulls(3)), ("users", "user_id", 0, None, 3)),
    ("null-users.tenant_id", cell("users", "tenant_id", 1, None), ("users", "tenant_id", 1, None, 1)),
    ("null-users.user_id", both(cell("users", "user_id", 1, None), cell("users", "user_id", 2, None)),
     ("users", "user_id", 1, None, 2)),
    ("null-devices.device_id", cell("devices", "device_id", 3, None),
     ("devices", "device_id", 3, None, 1)),
    ("null-installations.application_id", cell("installations", "application_id", 2, None),
     ("installations", "application_id", 2, None, 1)),
    ("null-licenses.metric", both(cell("licenses", "metric", 1, None), cell("licenses", "metric", 2, None)),
     ("licenses", "metric", 1, None, 2)),
    ("null-license_applications.license_id", cell("license_applications", "license_id", 2, None),
     ("license_applications", "license_id", 2, None, 1)),
    ("null-allocations.target_id", cell("allocations", "target_id", 1, None),
     ("allocations", "target_id", 1, None, 1)),
    # Unknown enum value (enums are lowercase).
    ("enum-status-Active", both(cell("users", "status", 1, "Active"), cell("users", "status", 2, "gone")),
     ("users", "status", 1, "Active", 2)),
    ("enum-metric", cell("licenses", "metric", 2, "seat"), ("licenses", "metric", 2, "seat", 1)),
    ("enum-metric-uppercase", cell("licenses", "metric", 0, "Device"), ("licenses", "metric", 0, "Device", 1)),
    ("enum-vm_rights", put("licenses", "vm_rights", ["none", "host", "guest"]),
     ("licenses", "vm_rights", 2, "guest", 1)),
    ("enum-allocations.type", cell("allocations", "type", 1, "reserved"),
     ("allocations", "type", 1, "reserved", 1)),
    ("enum-status-dictionary",
     put("users", "status", pa.array(["active", "Retired", "active"]).dictionary_encode()),
     ("users", "status", 1, "Retired", 1)),
    # Negative counts.
    ("negative-entitlements", put("licenses", "entitlements", [10, -1, -2]),
     ("licenses", "entitlements", 1, -1, 2)),
    ("negative-multiple_use", put("licenses", "multiple_use", [1, 1, -5]),
     ("licenses", "multiple_use", 2, -5, 1)),
    ("negative-cores", cell("devices", "cores", 2, -2), ("devices", "cores", 2, -2, 1)),
    ("negative-unit_cost", put("licenses", "unit_cost", [-0.5, 0.0, -1.0]),
     ("licenses", "unit_cost", 0, -0.5, 2)),
    ("negative-points_per_core", put("licenses", "points_per_core", [1.0, 1.0, -1.0]),
     ("licenses", "points_per_core", 2, -1.0, 1)),
    ("negative-min_points", put("licenses", "min_points", [0.0, -0.25, 0.0]),
     ("licenses", "min_points", 1, -0.25, 1)),
    ("negative-override", put("allocations", "override", [None, -1.0, 2.0]),
     ("allocations", "override", 1, -1.0, 1)),
    # Duplicate keys (within a tenant): the repeating row is the offending one.
    ("duplicate-users.user_id", append("users", user_id="u2"), ("users", "user_id", 3, "u2", 1)),
    ("duplicate-devices.device_id", both(append("devices", device_id="d1"), append("devices", device_id="d4")),
     ("devices", "device_id", 4, "d1", 2)),
    ("duplicate-licenses.license_id", both(append("licenses", license_id="L3", metric="device"),
                                           append("licenses", tenant_id=T2, license_id="L1", metric="device"),
                                           append("licenses", license_id="L1", metric="device")),
     ("licenses", "license_id", 3, "L3", 2)),
    ("duplicate-int64-licenses.license_id",
     int_ids(put("licenses", "license_id", pa.array([31, 32, 31], pa.int64()))),
     ("licenses", "license_id", 2, 31, 1)),
    ("duplicate-allocation-license-target", append("allocations", license_id="L1", target_id="d1",
                                                   type="permanent"),
     ("allocations", "target_id", 3, "d1", 1)),
    # Dangling references.
    ("dangling-devices.user_id", both(cell("devices", "user_id", 1, "u9"), cell("devices", "user_id", 3, "u8")),
     ("devices", "user_id", 1, "u9", 2)),
    ("dangling-devices.user_id-is-a-device", cell("devices", "user_id", 2, "d2"),
     ("devices", "user_id", 2, "d2", 1)),
    ("dangling-devices.host_id", cell("devices", "host_id", 3, "d9"), ("devices", "host_id", 3, "d9", 1)),
    ("dangling-devices.host_id-is-a-user", cell("devices", "host_id", 1, "u1"),
     ("devices", "host_id", 1, "u1", 1)),
    ("dangling-installations.device_id", cell("installations", "device_id", 2, "d9"),
     ("installations", "device_id", 2, "d9", 1)),
    ("dangling-installations.device_id-is-a-user", cell("installations", "device_id", 0, "u1"),
     ("installations", "device_id", 0, "u1", 1)),
    ("dangling-license_applications.license_id", cell("license_applications", "license_id", 1, "L9"),
     ("license_applications", "license_id", 1, "L9", 1)),
    ("dangling-allocations.license_id", cell("allocations", "license_id", 2, "L9"),
     ("allocations", "license_id", 2, "L9", 1)),
    ("dangling-allocations.target_id", cell("allocations", "target_id", 1, "x9"),
     ("allocations", "target_id", 1, "x9", 1)),
    ("dangling-user-license-targets-device", cell("allocations", "target_id", 1, "d1"),
     ("allocations", "target_id", 1, "d1", 1)),
    ("dangling-device-license-targets-user", cell("allocations", "target_id", 0, "u1"),
     ("allocations", "target_id", 0, "u1", 1)),
    ("dangling-core-license-targets-user", cell("allocations", "target_id", 2, "u2"),
     ("allocations", "target_id", 2, "u2", 1)),
    ("dangling-devices.user_id-users-absent", lambda d: d.pop("users"),
     ("devices", "user_id", 0, "u1", 3)),
    ("dangling-int64-installations.device_id",
     int_ids(put("installations", "device_id", pa.array([11, 12, 999, 999], pa.int64()))),
     ("installations", "device_id", 2, 999, 2)),
    # A reference to an id that exists only in another tenant is dangling.
    ("other-tenant-installations.device_id",
     both(append("devices", tenant_id=T2, device_id="e1"), append("installations", device_id="e1",
                                                                  application_id="a1")),
     ("installations", "device_id", 4, "e1", 1)),
    ("other-tenant-devices.user_id",
     both(append("users", tenant_id=T2, user_id="v1"), append("devices", device_id="d5", user_id="v1")),
     ("devices", "user_id", 4, "v1", 1)),
    ("other-tenant-devices.host_id",
     append("devices", tenant_id=T2, device_id="d5", host_id="d1"), ("devices", "host_id", 4, "d1", 1)),
    ("other-tenant-license_applications.license_id",
     append("license_applications", tenant_id=T2, license_id="L1", application_id="a1"),
     ("license_applications", "license_id", 3, "L1", 1)),
    ("other-tenant-allocations.license_id",
     both(append("devices", tenant_id=T2, device_id="d1"),
          append("allocations", tenant_id=T2, license_id="L1", target_id="d1")),
     ("allocations", "license_id", 3, "L1", 1)),
    ("other-tenant-allocations.target_id",
     both(append("licenses", tenant_id=T2, license_id="L1", metric="device"),
          append("allocations", tenant_id=T2, license_id="L1", target_id="d1")),
     ("allocations", "target_id", 3, "d1", 1)),
]


@pytest.mark.parametrize("mutation, expected", [(m, e) for _, m, e in BAD], ids=[i for i, _, _ in BAD])
def test_bad_input(mutation: Mutation, expected: tuple[str, str, int, Any, int]) -> None:
    data = base()
    mutation(data)
    with pytest.raises(InputError) as info:
        run(data)
    err = info.value
    assert (err.table, err.column, err.row, err.value, err.count) == expected, err.problem


@pytest.mark.parametrize("mutation, expected", [(m, e) for _, m, e in BAD], ids=[i for i, _, _ in BAD])
def test_bad_input_sent_compact(mutation: Mutation, expected: tuple[str, str, int, Any, int],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The same error when every string column arrives as a tagged dictionary (``compact``)."""
    monkeypatch.setattr(compact, "SAMPLE_ROWS", 1)
    monkeypatch.setattr(compact, "MIN_ROWS_PER_VALUE", 0)
    data = base()
    mutation(data)
    with pytest.raises(InputError) as info:
        compute_consumption(compact.compacted(build(data)))
    err = info.value
    assert (err.table, err.column, err.row, err.value, err.count) == expected, err.problem


def test_base_is_valid() -> None:
    out = run(base())
    assert [r["license_id"] for r in out["license_summary"].to_pylist()] == ["L1", "L2", "L3"]


def test_integer_out_of_range_names_its_row() -> None:
    """An integer column given as a wider integer type is accepted and cast (the engine's choice),
    so a value that does not fit is a bad value of one row, not of the whole column: the error
    must name that row, its value and the number of such rows (SPEC 0, "Bad input")."""
    d = base()
    d["devices"]["cores"] = pa.array([4, 2**40, 2, 2**33], pa.int64())
    with pytest.raises(InputError) as info:
        run(d)
    err = info.value
    assert (err.table, err.column, err.row, err.value, err.count) == ("devices", "cores", 1, 2**40, 2)


# ----- accepted input -----------------------------------------------------------------------------

# Every defaulted column of section 1.1 with its default value.
DEFAULTS: dict[str, dict[str, tuple[Any, pa.DataType]]] = {
    "users": {"status": ("active", pa.string()), "org_unit": (None, pa.string()),
              "account_enabled": (None, pa.bool_()), "last_sign_in": (None, pa.timestamp("us"))},
    "devices": {"user_id": (None, pa.string()), "host_id": (None, pa.string()),
                "cores": (None, pa.int32())},
    "licenses": {"entitlements": (None, pa.int64()), "multiple_use": (1, pa.int32()),
                 "allocations_consume": (False, pa.bool_()), "vm_rights": ("none", pa.string()),
                 "priority": (0, pa.int32()), "true_up": (False, pa.bool_()),
                 "unit_cost": (0.0, pa.float64()), "points_per_core": (1.0, pa.float64()),
                 "min_points": (0.0, pa.float64()), "sku_id": (None, pa.string())},
    "allocations": {"type": ("allocated", pa.string()), "override": (None, pa.float64()),
                    "exemption": (None, pa.string())},
}


def _required_only() -> Data:
    """The base with every defaulted column removed."""
    d = base()
    for name, cols in DEFAULTS.items():
        for col in cols:
            d[name].pop(col, None)
    return d


def _with_defaults(fill: str) -> Data:
    """Required-only base plus every defaulted column, holding its default or all nulls."""
    d = _required_only()
    for name, cols in DEFAULTS.items():
        n = len(d[name]["tenant_id"])
        for col, (value, typ) in cols.items():
            d[name][col] = pa.array([value if fill == "default" else None] * n, typ)
    return d


def test_defaults_fill_absent_columns_and_nulls() -> None:
    absent = rows(run(_required_only()))
    assert rows(run(_with_defaults("default"))) == absent
    assert rows(run(_with_defaults("null"))) == absent
    summary = {r["license_id"]: r for r in absent["license_summary"]}
    # entitlements = null: unlimited, available null, no shortfall, nothing over-utilised.
    assert all(r["entitlements"] is None and r["available"] is None and r["shortfall"] == 0.0
               for r in summary.values())
    # unit_cost = 0: costs are 0, not null.
    assert all(r["cost"] == 0.0 for r in absent["chargeback"])
    # type = allocated with allocations_consume = false: u1's allocation on L2 forces nothing,
    # so L2 (linked to a2, installed only on d3, which has no user) has one device consumer.
    l2 = [r for r in absent["consumption"] if r["license_id"] == "L2"]
    assert [(r["consumer_type"], r["consumer_id"], r["allocation"]) for r in l2] == [("device", "d3", None)]


def test_null_status_is_active_and_null_multiple_use_is_one() -> None:
    """A user whose status is null is known (status = active); multiple_use null means 1."""
    d = base()
    d["users"]["status"] = [None, "active", "inactive"]
    d["installations"]["application_id"] = ["a2", "a1", "a2", "a2"]  # u1 has a2 on d1 and d4
    d["licenses"]["multiple_use"] = pa.array([None, None, None], pa.int32())
    d["licenses"]["allocations_consume"] = pa.array([None, None, None], pa.bool_())
    d["allocations"]["type"] = [None, None, None]
    out = rows(run(d))
    l2 = {(r["consumer_type"], r["consumer_id"]): r for r in out["consumption"] if r["license_id"] == "L2"}
    assert l2[("user", "u1")]["devices"] == 2
    assert l2[("user", "u1")]["consumption"] == 2.0  # units(2, 1)
    assert l2[("user", "u1")]["allocation"] == "allocated"
    assert l2[("user", "u1")]["reason"] == "installed"  # allocated, allocations_consume false


def test_absent_table_counts_as_empty() -> None:
    d = base()
    del d["allocations"]
    empty = base()
    empty["allocations"] = {"tenant_id": pa.array([], pa.string()),
                            "license_id": pa.array([], pa.string()),
                            "target_id": pa.array([], pa.string())}
    assert rows(run(d)) == rows(run(empty))


def test_no_tables_at_all() -> None:
    out = compute_consumption({})
    assert set(out) == {"consumption", "license_summary", "unlicensed", "chargeback"}
    assert all(t.num_rows == 0 for t in out.values())


def test_only_licenses() -> None:
    out = rows(compute_consumption({"licenses": pa.table({
        "tenant_id": [T], "license_id": ["L1"], "metric": ["user"]})}))
    assert out["consumption"] == [] and out["unlicensed"] == [] and out["chargeback"] == []
    assert out["license_summary"] == [{
        "tenant_id": T, "license_id": "L1", "metric": "user", "entitlements": None, "consumed": 0.0,
        "available": None, "shortfall": 0.0, "shortfall_cost": 0.0, "consumers": 0, "evidence": 0,
        "over_utilized": 0,
    }]


def test_extra_columns_are_ignored() -> None:
    d = base()
    for name, cols in d.items():
        n = len(cols["tenant_id"])
        cols["comment"] = [f"x{i}" for i in range(n)]
        cols["weight"] = [-1.5] * n  # a negative number in a non-SPEC column is fine
        cols["status2"] = ["BOGUS"] * n
    assert rows(run(d)) == rows(run(base()))


def test_negative_priority_is_allowed() -> None:
    d = base()
    d["licenses"]["priority"] = [-3, 0, 7]
    run(d)


def test_allocation_to_inactive_user_resolves() -> None:
    """u3 exists (inactive): the allocation resolves and is ignored, not rejected."""
    d = base()
    d["allocations"]["target_id"] = ["d1", "u3", "d2"]
    out = rows(run(d))
    assert all(r["consumer_id"] != "u3" for r in out["consumption"])


def test_user_and_device_with_the_same_id() -> None:
    """A user-license target and a device-license target may share an id string."""
    d = base()
    d["users"]["user_id"][2] = "d2"  # user 'd2' (inactive) and device 'd2'
    run(d)


def test_same_ids_in_two_tenants_are_not_duplicates() -> None:
    one = rows(run(base()))
    d = base()
    for cols in d.values():
        for col, values in cols.items():
            cols[col] = values + ([T2] * len(values) if col == "tenant_id" else list(values))
    two = rows(run(d))
    for name, table in one.items():
        assert [r for r in two[name] if r["tenant_id"] == T] == table
        assert [r for r in two[name] if r["tenant_id"] == T2] == [{**r, "tenant_id": T2} for r in table]


def test_duplicate_link_rows_count_once() -> None:
    want = rows(run(base()))
    d = base()
    for name in ("installations", "license_applications"):
        for col, values in d[name].items():
            d[name][col] = values + values  # every row twice
    assert rows(run(d)) == want
    # One pair repeated three times: evidence 1, devices 1.
    d = base()
    append("installations", device_id="d1", application_id="a1")(d)
    append("installations", device_id="d1", application_id="a1")(d)
    out = rows(run(d))
    assert out == want
    summary = {r["license_id"]: r for r in out["license_summary"]}
    assert summary["L1"]["evidence"] == 2  # (d1, a1) and (d2, a1)


# ----- id types -----------------------------------------------------------------------------------

ID_COLUMNS = {
    "users": ["user_id"], "devices": ["device_id", "user_id", "host_id"],
    "installations": ["device_id", "application_id"], "licenses": ["license_id"],
    "license_applications": ["license_id", "application_id"],
    "allocations": ["license_id", "target_id"],
}
OUTPUT_IDS = {"consumption": ["license_id", "consumer_id"], "license_summary": ["license_id"],
              "unlicensed": ["device_id", "application_id"], "chargeback": ["license_id"]}

STRING_TYPES = {
    "string": pa.string(),
    "large_string": pa.large_string(),
    "dictionary": pa.dictionary(pa.int32(), pa.string()),
    "dictionary-int8": pa.dictionary(pa.int8(), pa.string()),
}


def _with_unlicensed(d: Data) -> Data:
    append("installations", device_id="d2", application_id="a9")(d)  # an unlicensed pair
    return d


@pytest.mark.parametrize("typ", STRING_TYPES.values(), ids=list(STRING_TYPES))
def test_string_id_types_work_and_keep_their_type(typ: pa.DataType) -> None:
    want = rows(run(_with_unlicensed(base())))
    d = _with_unlicensed(base())
    for name, cols in ID_COLUMNS.items():
        for col in cols:
            d[name][col] = pa.array(d[name][col], pa.string()).cast(typ)
    out = run(d)
    for name, cols in OUTPUT_IDS.items():
        for col in cols:
            assert out[name].schema.field(col).type == typ, f"{name}.{col}"
    assert rows(out) == want


def test_int64_ids_work_and_keep_their_type() -> None:
    d = _with_unlicensed(base())
    names = sorted({v for name, cols in ID_COLUMNS.items() for c in cols for v in d[name][c] if v})
    number = {s: 100 + i for i, s in enumerate(names)}  # order-preserving
    want = rows(run(d))
    for name, cols in ID_COLUMNS.items():
        for col in cols:
            d[name][col] = pa.array([number.get(v) for v in d[name][col]], pa.int64())
    out = run(d)
    for name, cols in OUTPUT_IDS.items():
        for col in cols:
            assert out[name].schema.field(col).type == pa.int64(), f"{name}.{col}"
    back = {v: s for s, v in number.items()}
    got = rows(out)
    for name, cols in OUTPUT_IDS.items():
        for r in got[name]:
            for col in cols:
                r[col] = back.get(r[col])
    assert got == want


def test_chunked_columns_work() -> None:
    """Tables made of several record batches give the same result as one batch."""
    tables = build(base())
    want = rows(compute_consumption(tables))
    chunked = {name: pa.concat_tables([t.slice(0, 1), t.slice(1)]) for name, t in tables.items()}
    assert rows(compute_consumption(chunked)) == want
    # Empty chunks, first and in the middle.
    empty = {name: pa.concat_tables([t.slice(0, 0), t.slice(0, 2), t.slice(0, 0), t.slice(2)])
             for name, t in tables.items()}
    assert rows(compute_consumption(empty)) == want


# ----- the error message --------------------------------------------------------------------------


def test_error_message_names_table_column_row_value_and_count() -> None:
    d = base()
    d["devices"]["cores"] = [4, -7, 2, -1]
    with pytest.raises(InputError) as info:
        run(d)
    text = str(info.value)
    assert "devices" in text and "cores" in text
    assert "row 1" in text and "-7" in text and "2 row(s)" in text


def test_error_message_for_a_missing_column() -> None:
    d = base()
    del d["licenses"]["metric"]
    with pytest.raises(InputError) as info:
        run(d)
    text = str(info.value)
    assert "licenses" in text and "metric" in text and "missing" in text


def test_nothing_is_partially_computed() -> None:
    """One bad tenant rejects the whole request."""
    d = base()
    append("installations", tenant_id=T2, device_id="zz", application_id="a1")(d)
    with pytest.raises(InputError):
        run(d)


@pytest.mark.parametrize("table, column, values", [
    ("licenses", "unit_cost", [1.0, float("nan"), 2.0]),
    ("licenses", "points_per_core", [1.0, float("inf"), 2.0]),
    ("allocations", "override", [None, float("nan"), None]),
], ids=["nan-unit_cost", "inf-points_per_core", "nan-override"])
def test_non_finite_numbers_are_rejected_with_their_row(table: str, column: str, values: list) -> None:
    """NaN is not "negative" yet not a count either: it would turn costs into NaN silently."""
    d = base()
    put(table, column, values)(d)
    with pytest.raises(InputError) as info:
        run(d)
    err = info.value
    assert (err.table, err.column, err.row, err.count) == (table, column, 1, 1)
    assert "finite" in err.problem and str(err.value) == str(values[1])
