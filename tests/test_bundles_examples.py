"""SPEC section 5, example 5, and targeted section-3 cases, on the reference and the engine.

Every expectation is derived from SPEC.md (sections 3 and 6) or docs/decisions.md ("Bundle
resolution"), not from either implementation.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pyarrow as pa
import pytest

from reference.bundles import BUNDLE_IMPLEMENTATIONS
from strategies_bundles import bundle_tables_from_rows

T = "tenant-1"
IMPLEMENTATIONS = pytest.mark.parametrize(
    "compute", BUNDLE_IMPLEMENTATIONS.values(), ids=list(BUNDLE_IMPLEMENTATIONS)
)


def _run(compute, rows: dict[str, list[dict[str, Any]]], id_type=pa.string(), **options):
    """Outputs of ``compute`` on literal rows of tenant T (tenant_id added to every row)."""
    rows = {name: [{"tenant_id": T, **row} for row in table] for name, table in rows.items()}
    return compute(bundle_tables_from_rows(rows, id_type), **options)


def _people(*person_ids: Any, **columns: Any) -> list[dict[str, Any]]:
    """`people` rows whose account_id is their person_id, with ``columns`` added to each."""
    return [{"person_id": p, "account_id": p, **columns} for p in person_ids]


def _rule(bundle: Any, actor_type: str, actor_id: Any, rule: str = "assign", **more: Any):
    """One `bundle_rules` row."""
    return {
        "bundle_id": bundle, "rule": rule, "actor_type": actor_type, "actor_id": actor_id, **more,
    }


def _members(group: Any, *persons: Any, groups: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """`group_members` rows of ``group``: persons, then nested groups."""
    return [{"group_id": group, "member_type": "person", "member_id": p} for p in persons] + [
        {"group_id": group, "member_type": "group", "member_id": g} for g in groups
    ]


def _holders(group: Any, *accounts: Any) -> list[dict[str, Any]]:
    """`license_group_members` rows: the current holders of ``group``."""
    return [{"license_group_id": group, "account_id": a} for a in accounts]


def _status(out, bundle_id: Any) -> dict[Any, str]:
    """person_id -> status of one bundle's assignees."""
    rows = out["bundle_assignees"]
    return {r["person_id"]: r["status"] for r in rows if r["bundle_id"] == bundle_id}


def _ops(out) -> list[tuple[Any, str, Any, Any, str]]:
    """(license_group_id, op, account_id, bundle_id, status) of every fulfillment row, in order."""
    return [
        (r["license_group_id"], r["op"], r["account_id"], r["bundle_id"], r["status"])
        for r in out["fulfillment"]
    ]


def _by_key(out, table: str, key: str) -> dict[Any, dict[str, Any]]:
    """The rows of ``table`` by ``key``, without tenant_id and the key."""
    return {r[key]: {k: v for k, v in r.items() if k not in ("tenant_id", key)} for r in out[table]}


# ----- Example 5 ----------------------------------------------------------------------------------


def _example5(current: tuple[str, ...] = ("p4", "p9")) -> dict[str, list[dict[str, Any]]]:
    """DE-Std (capacity 2) assigns de-staff (p1, p2, p3, de-interns with p4), excludes p2."""
    return {
        "people": _people("p1", "p2", "p3", "p4", "p9"),
        "group_members": _members("de-staff", "p1", "p2", "p3", groups=("de-interns",))
        + _members("de-interns", "p4"),
        "pools": [{"pool_id": "e3", "sku_id": "ENTERPRISEPACK"}],
        "bundles": [
            {"bundle_id": "DE-Std", "pool_id": "e3", "license_group_id": "lg-de", "capacity": 2}
        ],
        "bundle_rules": [
            _rule("DE-Std", "group", "de-staff"),
            _rule("DE-Std", "person", "p2", "exclude"),
        ],
        "license_group_members": _holders("lg-de", *current),
    }


