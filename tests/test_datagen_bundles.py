"""Tests of the section-3 data generator (size S and a tiny custom size only, so they are fast)."""

from __future__ import annotations

import importlib.util
import re
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from licensecore.bench.datagen import main
from licensecore.bench.datagen_bundles import (
    ATTRIBUTES, BUNDLE_SIZES, BundleSize, bundle_schema, generate_bundles,
)
from licensecore.server.schema import BUNDLE_INPUTS, SKU

TINY = BundleSize(tenants=2, people=300, groups=30, memberships=1_500, bundles=12)
RULES = ("assign", "exclude", "eligible", "exclude_eligible")
ACTORS = ("person", "group", "role", "business_role", "collection")
KEYS = {"people": "person_id", "locations": "location_id", "collections": "collection_id",
        "pools": "pool_id", "bundles": "bundle_id", "skus": "sku_id"}
HAS_FILTERS = importlib.util.find_spec("licensecore.server.filters") is not None


@pytest.fixture(scope="module")
def s() -> dict[str, pa.Table]:
    return generate_bundles("S", 0)


def _rows(t: dict[str, pa.Table], name: str) -> dict[str, list[dict]]:
    """The rows of a table per tenant."""
    out: dict[str, list[dict]] = defaultdict(list)
    for row in t[name].to_pylist():
        out[row["tenant_id"]].append(row)
    return out


def _ids(t: dict[str, pa.Table], name: str, column: str) -> dict[str, set]:
    return {tenant: {r[column] for r in rows if r[column] is not None}
            for tenant, rows in _rows(t, name).items()}


