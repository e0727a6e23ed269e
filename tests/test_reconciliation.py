"""SPEC section 2: the engine against the plain-Python reference, and the seed thread's case."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from licensecore.server.reconciliation import reconcile
from reference import assert_same_outputs
from reference.reconciliation import reference_reconcile
from strategies import consumption_inputs, describe

AS_OF = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
SKUS = ("sku-a", "sku-b", "sku-c")


@st.composite
def reconciliation_inputs(draw: st.DrawFn) -> dict[str, pa.Table]:
    """Section 1 inputs plus `directory_licenses` over their users, devices and unknown ids."""
    tables = draw(consumption_inputs())
    parties = [(t, p) for name, col in (("users", "user_id"), ("devices", "device_id"))
               if name in tables for t, p in zip(tables[name]["tenant_id"].to_pylist(),
                                                 tables[name][col].to_pylist())]
    int_ids = any(pa.types.is_int64(f.type) for table in tables.values() for f in table.schema
                  if f.name.endswith("_id") and f.name not in ("tenant_id", "sku_id"))
    stranger = (parties[0][0] if parties else "t1", 99 if int_ids else "stranger")
    seats = draw(st.lists(st.tuples(st.sampled_from(parties + [stranger]), st.sampled_from(SKUS)),
                          max_size=12))  # duplicates welcome: one seat per user per SKU
    tables["directory_licenses"] = pa.table({
        "tenant_id": pa.array([p[0] for p, _ in seats], pa.string()),
        "user_id": pa.array([p[1] for p, _ in seats], pa.int64() if int_ids else pa.string()),
        "sku_id": pa.array([s for _, s in seats], pa.string()),
        "assigned_by_group": pa.array([draw(st.sampled_from([None, "g1"])) for _ in seats], pa.string()),
    })
    return tables


def _engine(tables, **options):
    return {name: t.to_pylist() for name, t in reconcile(tables, as_of=AS_OF, **options).items()}


@given(reconciliation_inputs(), st.sampled_from([0, 90, 10_000]))
def test_engine_matches_reference_on_random_inputs(tables, inactive_days):
    want = reference_reconcile(tables, inactive_days=inactive_days, as_of=AS_OF)
    got = _engine(tables, inactive_days=inactive_days)
    assert_same_outputs(want, got), describe(tables)


def test_reclaim_only_checks_sign_ins_when_users_has_the_column():
    tables = {
        "users": pa.table({"tenant_id": ["t"], "user_id": ["u"], "account_enabled": [True]}),
        "directory_licenses": pa.table({"tenant_id": ["t"], "user_id": ["u"], "sku_id": ["S"]}),
    }
    assert _engine(tables)["reclaim"] == []
    tables["users"] = tables["users"].append_column("last_sign_in", pa.array([None], pa.timestamp("us")))
    assert [r["reason"] for r in _engine(tables)["reclaim"]] == ["never_signed_in"]


def _seed_thread(allocations_consume: bool) -> dict[str, pa.Table]:
    """SPEC 5.1: u1 has 135 computers, office on one; E3 user license, multiple use 5, allocated."""
    n = 135
    return {
        "users": pa.table({"tenant_id": ["t"], "user_id": ["u1"]}),
        "devices": pa.table({"tenant_id": ["t"] * n, "device_id": [f"pc{i:03d}" for i in range(n)],
                             "user_id": ["u1"] * n}),
        "installations": pa.table({"tenant_id": ["t"], "device_id": ["pc042"], "application_id": ["office"]}),
        "licenses": pa.table({"tenant_id": ["t"], "license_id": ["E3"], "metric": ["user"],
                              "entitlements": pa.array([100], pa.int64()),
                              "multiple_use": pa.array([5], pa.int32()),
                              "allocations_consume": [allocations_consume], "sku_id": ["ENTERPRISEPACK"]}),
        "license_applications": pa.table({"tenant_id": ["t"], "license_id": ["E3"], "application_id": ["office"]}),
        "allocations": pa.table({"tenant_id": ["t"], "license_id": ["E3"], "target_id": ["u1"],
                                 "type": ["allocated"]}),
        "directory_licenses": pa.table({"tenant_id": ["t"], "user_id": ["u1"], "sku_id": ["ENTERPRISEPACK"]}),
    }


def test_seed_thread_is_a_multiple_use_overflow_of_26():
    out = _engine(_seed_thread(allocations_consume=True))
    assert out["reconciliation_detail"] == [{
        "tenant_id": "t", "sku_id": "ENTERPRISEPACK", "consumer_id": "u1", "directory_seats": 1,
        "computed": 27.0, "difference": 26.0, "reason": "multiple_use_overflow"}]
    assert out["reconciliation"] == [{"tenant_id": "t", "sku_id": "ENTERPRISEPACK",
                                      "directory_seats": 1, "computed": 27.0, "difference": 26.0}]
    assert out == reference_reconcile(_seed_thread(True), as_of=AS_OF)


def test_seed_thread_without_allocations_consume_matches_the_directory():
    out = _engine(_seed_thread(allocations_consume=False))
    assert out["reconciliation_detail"] == []
    assert out["reconciliation"][0]["difference"] == 0.0