@IMPLEMENTATIONS
def test_example5_bundles(compute):
    out = _run(compute, _example5())
    # "resultant = {p1, p3, p4}"; "Order: p4 (current holder), then p1, p3 → granted p4, p1; p3
    # over_bundle_capacity."
    assert out["bundle_assignees"] == [
        {"tenant_id": T, "bundle_id": "DE-Std", "person_id": p, "account_id": p, "status": s}
        for p, s in (("p1", "granted"), ("p3", "over_bundle_capacity"), ("p4", "granted"))
    ]
    # "fulfillment: add p1; remove p9 (ready: 1 of 2 current members is under 10 members, so the
    # fraction guard does not apply)."
    assert out["fulfillment"] == [
        {"tenant_id": T, "license_group_id": "lg-de", "op": "add", "account_id": "p1",
         "bundle_id": "DE-Std", "status": "ready"},
        {"tenant_id": T, "license_group_id": "lg-de", "op": "remove", "account_id": "p9",
         "bundle_id": None, "status": "ready"},
    ]
    assert out["bundle_summary"] == [
        {"tenant_id": T, "bundle_id": "DE-Std", "pool_id": "e3", "assigned": 4, "excluded": 1,
         "resultant": 3, "granted": 2, "over_capacity": 1, "adds": 1, "removes": 1}
    ]
    assert out["pool_summary"] == [
        {"tenant_id": T, "pool_id": "e3", "sku_id": "ENTERPRISEPACK", "capacity": None,
         "bundle_capacity": 2, "granted": 2, "over_capacity": 1, "monthly_cost": 0.0,
         "annual_cost": 0.0, "overcommitted": False}
    ]
    assert out["sku_summary"] == [
        {"tenant_id": T, "sku_id": "ENTERPRISEPACK", "enabled_units": None, "seats": 2,
         "shortfall": None}
    ]
    assert (out["eligibility"], out["conflicts"], out["warnings"]) == ([], [], [])


@IMPLEMENTATIONS
@pytest.mark.parametrize(
    ("options", "status"),
    [
        ({"guard_min_members": 2}, "ready"),  # 1 > 0.5 × 2 is false
        ({"guard_min_members": 2, "max_remove_fraction": 0.25}, "needs_approval"),  # 1 > 0.5
        ({"guard_min_members": 3, "max_remove_fraction": 0.25}, "ready"),  # 2 members < 3
    ],
)
def test_example5_fraction_guard_with_options(compute, options, status):
    out = _run(compute, _example5(), **options)
    assert _ops(out) == [
        ("lg-de", "add", "p1", "DE-Std", "ready"),
        ("lg-de", "remove", "p9", None, status),
    ]


# ----- the removal guard --------------------------------------------------------------------------


def _feed(current: int, kept: int, rules: list[dict[str, Any]] | None = None, **bundle: Any):
    """A license group with ``current`` holders a00.., the bundle assigning the first ``kept``."""
    accounts = [f"a{i:02d}" for i in range(current)]
    if rules is None:
        rules = [_rule("b", "person", a) for a in accounts[:kept]]
    return {
        "people": _people(*accounts),
        "pools": [{"pool_id": "pool", "sku_id": "sku"}],
        "bundles": [{"bundle_id": "b", "pool_id": "pool", "license_group_id": "lg", **bundle}],
        "bundle_rules": rules,
        "license_group_members": _holders("lg", *accounts),
    }


@IMPLEMENTATIONS
@pytest.mark.parametrize(
    "rules",
    [[], [_rule("b", "group", "all-staff")], [_rule("b", "collection", "missing")]],
    ids=["no_rules", "empty_group", "unknown_collection"],
)
def test_broken_feed_never_strips_a_large_group(compute, rules):
    out = _run(compute, _feed(current=12, kept=0, rules=rules))
    # "A broken feed must never strip a company's licenses in one run": 12 > 0.5 × 12.
    assert _ops(out) == [("lg", "remove", f"a{i:02d}", None, "needs_approval") for i in range(12)]
    assert out["bundle_summary"][0]["removes"] == 12
    # "An actor that resolves to nobody is reported in `warnings`."
    assert [(r["kind"], r["id"]) for r in out["warnings"]] == [
        (f"empty_{r['actor_type']}", r["actor_id"]) for r in rules
    ]


