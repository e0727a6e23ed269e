"""Edges found by the random comparisons, kept as literal regressions (engine and reference)."""

import pyarrow as pa
import pytest

from reference import CONSUMPTION_IMPLEMENTATIONS


@pytest.mark.parametrize("compute", CONSUMPTION_IMPLEMENTATIONS.values(), ids=list(CONSUMPTION_IMPLEMENTATIONS))
def test_unknown_core_vm_forced_by_line_3_is_left_out_of_the_host_cap(compute):
    """SPEC 6: "exempt, override and unknown-core VMs are left out of the cap" — also when table
    line 3 (forced, no linked application) gives the VM 1 rather than missing_hardware."""
    tables = {
        "devices": pa.table({"tenant_id": ["t", "t"], "device_id": ["h", "v"], "host_id": [None, "h"],
                             "cores": pa.array([0, None], pa.int32())}),
        "licenses": pa.table({"tenant_id": ["t"], "license_id": ["L"], "metric": ["core"],
                              "vm_rights": ["host"]}),
        "allocations": pa.table({"tenant_id": ["t"], "license_id": ["L"], "target_id": ["v"],
                                 "type": ["permanent"]}),
    }
    (row,) = compute(tables)["consumption"]
    assert (row["consumer_id"], row["consumption"], row["reason"]) == ("v", 1.0, "permanent")


@pytest.mark.parametrize("compute", CONSUMPTION_IMPLEMENTATIONS.values(), ids=list(CONSUMPTION_IMPLEMENTATIONS))
def test_device_whose_id_equals_a_users_id_is_its_own_consumer_in_the_spill_over(compute):
    """User 17 (known, owner of device 1) and device 17 (no user) share a consumer key; they are
    different consumers, so user 17 on license 0 does not make device 17's pair free on it."""
    tables = {
        "users": pa.table({"tenant_id": ["t"], "user_id": pa.array([17], pa.int64())}),
        "devices": pa.table({"tenant_id": ["t", "t"], "device_id": pa.array([1, 17], pa.int64()),
                             "user_id": pa.array([17, None], pa.int64())}),
        "installations": pa.table({"tenant_id": ["t", "t"], "device_id": pa.array([1, 17], pa.int64()),
                                   "application_id": pa.array([5, 5], pa.int64())}),
        "licenses": pa.table({"tenant_id": ["t", "t"], "license_id": pa.array([0, 5], pa.int64()),
                              "metric": ["user", "user"], "entitlements": pa.array([1, None], pa.int64()),
                              "multiple_use": pa.array([0, 1], pa.int32())}),
        "license_applications": pa.table({"tenant_id": ["t", "t"], "license_id": pa.array([0, 5], pa.int64()),
                                          "application_id": pa.array([5, 5], pa.int64())}),
    }
    rows = [(r["license_id"], r["consumer_type"], r["consumer_id"]) for r in compute(tables)["consumption"]]
    # user 17 takes license 0's only entitlement; device 17 is a new consumer on license 0 (Δ 1,
    # not the 0 that user 17's unlimited multiple use would give) and spills to license 5.
    assert rows == [(0, "user", 17), (5, "device", 17)]
