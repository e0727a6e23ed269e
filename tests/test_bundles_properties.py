"""The engine against the plain-Python reference of SPEC section 3, on random inputs, and the
invariants of section 3 on both implementations."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, note

from reference import assert_same_outputs
from reference.bundles import BUNDLE_IMPLEMENTATIONS, engine_bundles, reference_bundles
from strategies import describe
from strategies_bundles import bundle_inputs, bundle_options

IMPLEMENTATIONS = pytest.mark.parametrize(
    "compute", BUNDLE_IMPLEMENTATIONS.values(), ids=list(BUNDLE_IMPLEMENTATIONS)
)

# ----- engine == reference on random inputs -------------------------------------------------------


def _engine_matches_reference(tables: dict[str, pa.Table], options: dict[str, Any]) -> None:
    note(describe(tables))
    note(f"options: {options}")
    assert_same_outputs(reference_bundles(tables, **options), engine_bundles(tables, **options))


@given(bundle_inputs(), bundle_options())
def test_engine_matches_reference_on_random_inputs(tables, options):
    _engine_matches_reference(tables, options)


@given(bundle_inputs(int_ids=True), bundle_options())
def test_engine_matches_reference_with_int64_ids_including_negative_and_large(tables, options):
    _engine_matches_reference(tables, options)


@given(bundle_inputs(int_ids=False), bundle_options())
def test_engine_matches_reference_with_string_ids_in_byte_order(tables, options):
    _engine_matches_reference(tables, options)


def _tenant_alone(tables: dict[str, pa.Table], tenant: str) -> dict[str, pa.Table]:
    """The rows of one tenant, same schemas (Arrow has no filter kernel for string_view)."""
    return {
        name: pa.Table.from_pylist(
            [row for row in table.to_pylist() if row["tenant_id"] == tenant], schema=table.schema
        )
        for name, table in tables.items()
    }


@IMPLEMENTATIONS
@given(tables=bundle_inputs(min_tenants=2), options=bundle_options())
def test_many_tenants_equal_each_tenant_alone(compute, tables, options):
    # "the result for each tenant is exactly the result of computing that tenant alone."
    note(describe(tables))
    tenants = sorted({t for table in tables.values() for t in table["tenant_id"].to_pylist()})
    alone = [compute(_tenant_alone(tables, tenant), **options) for tenant in tenants]
    together = compute(tables, **options)
    concatenated = {name: [row for out in alone for row in out[name]] for name in together}
    assert_same_outputs(concatenated, together)


# ----- invariants, on both implementations --------------------------------------------------------


def _input(tables: dict[str, pa.Table], name: str) -> list[dict[str, Any]]:
    table = tables.get(name)
    return [] if table is None else table.to_pylist()


def _bundles(tables: dict[str, pa.Table]) -> dict[tuple[str, Any], dict[str, Any]]:
    return {(r["tenant_id"], r["bundle_id"]): r for r in _input(tables, "bundles")}


def _current(tables: dict[str, pa.Table]) -> dict[tuple[str, Any], set[Any]]:
    """Distinct current accounts per (tenant, license group)."""
    current: dict[tuple[str, Any], set[Any]] = defaultdict(set)
    for r in _input(tables, "license_group_members"):
        current[r["tenant_id"], r["license_group_id"]].add(r["account_id"])
    return current


@IMPLEMENTATIONS
@given(tables=bundle_inputs(), options=bundle_options())
def test_bundle_summary_counts_match_assignees(compute, tables, options):
    out = compute(tables, **options)
    statuses: dict[tuple[str, Any], Counter] = defaultdict(Counter)
    for r in out["bundle_assignees"]:
        statuses[r["tenant_id"], r["bundle_id"]][r["status"]] += 1
    bundles = _bundles(tables)
    assert {(r["tenant_id"], r["bundle_id"]) for r in out["bundle_summary"]} == set(bundles)
    for row in out["bundle_summary"]:
        key = (row["tenant_id"], row["bundle_id"])
        counts = statuses[key]
        # |assigned ∖ excluded| + |assigned ∩ excluded| = |assigned|
        assert row["assigned"] == row["resultant"] + row["excluded"]
        # every resultant person has exactly one status
        assert row["resultant"] == sum(counts.values())
        assert row["granted"] == counts["granted"]
        assert row["over_capacity"] == counts["over_bundle_capacity"] + counts["over_pool_capacity"]
        capacity = bundles[key].get("capacity")
        assert capacity is None or row["granted"] <= capacity


@IMPLEMENTATIONS
@given(tables=bundle_inputs(), options=bundle_options())
def test_pool_grants_within_capacity_and_summed_over_its_bundles(compute, tables, options):
    out = compute(tables, **options)
    granted: Counter = Counter()
    for row in out["bundle_summary"]:
        granted[row["tenant_id"], row["pool_id"]] += row["granted"]
    for row in out["pool_summary"]:
        assert row["granted"] == granted[row["tenant_id"], row["pool_id"]]
        assert row["capacity"] is None or row["granted"] <= row["capacity"]
        assert row["annual_cost"] == 12 * row["monthly_cost"]


@IMPLEMENTATIONS
@given(tables=bundle_inputs(), options=bundle_options())
def test_fulfillment_is_desired_minus_current(compute, tables, options):
    out = compute(tables, **options)
    bundles, current = _bundles(tables), _current(tables)
    # Desired: the accounts granted by any bundle of the group, with the smallest granting bundle.
    desired: dict[tuple[str, Any], dict[Any, Any]] = defaultdict(dict)
    for r in out["bundle_assignees"]:
        if r["status"] == "granted":
            group = (r["tenant_id"], bundles[r["tenant_id"], r["bundle_id"]]["license_group_id"])
            first = desired[group].get(r["account_id"], r["bundle_id"])
            desired[group][r["account_id"]] = min(first, r["bundle_id"])
    mapped = {(t, b["license_group_id"]) for (t, _), b in bundles.items()}
    want = set()
    for group in mapped:
        adds = set(desired[group]) - current[group]
        want |= {(*group, "add", a, desired[group][a]) for a in adds}
        want |= {(*group, "remove", a, None) for a in current[group] - set(desired[group])}
    got = [(r["tenant_id"], r["license_group_id"], r["op"], r["account_id"], r["bundle_id"])
           for r in out["fulfillment"]]
    assert len(got) == len(set(got)) and set(got) == want
    assert all(r["status"] == "ready" for r in out["fulfillment"] if r["op"] == "add")
    adds = Counter((r["tenant_id"], r["bundle_id"]) for r in out["fulfillment"] if r["op"] == "add")
    removes = Counter(
        (r["tenant_id"], r["license_group_id"]) for r in out["fulfillment"] if r["op"] == "remove"
    )
    for row in out["bundle_summary"]:
        key = (row["tenant_id"], row["bundle_id"])
        assert row["adds"] == adds[key]
        assert row["removes"] == removes[row["tenant_id"], bundles[key]["license_group_id"]]


@IMPLEMENTATIONS
@given(tables=bundle_inputs(), options=bundle_options())
def test_no_ready_removes_when_the_guard_applies(compute, tables, options):
    out = compute(tables, **options)
    fraction = options.get("max_remove_fraction", 0.5)
    min_members = options.get("guard_min_members", 10)
    thresholds: dict[tuple[str, Any], list[int]] = defaultdict(list)
    for (tenant, _), bundle in _bundles(tables).items():
        if bundle.get("revoke_threshold") is not None:
            thresholds[tenant, bundle["license_group_id"]].append(bundle["revoke_threshold"])
    current = _current(tables)
    removes: dict[tuple[str, Any], list[str]] = defaultdict(list)
    for r in out["fulfillment"]:
        if r["op"] == "remove":
            removes[r["tenant_id"], r["license_group_id"]].append(r["status"])
    for group, statuses in removes.items():
        n, members = len(statuses), len(current[group])
        guarded = (bool(thresholds[group]) and n > min(thresholds[group])) or (
            members >= min_members and n > fraction * members
        )
        # the guard "applies to all of the group's removes together"
        assert set(statuses) == {"needs_approval" if guarded else "ready"}, group