@IMPLEMENTATIONS
@pytest.mark.parametrize(
    ("kept", "options", "status"),
    [
        (5, {}, "ready"),  # 5 removes of 10: 5 > 5.0 is false ("exceeds" means >)
        (4, {}, "needs_approval"),  # 6 > 5.0
        (4, {"guard_min_members": 11}, "ready"),  # 10 members: the guard does not apply
        (4, {"guard_min_members": 10}, "needs_approval"),  # "at least" guard_min_members
        (4, {"max_remove_fraction": 0.625}, "ready"),  # 6 > 6.25 is false
        (2, {"max_remove_fraction": 0.75}, "needs_approval"),  # 8 > 7.5
    ],
)
def test_fraction_guard_boundaries_and_options(compute, kept, options, status):
    out = _run(compute, _feed(current=10, kept=kept), **options)
    removes = [row for row in _ops(out) if row[1] == "remove"]
    assert removes == [("lg", "remove", f"a{i:02d}", None, status) for i in range(kept, 10)]


@IMPLEMENTATIONS
@pytest.mark.parametrize(("kept", "status"), [(1, "ready"), (0, "needs_approval")])
def test_smallest_revoke_threshold_guards_a_small_group(compute, kept, status):
    rows = _feed(current=3, kept=kept, revoke_threshold=4)
    rows["bundles"] += [
        {"bundle_id": "c", "pool_id": "pool", "license_group_id": "lg"},  # null: not counted
        {"bundle_id": "d", "pool_id": "pool", "license_group_id": "lg", "revoke_threshold": 2},
    ]
    rows["people"] += _people("new")
    rows["bundle_rules"] += [_rule("d", "person", "new")]
    rows["license_group_members"] += _holders("untouched", "a00", "zz")  # no bundle maps to it
    out = _run(compute, rows)
    # 3 − kept removes against the smallest non-null threshold, 2; adds are always ready.
    assert _ops(out) == [("lg", "add", "new", "d", "ready")] + [
        ("lg", "remove", f"a{i:02d}", None, status) for i in range(kept, 3)
    ]
    # "every bundle of that group shows the group's count"
    assert [(r["bundle_id"], r["adds"], r["removes"]) for r in out["bundle_summary"]] == [
        ("b", 0, 3 - kept), ("c", 0, 3 - kept), ("d", 1, 3 - kept)
    ]


# ----- capacity -----------------------------------------------------------------------------------


@IMPLEMENTATIONS
def test_pool_capacity_counts_grants_across_bundles_in_bundle_id_order(compute):
    rows = {
        "people": _people("p1", "p2", "p3", "p4") + _people("off", enabled=False),
        "pools": [
            {"pool_id": "P", "sku_id": "E5", "capacity": 2, "unit_price": 2.5},
            {"pool_id": "Q", "sku_id": "E5", "capacity": 0},
        ],
        # Byte order: "B" < "a" < "c".
        "bundles": [
            {"bundle_id": "a", "pool_id": "P", "license_group_id": "lgY"},
            {"bundle_id": "c", "pool_id": "P", "license_group_id": "lgY", "capacity": 5},
            {"bundle_id": "B", "pool_id": "P", "license_group_id": "lgX", "capacity": 1},
        ],
        "bundle_rules": [_rule("B", "person", p) for p in ("p1", "p2", "off")]
        + [_rule("a", "person", p) for p in ("p1", "p3", "p4")]
        + [_rule("c", "person", "p1")],
        "license_group_members": _holders("lgX", "p2") + _holders("lgY", "p4", "old"),
    }
    out = _run(compute, rows)
    # B first: p2 (current holder) takes B's one seat, p1 is over it; the disabled person takes no
    # seat. Then a, holders first: p4 takes the pool's second grant; p1 and p3, then c's p1, are
    # beyond the pool's capacity.
    assert _status(out, "B") == {"p1": "over_bundle_capacity", "p2": "granted", "off": "disabled"}
    assert _status(out, "a") == {
        "p1": "over_pool_capacity", "p3": "over_pool_capacity", "p4": "granted",
    }
    assert _status(out, "c") == {"p1": "over_pool_capacity"}
    assert _by_key(out, "pool_summary", "pool_id") == {
        "P": {"sku_id": "E5", "capacity": 2, "bundle_capacity": None, "granted": 2,
              "over_capacity": 4, "monthly_cost": 5.0, "annual_cost": 60.0,
              "overcommitted": True},
        "Q": {"sku_id": "E5", "capacity": 0, "bundle_capacity": 0, "granted": 0,
              "over_capacity": 0, "monthly_cost": 0.0, "annual_cost": 0.0,
              "overcommitted": False},
    }
    assert _ops(out) == [("lgY", "remove", "old", None, "ready")]
    summary = {r["bundle_id"]: [r[k] for k in ("resultant", "granted", "over_capacity")]
               for r in out["bundle_summary"]}
    assert summary == {"B": [3, 1, 1], "a": [3, 1, 2], "c": [1, 0, 1]}


