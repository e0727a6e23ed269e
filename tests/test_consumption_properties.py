"""The engine against the plain-Python reference of SPEC section 1: random inputs, invariants and
hand-written edges.

Hand-written edge tests first assert the SPEC-derived value on the reference, then that the engine
gives the same outputs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, note

from reference import (
    CONSUMPTION_IMPLEMENTATIONS,
    assert_same_outputs,
    engine_consumption,
    reference_consumption,
)
from strategies import consumption_inputs, describe, tables_from_rows

IMPLEMENTATIONS = pytest.mark.parametrize(
    "compute", CONSUMPTION_IMPLEMENTATIONS.values(), ids=list(CONSUMPTION_IMPLEMENTATIONS)
)

# ----- engine == reference on random inputs -------------------------------------------------------


def _engine_matches_reference(tables: dict[str, pa.Table]) -> None:
    note(describe(tables))
    assert_same_outputs(reference_consumption(tables), engine_consumption(tables))


@given(consumption_inputs())
def test_engine_matches_reference_on_random_inputs(tables):
    _engine_matches_reference(tables)


@given(consumption_inputs(int_ids=True))
def test_engine_matches_reference_with_int64_ids_including_negative_and_large(tables):
    _engine_matches_reference(tables)


@given(consumption_inputs(int_ids=False))
def test_engine_matches_reference_with_string_ids_in_byte_order(tables):
    _engine_matches_reference(tables)


@given(consumption_inputs(metrics=("user",)))
def test_engine_matches_reference_on_user_licenses_with_unknown_users_and_multiple_use(tables):
    _engine_matches_reference(tables)


@given(consumption_inputs(metrics=("device", "core"), vm_rights=("host",)))
def test_engine_matches_reference_on_host_flow_down_and_covered_vms(tables):
    _engine_matches_reference(tables)


@given(consumption_inputs(metrics=("core",), vm_rights=("host",), bare_hosts=True))
def test_engine_matches_reference_on_core_vms_capped_by_bare_hosts(tables):
    _engine_matches_reference(tables)


def _tenant_alone(tables: dict[str, pa.Table], tenant: str) -> dict[str, pa.Table]:
    """The rows of one tenant, same schemas (Arrow has no filter kernel for string_view)."""
    return {
        name: pa.Table.from_pylist(
            [row for row in table.to_pylist() if row["tenant_id"] == tenant], schema=table.schema
        )
        for name, table in tables.items()
    }


@given(consumption_inputs(min_tenants=2))
def test_engine_on_many_tenants_equals_each_tenant_alone(tables):
    # "the result for each tenant is exactly the result of computing that tenant alone."
    note(describe(tables))
    tenants = sorted({t for table in tables.values() for t in table["tenant_id"].to_pylist()})
    alone = [engine_consumption(_tenant_alone(tables, tenant)) for tenant in tenants]
    together = engine_consumption(tables)
    concatenated = {name: [row for out in alone for row in out[name]] for name in together}
    assert_same_outputs(concatenated, together)


# ----- invariants, on both implementations --------------------------------------------------------


def _license_key(row: dict[str, Any]) -> tuple[str, Any]:
    return (row["tenant_id"], row["license_id"])


@IMPLEMENTATIONS
@given(tables=consumption_inputs())
def test_consumption_rows_sum_to_license_consumed(compute, tables):
    out = compute(tables)
    sums: dict[tuple[str, Any], float] = defaultdict(float)
    for row in out["consumption"]:
        sums[_license_key(row)] += row["consumption"]
    assert {_license_key(r): r["consumed"] for r in out["license_summary"]} == {
        _license_key(r): sums[_license_key(r)] for r in out["license_summary"]
    }


@IMPLEMENTATIONS
@given(tables=consumption_inputs())
def test_summary_counts_consumer_rows_and_over_utilized_rows(compute, tables):
    out = compute(tables)
    rows = Counter(_license_key(r) for r in out["consumption"])
    over = Counter(_license_key(r) for r in out["consumption"] if r["over_utilized"])
    for summary in out["license_summary"]:
        assert summary["consumers"] == rows[_license_key(summary)]
        assert summary["over_utilized"] == over[_license_key(summary)]


@IMPLEMENTATIONS
@given(tables=consumption_inputs())
def test_every_license_has_one_summary_row(compute, tables):
    out = compute(tables)
    licenses = tables["licenses"].to_pylist() if "licenses" in tables else []
    summaries = Counter(map(_license_key, out["license_summary"]))
    assert summaries == Counter(map(_license_key, licenses))


@IMPLEMENTATIONS
@given(tables=consumption_inputs())
def test_evidence_plus_unlicensed_is_distinct_installation_pairs(compute, tables):
    out = compute(tables)
    installations = tables.get("installations")
    pairs = {
        (r["tenant_id"], r["device_id"], r["application_id"])
        for r in ([] if installations is None else installations.to_pylist())
    }
    evidence = sum(r["evidence"] for r in out["license_summary"])
    assert evidence + len(out["unlicensed"]) == len(pairs)


@IMPLEMENTATIONS
@given(tables=consumption_inputs())
def test_chargeback_sums_to_license_consumed(compute, tables):
    out = compute(tables)
    sums: dict[tuple[str, Any], float] = defaultdict(float)
    for row in out["chargeback"]:
        sums[_license_key(row)] += row["consumption"]
    # "a row per (license, org_unit) with at least one consumer, even at 0"
    summaries = out["license_summary"]
    assert dict(sums) == {_license_key(r): r["consumed"] for r in summaries if r["consumers"]}


@IMPLEMENTATIONS
@given(tables=consumption_inputs())
def test_over_utilized_exactly_when_limited_license_exceeds_entitlements(compute, tables):
    out = compute(tables)
    for summary in out["license_summary"]:
        entitlements, consumed = summary["entitlements"], summary["consumed"]
        exceeded = entitlements is not None and consumed > entitlements
        assert (summary["over_utilized"] > 0) == exceeded
        assert summary["shortfall"] == (consumed - entitlements if exceeded else 0.0)


# ----- hand-written edges: the SPEC value on the reference, then the engine agrees ----------------

T = "t"


def _tables(**rows: list[dict[str, Any]]) -> dict[str, pa.Table]:
    """String-id input tables of tenant T from literal rows."""
    with_tenant = {name: [{"tenant_id": T, **r} for r in rs] for name, rs in rows.items()}
    return tables_from_rows(with_tenant, pa.string())


def _rows(out, license_id=None) -> dict[tuple[str, Any], tuple]:
    """(consumer_type, consumer_id) -> (devices, consumption, reason, allocation, over_utilized)."""
    return {
        (r["consumer_type"], r["consumer_id"]): (
            r["devices"], r["consumption"], r["reason"], r["allocation"], r["over_utilized"]
        )
        for r in out["consumption"]
        if license_id is None or r["license_id"] == license_id
    }


def _evidence(out) -> dict[Any, int]:
    return {r["license_id"]: r["evidence"] for r in out["license_summary"]}


def _check_engine(tables: dict[str, pa.Table], want) -> None:
    assert_same_outputs(want, engine_consumption(tables))


def _one_app(*license_ids: str, app: str = "app") -> list[dict[str, Any]]:
    """license_applications rows linking each license to ``app``."""
    return [{"license_id": lic, "application_id": app} for lic in license_ids]


def _installs(*device_ids: str, app: str = "app") -> list[dict[str, Any]]:
    """installations rows of ``app`` on each device."""
    return [{"device_id": d, "application_id": app} for d in device_ids]


def _device_licenses(*licenses: dict[str, Any]) -> list[dict[str, Any]]:
    """Device licenses, their priority in argument order."""
    return [{"metric": "device", "priority": p, **lic} for p, lic in enumerate(licenses)]


def test_retired_user_devices_consume_alone():
    tables = _tables(
        users=[
            {"user_id": "r", "status": "retired"},
            {"user_id": "i", "status": "inactive"},
            {"user_id": "a"},  # status null: active
        ],
        devices=[
            {"device_id": "r1", "user_id": "r"},
            {"device_id": "r2", "user_id": "r"},
            {"device_id": "i1", "user_id": "i"},
            {"device_id": "a1", "user_id": "a"},
            {"device_id": "a2", "user_id": "a"},
        ],
        installations=_installs("r1", "r2", "i1", "a1", "a2"),
        licenses=[{"license_id": "U", "metric": "user", "multiple_use": 1}],
        license_applications=_one_app("U"),
    )
    out = reference_consumption(tables)
    assert _rows(out) == {
        ("device", "i1"): (1, 1.0, "installed", None, False),
        ("device", "r1"): (1, 1.0, "installed", None, False),
        ("device", "r2"): (1, 1.0, "installed", None, False),
        ("user", "a"): (2, 2.0, "installed", None, False),
    }
    _check_engine(tables, out)


def test_allocation_on_inactive_user_is_ignored():
    tables = _tables(
        users=[
            {"user_id": "i", "status": "inactive"},
            {"user_id": "nodevice", "status": "retired"},
        ],
        devices=[{"device_id": "i1", "user_id": "i"}],
        installations=_installs("i1"),
        licenses=[
            {"license_id": "A", "metric": "user"},
            {"license_id": "B", "metric": "user", "priority": 1, "allocations_consume": True},
        ],
        license_applications=_one_app("A", "B"),
        allocations=[
            {"license_id": "B", "target_id": "i", "type": "permanent", "exemption": "audit"},
            {"license_id": "B", "target_id": "nodevice", "type": "permanent", "override": 4.0},
        ],
    )
    out = reference_consumption(tables)
    # Not bound to B, not forced onto B, no exemption: the free pair goes to A as a device.
    assert _rows(out) == {("device", "i1"): (1, 1.0, "installed", None, False)}
    assert [r["license_id"] for r in out["consumption"]] == ["A"]
    _check_engine(tables, out)


def test_host_allocation_flows_down_to_vms():
    tables = _tables(
        devices=[{"device_id": "h"}, {"device_id": "vm", "host_id": "h"}, {"device_id": "pc"}],
        installations=_installs("vm", "pc"),
        licenses=[
            {"license_id": "L1", "metric": "device", "priority": 0},
            {"license_id": "L2", "metric": "device", "priority": 1, "vm_rights": "host"},
        ],
        license_applications=_one_app("L1", "L2"),
        allocations=[{"license_id": "L2", "target_id": "h", "type": "allocated", "override": 5.0}],
    )
    out = reference_consumption(tables)
    # The VM is bound to L2 through its host although L1 comes first; the host is not forced
    # (allocations_consume false, no evidence) and its override does not carry over.
    assert _rows(out, "L2") == {("device", "vm"): (1, 1.0, "installed", None, False)}
    assert _rows(out, "L1") == {("device", "pc"): (1, 1.0, "installed", None, False)}
    _check_engine(tables, out)


def test_vm_bound_through_host_ranks_first_for_over_utilization():
    tables = _tables(
        devices=[{"device_id": "h"}, {"device_id": "z9", "host_id": "h"}, {"device_id": "a0"}],
        installations=_installs("z9", "a0"),
        licenses=[{"license_id": "L", "metric": "device", "vm_rights": "host", "entitlements": 1}],
        license_applications=_one_app("L"),
        allocations=[{"license_id": "L", "target_id": "h", "type": "awaiting_inventory"}],
    )
    out = reference_consumption(tables)
    # "Bound consumers include VMs bound through their host's allocation": z9 before a0.
    assert _rows(out) == {
        ("device", "a0"): (1, 1.0, "installed", None, True),
        ("device", "z9"): (1, 1.0, "installed", None, False),
    }
    _check_engine(tables, out)


def test_core_vms_capped_by_host_points():
    vms = {"v0": None, "v1": 1, "v2": 2, "v3": 2, "v4": 1, "v9": 4}  # on h1 (4 cores)
    tables = _tables(
        devices=[{"device_id": "h1", "cores": 4}, {"device_id": "h2", "cores": 3}]
        + [{"device_id": v, "host_id": "h1", "cores": c} for v, c in vms.items()]
        + [
            {"device_id": "v5", "host_id": "h2", "cores": 3},
            {"device_id": "v6", "host_id": "h2", "cores": 1},
        ],
        installations=_installs(*vms, "v5", "v6"),
        licenses=[{"license_id": "C", "metric": "core", "vm_rights": "host"}],
        license_applications=_one_app("C"),
        allocations=[
            {"license_id": "C", "target_id": "v9", "type": "unallocated", "override": 3.0}
        ],
    )
    out = reference_consumption(tables)
    assert _rows(out) == {
        # left out of the cap: unknown cores and override
        ("device", "v0"): (1, 0.0, "missing_hardware", None, False),
        ("device", "v9"): (1, 3.0, "override", "unallocated", False),
        # h1: 4 points; running 1, 3, then v3 crosses (remainder 1), v4 gets 0
        ("device", "v1"): (1, 1.0, "installed", None, False),
        ("device", "v2"): (1, 2.0, "installed", None, False),
        ("device", "v3"): (1, 1.0, "capped_by_host", None, False),
        ("device", "v4"): (1, 0.0, "capped_by_host", None, False),
        # h2: 3 points; v5 reaches them exactly and keeps its reason
        ("device", "v5"): (1, 3.0, "installed", None, False),
        ("device", "v6"): (1, 0.0, "capped_by_host", None, False),
    }
    _check_engine(tables, out)


def test_unknown_core_vm_left_out_of_cap_even_when_line3_gives_one():
    tables = _tables(
        devices=[
            {"device_id": "h", "cores": 0},
            {"device_id": "v", "host_id": "h"},
            {"device_id": "w", "host_id": "h", "cores": 2},
        ],
        licenses=[{"license_id": "C", "metric": "core", "vm_rights": "host"}],  # no application
        allocations=[
            {"license_id": "C", "target_id": "v", "type": "permanent"},
            {"license_id": "C", "target_id": "w", "type": "permanent"},
        ],
    )
    out = reference_consumption(tables)
    # Line 3 gives both VMs 1; h (not a consumer) has 0 points. "exempt, override and
    # unknown-core VMs are left out of the cap; forced VMs are capped"
    assert _rows(out) == {
        ("device", "v"): (1, 1.0, "permanent", "permanent", False),
        ("device", "w"): (1, 0.0, "capped_by_host", "permanent", False),
    }
    _check_engine(tables, out)


def test_host_consumer_covers_direct_vms_only_even_at_zero():
    tables = _tables(
        devices=[
            {"device_id": "h", "cores": 8},
            {"device_id": "v", "host_id": "h", "cores": 2},
            {"device_id": "w", "host_id": "h", "cores": 2},
            {"device_id": "x", "host_id": "v", "cores": 2},
            {"device_id": "z", "host_id": "h", "cores": 1},
            {"device_id": "y", "host_id": "z", "cores": 3},
        ],
        installations=_installs("h", "v", "w", "x", "y"),
        licenses=[
            {"license_id": "C", "metric": "core", "vm_rights": "host", "points_per_core": 0.5}
        ],
        license_applications=_one_app("C"),
        allocations=[
            {"license_id": "C", "target_id": "h", "type": "unallocated", "exemption": "lab"},
            {"license_id": "C", "target_id": "w", "type": "unallocated", "override": 2.0},
        ],
    )
    out = reference_consumption(tables)
    assert _rows(out) == {
        ("device", "h"): (1, 0.0, "exempt", "unallocated", False),
        ("device", "v"): (1, 0.0, "covered_by_host", None, False),  # h consumes, even at 0
        ("device", "w"): (1, 2.0, "override", "unallocated", False),  # override wins
        ("device", "x"): (1, 0.0, "covered_by_host", None, False),  # direct host v consumes
        ("device", "y"): (1, 0.5, "capped_by_host", None, False),  # z does not: capped at 0.5
    }
    _check_engine(tables, out)


def test_forced_user_with_no_devices_counts_one_device():
    tables = _tables(
        users=[{"user_id": "u"}, {"user_id": "p"}],
        devices=[{"device_id": f"p{i}", "user_id": "p"} for i in range(3)],
        licenses=[
            {"license_id": "E", "metric": "user", "allocations_consume": True},
            {"license_id": "N", "metric": "user", "multiple_use": 1},  # no linked application
        ],
        license_applications=_one_app("E"),
        allocations=[
            {"license_id": "E", "target_id": "u", "type": "awaiting_inventory"},
            {"license_id": "N", "target_id": "p", "type": "permanent"},
            {"license_id": "N", "target_id": "u", "type": "allocated"},  # allocations_consume false
        ],
    )
    out = reference_consumption(tables)
    assert _rows(out, "E") == {("user", "u"): (1, 1.0, "allocation", "awaiting_inventory", False)}
    # Table line 3: 1, and devices still reports n.
    assert _rows(out, "N") == {("user", "p"): (3, 1.0, "permanent", "permanent", False)}
    _check_engine(tables, out)


def test_unallocated_override_zero_draws_free_pair_by_zero_delta():
    tables = _tables(
        devices=[{"device_id": "d"}],
        installations=_installs("d"),
        licenses=_device_licenses({"license_id": "L1"}, {"license_id": "L2"}),
        license_applications=_one_app("L1", "L2"),
        allocations=[
            {"license_id": "L2", "target_id": "d", "type": "unallocated", "override": 0.0}
        ],
    )
    out = reference_consumption(tables)
    # Not bound (unallocated), but its override makes Δ = 0 on L2, before L1's Δ = 1.
    assert _rows(out, "L2") == {("device", "d"): (1, 0.0, "override", "unallocated", False)}
    assert _rows(out, "L1") == {}
    _check_engine(tables, out)


def test_unallocated_exemption_binds_pair_to_its_license():
    tables = _tables(
        devices=[{"device_id": "d"}],
        installations=_installs("d"),
        licenses=_device_licenses({"license_id": "L1"}, {"license_id": "L2"}),
        license_applications=_one_app("L1", "L2"),
        allocations=[
            {"license_id": "L2", "target_id": "d", "type": "unallocated", "exemption": "lab"}
        ],
    )
    out = reference_consumption(tables)
    assert _rows(out, "L2") == {("device", "d"): (1, 0.0, "exempt", "unallocated", False)}
    assert _evidence(out) == {"L1": 0, "L2": 1}
    _check_engine(tables, out)


def test_free_pair_prefers_candidate_with_zero_delta():
    tables = _tables(
        users=[{"user_id": "u"}],
        devices=[{"device_id": "d1", "user_id": "u"}],
        installations=_installs("d1", app="a") + _installs("d1", app="b"),
        licenses=[
            {"license_id": "L1", "metric": "user", "priority": 0},
            {"license_id": "L2", "metric": "user", "priority": 1},
        ],
        license_applications=[
            {"license_id": "L2", "application_id": "a"},
            {"license_id": "L1", "application_id": "b"},
            {"license_id": "L2", "application_id": "b"},
        ],
    )
    out = reference_consumption(tables)
    # (d1, a) goes to L2, its only candidate; (d1, b) then costs nothing more on L2.
    assert _rows(out, "L2") == {("user", "u"): (1, 1.0, "installed", None, False)}
    assert _evidence(out) == {"L1": 0, "L2": 2}
    _check_engine(tables, out)


def test_fractional_consumption_so_far_counts_against_entitlements():
    tables = _tables(
        devices=[{"device_id": "d1", "cores": 1}, {"device_id": "d2", "cores": 4}],
        installations=_installs("d1", "d2"),
        licenses=[
            {"license_id": "C", "metric": "core", "entitlements": 2, "points_per_core": 0.5},
            {"license_id": "D", "metric": "device", "entitlements": 0, "priority": -1},
        ],
        license_applications=_one_app("C", "D"),
    )
    out = reference_consumption(tables)
    # Candidates D, C. d1 does not fit D (0 + 1 > 0) but fits C (0 + 0.5 <= 2); d2 fits neither
    # (C: 0.5 + 2 > 2) and no license has true_up: back to the first candidate, D.
    assert _rows(out, "C") == {("device", "d1"): (1, 0.5, "installed", None, False)}
    assert _rows(out, "D") == {("device", "d2"): (1, 1.0, "installed", None, True)}
    _check_engine(tables, out)


def test_free_pairs_ordered_by_known_user_id_whatever_the_metric():
    tables = _tables(
        users=[{"user_id": "z"}],
        devices=[{"device_id": "a", "user_id": "z"}, {"device_id": "b"}],
        installations=_installs("a", "b"),
        licenses=[
            {"license_id": "L1", "metric": "device", "entitlements": 1},
            {"license_id": "L2", "metric": "device", "priority": 1},
        ],
        license_applications=_one_app("L1", "L2"),
    )
    out = reference_consumption(tables)
    # Consumer keys: a -> "z" (its known user), b -> "b"; so b is taken first and fills L1.
    assert set(_rows(out, "L1")) == {("device", "b")}
    assert set(_rows(out, "L2")) == {("device", "a")}
    _check_engine(tables, out)


def test_device_precedes_user_with_same_id_for_over_utilization():
    tables = _tables(
        users=[{"user_id": "x"}],
        devices=[{"device_id": "d1", "user_id": "x"}, {"device_id": "x"}],
        installations=_installs("d1", "x"),
        licenses=[{"license_id": "U", "metric": "user", "entitlements": 1}],
        license_applications=_one_app("U"),
    )
    out = reference_consumption(tables)
    assert _rows(out) == {
        ("device", "x"): (1, 1.0, "installed", None, False),
        ("user", "x"): (1, 1.0, "installed", None, True),
    }
    _check_engine(tables, out)


def test_user_and_device_with_same_id_are_distinct_consumers_for_delta():
    tables = _tables(
        users=[{"user_id": "x"}],
        devices=[{"device_id": "x"}, {"device_id": "d1", "user_id": "x"}],
        installations=_installs("x", "d1"),
        licenses=[
            {"license_id": "L1", "metric": "user", "entitlements": 1, "multiple_use": 0},
            {"license_id": "L2", "metric": "user", "priority": 1},
        ],
        license_applications=_one_app("L1", "L2"),
    )
    out = reference_consumption(tables)
    # Both pairs have consumer key "x"; d1 (user x) comes first and fills L1. Device x is a new
    # consumer of L1 (Δ 1, no room), not user x's device, so it goes to L2.
    assert _rows(out, "L1") == {("user", "x"): (1, 1.0, "installed", None, False)}
    assert _rows(out, "L2") == {("device", "x"): (1, 1.0, "installed", None, False)}
    _check_engine(tables, out)


def test_core_license_with_unknown_cores():
    tables = _tables(
        devices=[{"device_id": "d"}, {"device_id": "e"}, {"device_id": "f", "cores": 2}],
        installations=_installs("d"),
        licenses=[
            {"license_id": "C", "metric": "core", "min_points": 4.0, "allocations_consume": True},
            {"license_id": "P", "metric": "core"},  # no linked application
        ],
        license_applications=_one_app("C"),
        allocations=[
            {"license_id": "C", "target_id": "e", "type": "allocated"},
            {"license_id": "C", "target_id": "f", "type": "permanent"},
            {"license_id": "P", "target_id": "e", "type": "permanent"},
        ],
    )
    out = reference_consumption(tables)
    assert _rows(out, "C") == {
        ("device", "d"): (1, 0.0, "missing_hardware", None, False),
        ("device", "e"): (1, 0.0, "missing_hardware", "allocated", False),
        ("device", "f"): (1, 4.0, "permanent", "permanent", False),  # max(min_points, 2 x 1)
    }
    # Table line 3 gives 1 even without cores.
    assert _rows(out, "P") == {("device", "e"): (1, 1.0, "permanent", "permanent", False)}
    _check_engine(tables, out)


def test_duplicate_installations_and_links_count_once():
    tables = _tables(
        devices=[{"device_id": "d"}],
        installations=_installs("d") * 3 + _installs("d", app="zz") * 2,
        licenses=[{"license_id": "L", "metric": "device"}],
        license_applications=_one_app("L") * 2,
    )
    out = reference_consumption(tables)
    assert [(r["evidence"], r["consumed"]) for r in out["license_summary"]] == [(1, 1.0)]
    assert out["unlicensed"] == [{"tenant_id": T, "device_id": "d", "application_id": "zz"}]
    _check_engine(tables, out)


def test_chargeback_groups_org_units_with_null_last_even_at_zero():
    tables = _tables(
        users=[
            {"user_id": "a", "org_unit": "sales"},
            {"user_id": "b", "org_unit": "Ops"},
            {"user_id": "c", "status": "retired", "org_unit": "sales"},
            {"user_id": "n"},
        ],
        devices=[
            {"device_id": "da", "user_id": "a"},
            {"device_id": "db", "user_id": "b"},
            {"device_id": "dc", "user_id": "c"},
            {"device_id": "dn", "user_id": "n"},
            {"device_id": "dx"},
        ],
        installations=_installs("da", "db", "dc", "dn", "dx"),
        licenses=[{"license_id": "U", "metric": "user", "unit_cost": 1.5}],
        license_applications=_one_app("U"),
        allocations=[
            {"license_id": "U", "target_id": "b", "type": "unallocated", "exemption": "vip"}
        ],
    )
    out = reference_consumption(tables)
    assert out["chargeback"] == [
        {"tenant_id": T, "license_id": "U", "org_unit": "Ops", "consumption": 0.0, "cost": 0.0},
        {"tenant_id": T, "license_id": "U", "org_unit": "sales", "consumption": 2.0, "cost": 3.0},
        {"tenant_id": T, "license_id": "U", "org_unit": None, "consumption": 2.0, "cost": 3.0},
    ]
    _check_engine(tables, out)