def _has_cycle(edges: dict) -> bool:
    """Iterative three-colour DFS over ``edges`` (node -> children)."""
    colour: dict = {}
    for root in list(edges):
        if root in colour:
            continue
        stack = [(root, iter(edges.get(root, ())))]
        colour[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
            elif colour.get(child) == 1:
                return True
            elif child not in colour:
                colour[child] = 1
                stack.append((child, iter(edges.get(child, ()))))
    return False


def _graph(t: dict[str, pa.Table], tenant: str) -> tuple[dict, dict]:
    """(group -> child groups, group -> direct person members) of one tenant."""
    kids, persons = defaultdict(set), defaultdict(set)
    for r in _rows(t, "group_members")[tenant]:
        (kids if r["member_type"] == "group" else persons)[r["group_id"]].add(r["member_id"])
    return kids, persons


def _depths(rows: list[dict]) -> dict:
    """Depth of every location below its root; fails on a cycle or a tree deeper than 4."""
    parent = {r["location_id"]: r["parent_id"] for r in rows}
    depth = dict.fromkeys(parent, 0)
    for start in parent:
        up = parent[start]
        while up is not None:
            up, depth[start] = parent[up], depth[start] + 1
            assert depth[start] <= 3, "cycle or too deep"
    return depth


def check_valid(t: dict[str, pa.Table]) -> None:
    """SPEC section 0/3 validity: required columns, enums, unique keys, references, no cycle
    in locations, counts >= 0, prices in eighths, principal kinds that never collide."""
    for name, cols in BUNDLE_INPUTS.items():
        for c in cols:
            if c.required:
                assert t[name][c.name].null_count == 0, (name, c.name)
            if c.values:
                assert set(t[name][c.name].to_pylist()) <= set(c.values), (name, c.name)
            if c.minimum is not None:
                assert pc.min(t[name][c.name].fill_null(0)).as_py() >= 0, (name, c.name)
    for name, key in KEYS.items():
        counts = t[name].group_by(["tenant_id", key]).aggregate([([], "count_all")])
        assert pc.max(counts["count_all"]).as_py() == 1, name
    eighths = t["pools"]["unit_price"].drop_null().to_numpy() * 8
    assert np.array_equal(eighths, np.round(eighths))

    def resolves(name: str, column: str, target: str, key: str) -> None:
        keys = _ids(t, target, key)
        for tenant, refs in _ids(t, name, column).items():
            assert refs <= keys[tenant], (name, column, tenant)

    resolves("bundles", "pool_id", "pools", "pool_id")
    resolves("bundle_rules", "bundle_id", "bundles", "bundle_id")
    resolves("locations", "parent_id", "locations", "location_id")
    resolves("people", "location_id", "locations", "location_id")
    resolves("bundle_rules", "location_id", "locations", "location_id")
    for rows in _rows(t, "locations").values():
        _depths(rows)
    # Principal kinds within a tenant never share an id.
    kinds: dict[str, dict[str, set]] = {k: defaultdict(set) for k in ACTORS}
    for tenant, rows in _rows(t, "group_members").items():
        kinds["group"][tenant] |= {r["group_id"] for r in rows}
        for r in rows:
            kinds[r["member_type"]][tenant].add(r["member_id"])
    for tenant, rows in _rows(t, "bundle_rules").items():
        for r in rows:
            kinds[r["actor_type"]][tenant].add(r["actor_id"])
    for kind, name, column in (("person", "people", "person_id"),
                               ("business_role", "people", "business_role_id"),
                               ("role", "role_members", "role_id"),
                               ("person", "role_members", "person_id"),
                               ("collection", "collections", "collection_id")):
        for tenant, ids in _ids(t, name, column).items():
            kinds[kind][tenant] |= ids
    for tenant in kinds["person"]:
        seen = [kinds[k][tenant] for k in ACTORS]
        assert sum(map(len, seen)) == len(set().union(*seen)), tenant


def test_schema_types(s: dict[str, pa.Table]) -> None:
    ints = generate_bundles("S", 0, id_type="int64")
    assert list(s) == list(BUNDLE_INPUTS)
    for id_type, tables in (("string", s), ("int64", ints)):
        schemas = bundle_schema(id_type)
        for name, table in tables.items():
            assert table.schema == schemas[name], name
            specs = BUNDLE_INPUTS[name] + (ATTRIBUTES if name == "people" else ())
            assert table.column_names == [c.name for c in specs]
        ids = {table[c.name].type for name, table in tables.items()
               for c in BUNDLE_INPUTS[name] if c.kind == "id" and c.id_kind != SKU}
        assert ids == {pa.string() if id_type == "string" else pa.int64()}
        assert tables["bundles"].schema.field("disabled_plans").type == pa.list_(pa.string())
        assert tables["pools"].schema.field("sku_id").type == pa.string()
    assert [f.type for f in s["people"].schema][-5:] == [pa.string()] * 3 + [pa.int64(),
                                                                            pa.bool_()]
    guids = s["people"]["account_id"].drop_null().to_pylist()
    assert all(len(g) == 36 and g[14] == "4" for g in guids)
    assert s["people"]["person_id"][0].as_py() == "p-0000000"


def test_deterministic(s: dict[str, pa.Table]) -> None:
    again = generate_bundles("S", 0)
    assert all(again[n].equals(s[n]) for n in s)
    assert not generate_bundles("S", 1)["group_members"].equals(s["group_members"])


def test_id_type_changes_only_ids(s: dict[str, pa.Table]) -> None:
    ints = generate_bundles("S", 0, id_type="int64")
    for name, table in s.items():
        assert ints[name].num_rows == table.num_rows
        for c in BUNDLE_INPUTS[name]:
            if c.kind != "id" or c.id_kind == SKU:
                assert ints[name][c.name].equals(table[c.name]), (name, c.name)
            else:
                assert ints[name][c.name].null_count == table[c.name].null_count


@pytest.mark.parametrize("size,seed", [("S", 0), ("S", 1), (TINY, 0), (TINY, 7)])
def test_valid(size: str | BundleSize, seed: int) -> None:
    check_valid(generate_bundles(size, seed))
    check_valid(generate_bundles(size, seed, id_type="int64"))


def test_sizes_and_tenants(s: dict[str, pa.Table]) -> None:
    assert set(BUNDLE_SIZES) == {"S", "M", "L", "XL"}
    spec = BUNDLE_SIZES["S"]
    assert s["people"].num_rows == spec.people and s["bundles"].num_rows == spec.bundles
    assert 0.8 < s["group_members"].num_rows / spec.memberships < 1.2
    per_tenant = [len(v) for v in _rows(s, "people").values()]
    assert len(per_tenant) == spec.tenants and len(set(per_tenant)) == spec.tenants
    assert generate_bundles(TINY)["people"].num_rows == TINY.people
    with pytest.raises(ValueError, match="too small"):
        generate_bundles(BundleSize(3, 100, 10, 100, 4))
    with pytest.raises(ValueError, match="id_type"):
        generate_bundles("S", id_type="uuid")


@pytest.mark.parametrize("size", ["S", TINY])
def test_rules_cover_every_rule_and_actor_type(size: str | BundleSize) -> None:
    t = generate_bundles(size, 3)
    people, members = _ids(t, "people", "person_id"), _ids(t, "group_members", "group_id")
    roles = _ids(t, "role_members", "role_id")
    for tenant, rows in _rows(t, "bundle_rules").items():
        assert {(r["rule"], r["actor_type"]) for r in rows} == {(a, b) for a in RULES
                                                               for b in ACTORS}
        limited = {r["location_id"] is None for r in rows if r["actor_type"] == "business_role"}
        assert limited == {True, False}
        assert {r["location_id"] for r in rows if r["actor_type"] != "business_role"} == {None}
        actors = defaultdict(set)
        for r in rows:
            actors[r["actor_type"]].add(r["actor_id"])
        assert actors["person"] - people[tenant], "an unknown person"
        assert actors["group"] - members[tenant], "an unknown or empty group"
        assert actors["role"] - roles[tenant], "an unknown role"
        assert len(rows) > len({tuple(r.values()) for r in rows}), "a duplicate rule"
    for name in ("group_members", "role_members", "license_group_members"):
        assert t[name].num_rows > t[name].group_by(t[name].column_names).aggregate([]).num_rows


def test_people_and_locations(s: dict[str, pa.Table]) -> None:
    people = s["people"]
    disabled = pc.sum(pc.invert(people["enabled"].fill_null(True))).as_py() / people.num_rows
    assert 0.01 < disabled < 0.06
    for column in ("account_id", "enabled", "business_role_id", "location_id", "department",
                   "country", "employee_type", "cost_center", "is_manager"):
        assert 0 < people[column].null_count < 0.1 * people.num_rows, column
    assert set(people["employee_type"].drop_null().to_pylist()) == {"employee", "contractor",
                                                                    "intern"}
    for tenant, roles in _ids(s, "people", "business_role_id").items():
        assert 6 <= len(roles) <= 48, tenant
    for tenant, rows in _rows(s, "locations").items():
        assert set(_depths(rows).values()) == {0, 1, 2, 3}, tenant


def test_groups_nest_with_cycles_and_empties(s: dict[str, pa.Table]) -> None:
    for tenant, rules in _rows(s, "bundle_rules").items():
        kids, persons = _graph(s, tenant)
        assert _has_cycle(kids), tenant
        children = set().union(*kids.values())

        def chain(g: str, seen: frozenset, kids: dict = kids) -> int:
            """Longest path of distinct groups below ``g`` (capped at 4 edges)."""
            return max((1 + chain(k, seen | {k}) for k in kids.get(g, ()) if k not in seen
                        and len(seen) < 5), default=0)

        assert max(chain(g, frozenset([g])) for g in list(kids)) == 4, "five levels deep"
        empty = {r["actor_id"] for r in rules if r["actor_type"] == "group"} & (
            children - set(kids) - set(persons))
        assert empty, "a rule names an empty group"


def _assigned_accounts(t: dict[str, pa.Table], tenant: str) -> dict:
    """license_group_id -> accounts of everyone its bundles' assign rules could select (a
    superset: capacity, exclusions and status ignored; a collection selects everyone)."""
    kids, persons = _graph(t, tenant)
    people = _rows(t, "people")[tenant]
    account = {p["person_id"]: p["account_id"] for p in people}
    parent = {r["location_id"]: r["parent_id"] for r in _rows(t, "locations")[tenant]}
    roles = defaultdict(set)
    for r in _rows(t, "role_members")[tenant]:
        roles[r["role_id"]].add(r["person_id"])

    def within(loc: str | None, limit: str) -> bool:
        while loc is not None and loc != limit:
            loc = parent[loc]
        return loc == limit

    def members(rule: dict) -> set:
        kind, actor = rule["actor_type"], rule["actor_id"]
        if kind == "person":
            return {actor}
        if kind == "role":
            return roles[actor]
        if kind == "business_role":
            return {p["person_id"] for p in people if p["business_role_id"] == actor
                    and (rule["location_id"] is None or within(p["location_id"],
                                                               rule["location_id"]))}
        if kind == "collection":
            return set(account)
        seen, stack = {actor}, [actor]
        while stack:
            for g in kids[stack.pop()] - seen:
                seen.add(g)
                stack.append(g)
        return set().union(*(persons[g] for g in seen))

    group_of = {b["bundle_id"]: b["license_group_id"] for b in _rows(t, "bundles")[tenant]}
    out = defaultdict(set)
    for r in _rows(t, "bundle_rules")[tenant]:
        if r["rule"] == "assign":
            out[group_of[r["bundle_id"]]] |= {account.get(p) for p in members(r)} - {None}
    return out


@pytest.mark.parametrize("size", ["S", TINY])
def test_license_groups_drift(size: str | BundleSize) -> None:
    t = generate_bundles(size, 0)
    accounts = _ids(t, "people", "account_id")
    for tenant, rows in _rows(t, "license_group_members").items():
        current = defaultdict(set)
        for r in rows:
            current[r["license_group_id"]].add(r["account_id"])
        assigned = _assigned_accounts(t, tenant)
        shared = [b["license_group_id"] for b in _rows(t, "bundles")[tenant]]
        assert len(shared) > len(set(shared)), "two bundles share a license group"
        assert set(current) - set(assigned), "a license group no bundle maps to"
        mapped = [g for g in current if g in assigned]
        assert any(current[g] - accounts[tenant] for g in mapped), "leavers (removes)"
        assert any(assigned[g] - current[g] for g in mapped), "missing members (adds)"
        guard = [g for g in mapped
                 if len(current[g]) >= 10 and len(current[g] - assigned[g]) > len(current[g]) / 2]
        assert guard, "a group whose rules remove most of its current members"


def test_pools_bundles_and_skus(s: dict[str, pa.Table]) -> None:
    pools, bundles, skus = s["pools"], s["bundles"], s["skus"]
    for table, column in ((pools, "capacity"), (bundles, "capacity"),
                          (bundles, "disabled_plans"), (bundles, "revoke_threshold"),
                          (skus, "enabled_units")):
        assert 0 < table[column].null_count < table.num_rows, column
    used = _ids(s, "bundles", "pool_id")
    assert any(ids - used[tenant] for tenant, ids in _ids(s, "pools", "pool_id").items())
    pool_skus = set(pools["sku_id"].to_pylist())
    assert {"ENTERPRISEPACK", "STANDARDPACK", "SPE_E3", "SPE_E5", "EMS"} <= pool_skus
    assert set(skus["sku_id"].to_pylist()) ^ pool_skus, "SKUs only in pools or only in skus"
    conflicts = s["sku_conflicts"].to_pylist()
    assert {"tenant_id": "tenant-01", "sku_a": "ENTERPRISEPACK",
            "sku_b": "STANDARDPACK"} in conflicts


_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(-?[0-9]+)|('(?:[^']|'')*')"
                    r"|(==|!=|<=|>=|<|>)|([(),]))")
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false"}