@IMPLEMENTATIONS
def test_disabled_and_no_account_take_no_capacity(compute):
    rows = {
        "people": [
            {"person_id": "d1", "account_id": "d1", "enabled": False},
            {"person_id": "d2", "enabled": False},  # disabled and without account: disabled
            {"person_id": "d3", "account_id": "d3", "enabled": None},  # null: the default, true
            {"person_id": "d4", "account_id": None, "enabled": True},
            {"person_id": "d5", "account_id": "d5", "enabled": True},
        ],
        "pools": [{"pool_id": "P", "sku_id": "S"}],
        "bundles": [{"bundle_id": "b", "pool_id": "P", "license_group_id": "g", "capacity": 1}],
        "bundle_rules": [_rule("b", "person", p) for p in ("d1", "d2", "d3", "d4", "d5")],
    }
    out = _run(compute, rows)
    assert _status(out, "b") == {
        "d1": "disabled", "d2": "disabled", "d3": "granted", "d4": "no_account",
        "d5": "over_bundle_capacity",
    }
    assert [r["account_id"] for r in out["bundle_assignees"]] == ["d1", None, "d3", None, "d5"]
    assert _ops(out) == [("g", "add", "d3", "b", "ready")]


# ----- members ------------------------------------------------------------------------------------


@IMPLEMENTATIONS
def test_deep_nested_groups_with_cycles_and_duplicates(compute):
    chain = [f"chain{i:02d}" for i in range(30)]
    group_members = (
        _members("g0", "p0", groups=("g1",))
        + _members("g1", "p1", groups=("g2",))
        + _members("g2", "p2", "p2", groups=("g2", "g3"))  # self-membership, duplicate row
        + _members("g3", "p3", "ghost", groups=("g0",))  # cycle back; ghost is not in people
        + _members("hollow", "ghost", groups=("void",))
        + [m for parent, child in pairwise(chain) for m in _members(parent, groups=(child,))]
        + _members(chain[-1], "p5")
    )
    rows = {
        "people": _people("p0", "p1", "p2", "p3", "p5"),
        "group_members": group_members,
        "pools": [{"pool_id": "P", "sku_id": "S"}],
        "bundles": [
            {"bundle_id": b, "pool_id": "P", "license_group_id": "lg"}
            for b in ("cycle", "deep", "empty", "excluded")
        ],
        "bundle_rules": [
            _rule("cycle", "group", "g2"),
            _rule("cycle", "group", "g2"),  # a duplicate rule counts once
            _rule("deep", "group", chain[0]),
            _rule("empty", "group", "hollow"),
            _rule("empty", "group", "nowhere", "eligible"),
            _rule("empty", "person", "ghost", "exclude"),
            _rule("excluded", "group", "g1"),
            _rule("excluded", "group", "g3", "exclude"),
        ],
    }
    out = _run(compute, rows)
    assert set(_status(out, "cycle")) == {"p0", "p1", "p2", "p3"}
    assert set(_status(out, "deep")) == {"p5"}
    assert _status(out, "empty") == {} and _status(out, "excluded") == {}
    counts = {r["bundle_id"]: [r[k] for k in ("assigned", "excluded", "resultant")]
              for r in out["bundle_summary"]}
    assert counts == {
        "cycle": [4, 0, 4], "deep": [1, 0, 1], "empty": [0, 0, 0], "excluded": [4, 4, 0],
    }
    # Members missing from people drop silently; empty and unknown actors give one row each.
    assert [(r["table"], r["kind"], r["id"], r["message"]) for r in out["warnings"]] == [
        ("bundle_rules", "empty_group", "hollow", "group hollow resolves to nobody"),
        ("bundle_rules", "empty_group", "nowhere", "group nowhere resolves to nobody"),
        ("bundle_rules", "empty_person", "ghost", "person ghost resolves to nobody"),
    ]


