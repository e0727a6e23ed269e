"""Hypothesis strategies for valid SPEC section 3 inputs, built to collide.

Every id kind has a tiny domain (persons 6, groups 4, locations 4, bundles 4, SKUs 3, ...), so
nested groups meet in cycles, people sit in many bundles, several bundles share one license group
and pools fill up. One draw picks the id type of the whole example: every id column a string (each
column in its own flavour) or every id column int64; int64 principals of different kinds come from
separate ranges, so they never collide. `people` carries two attribute columns, `dept` (string)
and `level` (int64), both with nulls, that collection filters test.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from licensecore.server.schema import BUNDLE_INPUTS, Column
from strategies import STRING_ID_TYPES, eighths, or_null

Rows = dict[str, list[dict[str, Any]]]

TENANTS = ("t1", "T0", "é")
# Byte order of the strings and numeric order of the ints both differ from the index order; the
# last person and the last account are often missing from `people` (unknown actors, accounts that
# only a license group knows).
STR_IDS: dict[str, tuple[Any, ...]] = {
    "person": ("p3", "p10", "p0", "P1", "pé", "p2"),
    "group": ("g1", "g0", "G3", "g10"),
    "role": ("r1", "R0"),
    "business_role": ("br1", "br0"),
    "collection": ("c1", "C0", "c2"),
    "account": ("a3", "a10", "a0", "A1", "aé", "a2", "a9"),
    "location": ("l1", "l0", "L3", "l10"),
    "pool": ("pool1", "Pool0", "pool2"),
    "bundle": ("b1", "b0", "B3", "b10"),
    "license_group": ("lg1", "lg0", "LG2"),
    "sku": ("s1", "S0", "s10"),
}
INT_IDS: dict[str, tuple[Any, ...]] = {
    "person": (5, 0, -2, 17, 3, 2**40),
    "group": (1001, -1000, 1010, 1002),
    "role": (2001, 2000),
    "business_role": (3001, -3000),
    "collection": (4001, 4000, -4002),
    "account": (5, 0, -2, 17, 3, 2**40, 9),
    "location": (1, 0, -3, 10),
    "pool": (1, 0, 2),
    "bundle": (1, 0, -3, 10),
    "license_group": (1, 0, 2),
    "sku": (10, 0, 2),
}
ACTOR_TYPES = ("person", "group", "role", "business_role", "collection")
# assign most often, so that bundles have resultants
# minimum sizes of a list: mostly a few, sometimes none
SIZES = (0, 1, 2, 3, 3)
RULES = ("assign", "assign", "assign", "exclude", "eligible", "exclude_eligible")
DEPTS = ("sales", "Sales", "o'neil", "ops", "é")
PLANS = ("TEAMS", "YAMMER")
OPERATORS = ("==", "!=", "<", "<=", ">", ">=")
# Attribute columns of `people` and their Arrow types.
ATTRIBUTES = {"dept": pa.string(), "level": pa.int64()}

_ARROW_TYPES = {
    "tenant": pa.string(),
    "string": pa.string(),
    "enum": pa.string(),
    "bool": pa.bool_(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string_list": pa.list_(pa.string()),
}


def _pick(draw: st.DrawFn, values: list[Any] | tuple[Any, ...]) -> Any:
    """One of ``values`` or, about every other draw (and always when there are none), None."""
    return draw(or_null(st.sampled_from(values))) if values else None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _comparison() -> st.SearchStrategy[str]:
    """One `factor` of SPEC 3.4 over `dept` or `level` that is not `not` or parentheses."""
    depts = st.sampled_from(DEPTS).map(_quote)
    levels = st.integers(0, 3).map(str)
    return st.one_of(
        st.tuples(st.sampled_from(OPERATORS), depts).map(lambda t: f"dept {t[0]} {t[1]}"),
        st.tuples(st.sampled_from(OPERATORS), levels).map(lambda t: f"level {t[0]} {t[1]}"),
        st.lists(depts, min_size=1, max_size=3).map(lambda xs: f"dept in ({', '.join(xs)})"),
        st.lists(levels, min_size=1, max_size=3).map(lambda xs: f"level in ({','.join(xs)})"),
        st.tuples(st.sampled_from(tuple(ATTRIBUTES)), st.sampled_from(("", "not "))).map(
            lambda t: f"{t[0]} is {t[1]}null"
        ),
    )


def filters() -> st.SearchStrategy[str]:
    """Valid collection filters: comparisons joined by `and`, `or`, `not` and parentheses."""
    return st.recursive(
        _comparison(),
        lambda inner: st.one_of(
            inner.map(lambda f: f"not {f}"),
            inner.map(lambda f: f"({f})"),
            st.tuples(inner, st.sampled_from(("and", "or")), inner).map(" ".join),
        ),
        max_leaves=4,
    )


@st.composite
def _tenant_rows(draw: st.DrawFn, tenant: str, ids: dict[str, tuple[Any, ...]]) -> Rows:
    """The rows of one tenant, ids already in their final values."""
    rows: Rows = {name: [] for name in BUNDLE_INPUTS}

    def add(name: str, **row: Any) -> None:
        rows[name].append({"tenant_id": tenant, **row})

    def some(kind: str, **kwargs: Any) -> list[Any]:
        return draw(st.lists(st.sampled_from(ids[kind]), unique=True, **kwargs))

    # A tree: each location's parent is an earlier one in a random order, or null.
    locations = some("location")
    for index, location in enumerate(locations):
        add("locations", location_id=location, parent_id=_pick(draw, locations[:index]))
    accounts = ids["account"]
    # The last person is in `people` one time in four; there are usually a few others.
    persons = draw(st.lists(st.integers(0, 4), unique=True, min_size=draw(st.sampled_from(SIZES))))
    for index in persons + ([5] if draw(st.integers(0, 3)) == 0 else []):
        # Mostly the person's own account; sometimes none, or one that another person may share.
        which = draw(st.integers(0, 5))
        account = None if which == 0 else accounts[index] if which > 1 else _pick(draw, accounts)
        add(
            "people",
            person_id=ids["person"][index],
            account_id=account,
            enabled=draw(st.sampled_from((None, True, True, False))),
            business_role_id=_pick(draw, ids["business_role"]),
            location_id=_pick(draw, ids["location"]),  # may be missing from `locations`
            dept=draw(or_null(st.sampled_from(DEPTS), 3)),
            level=draw(or_null(st.integers(0, 3), 3)),
        )
    # Nested groups with cycles and self-membership; duplicate rows welcome.
    members = st.one_of(
        st.tuples(st.just("person"), st.sampled_from(ids["person"])),
        st.tuples(st.just("group"), st.sampled_from(ids["group"])),
    )
    for group, (member_type, member) in draw(
        st.lists(
            st.tuples(st.sampled_from(ids["group"]), members),
            min_size=draw(st.sampled_from(SIZES)),
            max_size=10,
        )
    ):
        add("group_members", group_id=group, member_type=member_type, member_id=member)
    for person in draw(st.lists(st.sampled_from(ids["person"]), min_size=1, max_size=4)):
        add("group_members", group_id=ids["group"][0], member_type="person", member_id=person)
    role_pairs = st.tuples(st.sampled_from(ids["role"]), st.sampled_from(ids["person"]))
    for role, person in draw(st.lists(role_pairs, max_size=5)):
        add("role_members", role_id=role, person_id=person)
    for collection in some("collection", max_size=2):
        add("collections", collection_id=collection, filter=draw(filters()))

    pools = some("pool", min_size=draw(st.sampled_from(SIZES[:2])))
    for pool in pools:
        add(
            "pools",
            pool_id=pool,
            sku_id=draw(st.sampled_from(ids["sku"])),  # need not be in `skus`
            capacity=draw(or_null(st.integers(0, 3), 3)),
            unit_price=draw(or_null(eighths(24), 3)),
        )
    bundles = some("bundle", min_size=1) if pools else []
    for bundle in bundles:
        add(
            "bundles",
            bundle_id=bundle,
            pool_id=draw(st.sampled_from(pools[:1] * 2 + pools)),  # often sharing the first
            license_group_id=draw(st.sampled_from(ids["license_group"])),
            capacity=draw(or_null(st.integers(0, 3))),
            disabled_plans=draw(or_null(st.lists(st.sampled_from(PLANS), max_size=2))),
            revoke_threshold=draw(or_null(st.integers(0, 2), 4)),
        )
    if bundles:
        actors = st.sampled_from(ACTOR_TYPES + ("person", "group")).flatmap(
            lambda kind: st.tuples(st.just(kind), st.sampled_from(ids[kind]))
        )
        rules = st.tuples(st.sampled_from(bundles), st.sampled_from(RULES), actors)
        size = draw(st.sampled_from(SIZES)) * 2
        drawn = draw(st.lists(rules, min_size=size, max_size=14))
        # Many bundles assign the same first group, so people hold several bundles.
        everyone = ("group", ids["group"][0])
        drawn += [(b, "assign", everyone) for b in bundles if draw(st.booleans())]
        for bundle, rule, (actor_type, actor_id) in drawn:
            add(
                "bundle_rules",
                bundle_id=bundle,
                rule=rule,
                actor_type=actor_type,
                actor_id=actor_id,
                location_id=_pick(draw, ids["location"]),  # need not resolve
            )
    holders = st.tuples(st.sampled_from(ids["license_group"]), st.sampled_from(accounts))
    for group, account in draw(st.lists(holders, max_size=10)):
        add("license_group_members", license_group_id=group, account_id=account)
    for sku in some("sku"):
        add("skus", sku_id=sku, enabled_units=draw(or_null(st.integers(0, 3))))
    sku_pairs = st.tuples(st.sampled_from(ids["sku"]), st.sampled_from(ids["sku"]))
    for a, b in draw(st.lists(sku_pairs, max_size=4)):  # both orders, duplicates, self pairs
        add("sku_conflicts", sku_a=a, sku_b=b)
    return rows


def _columns(name: str, rows: list[dict[str, Any]]) -> list[tuple[str, Column | None]]:
    """The SPEC columns of a table, then (for `people`) the attribute columns its rows name."""
    columns: list[tuple[str, Column | None]] = [(c.name, c) for c in BUNDLE_INPUTS[name]]
    if name == "people":
        known = {c.name for c in BUNDLE_INPUTS[name]}
        extra = {k: None for row in rows for k in row if k not in known}
        columns.extend((k, None) for k in extra)
    return columns


def _arrow_type(column: Column | None, values: list[Any], id_type: pa.DataType) -> pa.DataType:
    """The Arrow type of a hand-written column: from its spec, or for an attribute its values."""
    if column is None:
        present = [v for v in values if v is not None]
        if present and isinstance(present[0], bool):
            return pa.bool_()
        if present and isinstance(present[0], (int, float)):
            return pa.int64() if all(isinstance(v, int) for v in present) else pa.float64()
        return pa.string()
    return id_type if column.kind == "id" else _ARROW_TYPES[column.kind]


def _table(draw: st.DrawFn, name: str, rows: list[dict[str, Any]], ints: bool) -> pa.Table | None:
    """One input table: optional columns sometimes absent, an empty table sometimes not given."""
    # `people` is always given, with its attributes: collection filters name them.
    if not rows and name != "people" and draw(st.booleans()):
        return None  # "A table that is not given counts as empty."
    arrays, fields = [], []
    for column_name, column in _columns(name, rows):
        if column is not None and not column.required and draw(st.integers(0, 7)) == 0:
            continue  # "A nullable column may be absent; its default applies."
        values = [row.get(column_name) for row in rows]
        if column is None:
            arrow_type = ATTRIBUTES[column_name]
        elif column.kind == "id":
            arrow_type = pa.int64() if ints else draw(st.sampled_from(STRING_ID_TYPES))
        else:
            arrow_type = _ARROW_TYPES[column.kind]
        arrays.append(pa.array(values, type=arrow_type))
        fields.append(pa.field(column_name, arrow_type))
    if name == "people" and not rows:
        for column_name, arrow_type in ATTRIBUTES.items():
            arrays.append(pa.array([], type=arrow_type))
            fields.append(pa.field(column_name, arrow_type))
    if name != "people" and draw(st.integers(0, 9)) == 0:  # "Extra columns are ignored."
        arrays.append(pa.array(["extra"] * len(rows), type=pa.string()))
        fields.append(pa.field("note", pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


@st.composite
def bundle_inputs(
    draw: st.DrawFn, *, int_ids: bool | None = None, min_tenants: int = 1, max_tenants: int = 2
) -> dict[str, pa.Table]:
    """Valid section 3 input tables of ``min_tenants``..``max_tenants`` tenants.

    ``int_ids`` fixes the id type (None: drawn).
    """
    ints = draw(st.booleans()) if int_ids is None else int_ids
    tenants = draw(
        st.lists(st.sampled_from(TENANTS), min_size=min_tenants, max_size=max_tenants, unique=True)
    )
    rows: Rows = {name: [] for name in BUNDLE_INPUTS}
    for tenant in tenants:
        tenant_rows = draw(_tenant_rows(tenant, INT_IDS if ints else STR_IDS))
        for name in rows:
            rows[name].extend(tenant_rows[name])
    tables = {name: _table(draw, name, rows[name], ints) for name in BUNDLE_INPUTS}
    return {name: table for name, table in tables.items() if table is not None}


def bundle_options() -> st.SearchStrategy[dict[str, Any]]:
    """Guard options small enough for the tiny groups drawn here, or the defaults."""
    return st.fixed_dictionaries(
        {},
        optional={
            "max_remove_fraction": eighths(8),
            "guard_min_members": st.integers(0, 7),
        },
    )


def bundle_tables_from_rows(rows: Rows, id_type: pa.DataType = pa.string()) -> dict[str, pa.Table]:
    """Input tables from literal rows (hand-written tests); ids already in their final values.

    Each table has the columns its rows name, in SPEC order, then the `people` attributes the rows
    name (typed from their values); missing values are null.
    """
    tables = {}
    for name, table_rows in rows.items():
        columns = [
            (column_name, column)
            for column_name, column in _columns(name, table_rows)
            if (column is not None and column.required)
            or any(column_name in row for row in table_rows)
        ]
        data, fields = {}, []
        for column_name, column in columns:
            data[column_name] = [row.get(column_name) for row in table_rows]
            fields.append(pa.field(column_name, _arrow_type(column, data[column_name], id_type)))
        tables[name] = pa.table(data, schema=pa.schema(fields))
    return tables