def test_filters_tokenise(s: dict[str, pa.Table]) -> None:
    columns = set(s["people"].column_names)
    filters = s["collections"]["filter"].to_pylist()
    assert any("''" in f for f in filters)
    for text in filters:
        pos, names = 0, set()
        while pos < len(text.rstrip()):
            m = _TOKEN.match(text, pos)
            assert m and m.end() > pos, (text, pos)
            if m.group(1) and m.group(1) not in _KEYWORDS:
                names.add(m.group(1))
            pos = m.end()
        assert names and names <= columns, text
        assert text.count("(") == text.count(")"), text


@pytest.mark.skipif(not HAS_FILTERS, reason="licensecore.server.filters is not written yet")
def test_filters_compile_and_one_selects_nobody(s: dict[str, pa.Table]) -> None:
    from licensecore.server.filters import compile_filter, evaluate

    people = _rows(s, "people")
    columns = {f.name: f.type for f in s["people"].schema}
    for tenant, rows in _rows(s, "collections").items():
        table = s["people"].filter(pc.equal(s["people"]["tenant_id"], tenant))
        selected = [int(evaluate(compile_filter(r["filter"], columns), table).sum())
                    for r in rows]
        assert 0 in selected and max(selected) < len(people[tenant]), tenant
        assert sum(n > 0 for n in selected) > len(selected) / 2, tenant


@pytest.mark.parametrize("task,expected", [("bundles", set(BUNDLE_INPUTS)),
                                           ("consumption", {"users", "allocations"})])
def test_cli_task(tmp_path, capsys, task: str, expected: set) -> None:
    main(["--size", "S", "--out", str(tmp_path), "--task", task, "--id-type", "int64"])
    written = {p.stem for p in tmp_path.iterdir()}
    assert expected <= written and ("people" in written) == (task == "bundles")
    assert "wrote" in capsys.readouterr().out
    if task == "bundles":
        assert pq.read_table(tmp_path / "bundle_rules.parquet").schema.field(
            "actor_id").type == pa.int64()


def test_cli_all_csv(tmp_path) -> None:
    main(["--size", "S", "--out", str(tmp_path), "--format", "csv"])
    written = {p.stem for p in tmp_path.iterdir()}
    assert {"users", "people", "bundles"} <= written
    assert "disabled_plans" not in (tmp_path / "bundles.csv").read_text().splitlines()[0]