@IMPLEMENTATIONS
def test_business_roles_match_location_subtrees(compute):
    rows = {
        "people": [
            {"person_id": p, "account_id": p, "business_role_id": br, "location_id": loc}
            for p, br, loc in (
                ("e1", "eng", "berlin"), ("e2", "eng", "de"), ("e3", "eng", "eu"),
                ("e4", "eng", "us"), ("e5", "eng", None), ("e6", "eng", "mars"),
                ("s1", "sales", "berlin"),
            )
        ],
        "locations": [
            {"location_id": "world"},
            {"location_id": "eu", "parent_id": "world"},
            {"location_id": "de", "parent_id": "eu"},
            {"location_id": "berlin", "parent_id": "de"},
            {"location_id": "us", "parent_id": "world"},
        ],
        "group_members": _members("team", "e4", "s1"),
        "pools": [{"pool_id": "P", "sku_id": "S"}],
        "bundles": [
            {"bundle_id": b, "pool_id": "P", "license_group_id": "lg"}
            for b in ("all", "de", "group", "mars", "world")
        ],
        "bundle_rules": [
            _rule("all", "business_role", "eng"),
            _rule("de", "business_role", "eng", location_id="de"),
            _rule("group", "group", "team", location_id="de"),  # matters only for business roles
            _rule("mars", "business_role", "eng", location_id="mars"),  # not in locations
            _rule("world", "business_role", "eng", location_id="world"),
            _rule("world", "business_role", "sales", "exclude", location_id="us"),
        ],
    }
    out = _run(compute, rows)
    assert set(_status(out, "all")) == {"e1", "e2", "e3", "e4", "e5", "e6"}
    assert set(_status(out, "de")) == {"e1", "e2"}
    assert set(_status(out, "group")) == {"e4", "s1"}
    assert set(_status(out, "mars")) == {"e6"}
    assert set(_status(out, "world")) == {"e1", "e2", "e3", "e4"}
    # Decision 3: "a business role with nobody at that location" is reported.
    assert [(r["kind"], r["id"]) for r in out["warnings"]] == [("empty_business_role", "sales")]


COLLECTIONS = {
    "eq": ("dept == 'sales'", {"c1"}),
    "not_eq": ("not dept == 'sales'", {"c2", "c3", "c4", "c5"}),  # not of a null comparison
    "neq": ("dept != 'sales'", {"c2", "c3", "c5"}),  # a comparison with a null is false
    "quote": ("dept == 'o''neil'", {"c3"}),
    "in": ("dept in ('ops', 'Sales')", {"c2", "c5"}),
    "is_null": ("level is null", {"c3"}),
    "is_not_null": ("level is not null", {"c1", "c2", "c4", "c5"}),
    "and_first": ("dept == 'ops' or level >= 2 and dept != 'ops'", {"c1", "c5"}),
    "parens": ("(dept == 'ops' or level >= 2) and dept != 'ops'", {"c1"}),
    "code_points": ("dept < 'a'", {"c2"}),  # 'S' < 'a' < 'o' < 's'
    "nobody": ("level > 5", set()),
}


@IMPLEMENTATIONS
def test_collection_filters_select_people(compute):
    people = [
        {"person_id": p, "account_id": p, "dept": dept, "level": level}
        for p, dept, level in (
            ("c1", "sales", 3), ("c2", "Sales", 1), ("c3", "o'neil", None), ("c4", None, 2),
            ("c5", "ops", 0),
        )
    ]
    rows = {
        "people": people,
        "collections": [{"collection_id": c, "filter": f} for c, (f, _) in COLLECTIONS.items()],
        "pools": [{"pool_id": "P", "sku_id": "S"}],
        "bundles": [{"bundle_id": "b", "pool_id": "P", "license_group_id": "lg"}],
        "bundle_rules": [_rule("b", "collection", c, "eligible") for c in COLLECTIONS]
        + [_rule("b", "collection", "unknown", "eligible")],
    }
    out = _run(compute, rows)
    for collection, (_, selected) in COLLECTIONS.items():
        one = dict(rows, bundle_rules=[_rule("b", "collection", collection)])
        assert set(_status(_run(compute, one), "b")) == selected, collection
    assert [(r["kind"], r["id"]) for r in out["warnings"]] == [
        ("empty_collection", "nobody"), ("empty_collection", "unknown"),
    ]


