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