@IMPLEMENTATIONS
def test_eligibility_is_not_filtered_by_enabled_or_account(compute):
    rows = {
        "people": [
            {"person_id": "e1"},  # no account
            {"person_id": "e2", "account_id": "e2", "enabled": False},
            {"person_id": "e3", "account_id": "e3"},
            {"person_id": "e4", "account_id": "e4"},
        ],
        "group_members": _members("G", "e1", "e2", "e3", "e4", "ghost"),
        "role_members": [{"role_id": "R", "person_id": p} for p in ("e3", "e3", "ghost")],
        "pools": [{"pool_id": "P", "sku_id": "S"}],
        "bundles": [
            {"bundle_id": b, "pool_id": "P", "license_group_id": "lg"} for b in ("x", "y")
        ],
        "bundle_rules": [
            _rule("x", "group", "G", "eligible"),
            _rule("x", "person", "e4", "exclude_eligible"),
            _rule("x", "role", "R", "exclude"),  # excluded(b) is not eligible either
            _rule("y", "role", "R", "eligible"),
        ],
    }
    out = _run(compute, rows)
    # eligible(b) = eligible − exclude_eligible − excluded(b)
    assert [(r["bundle_id"], r["person_id"]) for r in out["eligibility"]] == [
        ("x", "e1"), ("x", "e2"), ("y", "e3"),
    ]
    assert out["bundle_assignees"] == [] and out["fulfillment"] == []
    assert [r["excluded"] for r in out["bundle_summary"]] == [0, 0]  # nobody assigned


# ----- conflicts, warnings, summaries -------------------------------------------------------------


@IMPLEMENTATIONS
def test_conflicts_both_kinds_with_int64_ids_in_numeric_order(compute):
    rows = {
        "people": _people(7, 8),
        "pools": [
            {"pool_id": 1, "sku_id": 10},
            {"pool_id": 2, "sku_id": 2},
            {"pool_id": 3, "sku_id": 9, "capacity": 0},
        ],
        "bundles": [
            {"bundle_id": b, "pool_id": pool, "license_group_id": b}
            for b, pool in ((1, 1), (20, 1), (3, 2), (30, 2), (4, 3))
        ],
        "bundle_rules": [_rule(b, "person", 7) for b in (1, 20, 3, 4)]
        + [_rule(b, "person", 8) for b in (1, 20, 3, 30)],
        # both orders and duplicates count once, a self pair is ignored; 9 is never granted
        "sku_conflicts": [
            {"sku_a": 10, "sku_b": 2}, {"sku_a": 2, "sku_b": 10}, {"sku_a": 10, "sku_b": 10},
            {"sku_a": 9, "sku_b": 2},
        ],
    }
    out = _run(compute, rows, pa.int64())
    columns = ("person_id", "kind", "sku_ids", "bundle_ids")
    assert [tuple(r[c] for c in columns) for r in out["conflicts"]] == [
        (7, "duplicate_sku", ["10"], ["1", "20"]),
        (7, "exclusive_skus", ["2", "10"], ["1", "3", "20"]),
        (8, "duplicate_sku", ["2"], ["3", "30"]),
        (8, "duplicate_sku", ["10"], ["1", "20"]),
        (8, "exclusive_skus", ["2", "10"], ["1", "3", "20", "30"]),
    ]


@IMPLEMENTATIONS
def test_warnings_one_row_per_actor_with_id_compared_as_string(compute):
    rows = {
        "people": _people(1),
        "role_members": [{"role_id": 200, "person_id": 5}],  # only a person not in people
        "pools": [{"pool_id": 0, "sku_id": 0}],
        "bundles": [{"bundle_id": b, "pool_id": 0, "license_group_id": 0} for b in (0, 1)],
        "bundle_rules": [
            _rule(0, "person", 9), _rule(1, "person", 9, "exclude_eligible"),
            _rule(0, "person", 10, "eligible"), _rule(1, "role", 200, "exclude"),
            _rule(1, "role", 201), _rule(0, "business_role", 300), _rule(0, "person", 1),
        ],
    }
    out = _run(compute, rows, pa.int64())
    assert [(r["kind"], r["id"], r["message"]) for r in out["warnings"]] == [
        ("empty_business_role", "300", "business_role 300 resolves to nobody"),
        ("empty_person", "10", "person 10 resolves to nobody"),
        ("empty_person", "9", "person 9 resolves to nobody"),
        ("empty_role", "200", "role 200 resolves to nobody"),
        ("empty_role", "201", "role 201 resolves to nobody"),
    ]
    assert {r["table"] for r in out["warnings"]} == {"bundle_rules"}


@IMPLEMENTATIONS
def test_pool_and_sku_summaries(compute):
    rows = {
        "people": _people("q1", "q2")
        + [{"person_id": q, "account_id": "shared"} for q in ("q3", "q4")],
        "pools": [
            {"pool_id": "full", "sku_id": "A", "capacity": 2, "unit_price": 1.5},
            {"pool_id": "over", "sku_id": "A", "capacity": 2, "unit_price": 0.125},
            {"pool_id": "unl", "sku_id": "B", "capacity": 1},
            {"pool_id": "free", "sku_id": "D"},
            {"pool_id": "empty", "sku_id": "B", "capacity": 0},
        ],
        "bundles": [
            {"bundle_id": b, "pool_id": pool, "license_group_id": "lg", "capacity": cap}
            for b, pool, cap in (
                ("full1", "full", 1), ("full2", "full", 1), ("over1", "over", 2),
                ("over2", "over", 1), ("unl1", "unl", None), ("free1", "free", 5),
            )
        ],
        "bundle_rules": [
            _rule("full1", "person", "q1"), _rule("full2", "person", "q1"),
            _rule("over1", "person", "q3"), _rule("over1", "person", "q4"),
            _rule("over2", "person", "q2"), _rule("unl1", "person", "q2"),
        ],
        "skus": [{"sku_id": "A", "enabled_units": 1}, {"sku_id": "B"},
                 {"sku_id": "C", "enabled_units": 3}],
    }
    out = _run(compute, rows)
    columns = ("capacity", "bundle_capacity", "granted", "over_capacity", "monthly_cost",
               "annual_cost", "overcommitted")
    assert {r["pool_id"]: tuple(r[c] for c in columns) for r in out["pool_summary"]} == {
        "empty": (0, 0, 0, 0, 0.0, 0.0, False),  # no bundles
        "free": (None, 5, 0, 0, 0.0, 0.0, False),  # no capacity: never overcommitted
        "full": (2, 2, 2, 0, 3.0, 36.0, False),  # equal is not larger
        "over": (2, 3, 2, 1, 0.25, 3.0, True),
        "unl": (1, None, 1, 0, 0.0, 0.0, True),  # an unlimited bundle
    }
    # Seats are distinct granted accounts: q1 twice and the shared account count once each.
    assert _by_key(out, "sku_summary", "sku_id") == {
        "A": {"enabled_units": 1, "seats": 2, "shortfall": 1},
        "B": {"enabled_units": None, "seats": 1, "shortfall": None},
        "C": {"enabled_units": 3, "seats": 0, "shortfall": 0},
        "D": {"enabled_units": None, "seats": 0, "shortfall": None},
    }
    assert [(r["person_id"], r["kind"], r["bundle_ids"]) for r in out["conflicts"]] == [
        ("q1", "duplicate_sku", ["full1", "full2"])
    ]


@IMPLEMENTATIONS
def test_defaults_absent_columns_and_duplicate_link_rows(compute):
    rows = {
        "people": [{"person_id": p, "account_id": p} for p in ("u1", "u2")],  # no `enabled`
        "group_members": _members("G", "u1", "u1", "u2"),
        "pools": [{"pool_id": "P", "sku_id": "S"}],
        "bundles": [{"bundle_id": "b", "pool_id": "P", "license_group_id": "lg"}],
        "bundle_rules": [_rule("b", "group", "G"), _rule("b", "person", "u2", "exclude")] * 2,
        "license_group_members": _holders("lg", "u1", "u1", "gone", "gone"),
    }
    out = _run(compute, rows)
    assert _status(out, "b") == {"u1": "granted"}
    assert _ops(out) == [("lg", "remove", "gone", None, "ready")]
    assert [r[k] for r in out["bundle_summary"] for k in ("assigned", "excluded", "removes")] == [
        2, 1, 1,
    ]
