"""SPEC section 5, examples 1-4, with every number they state, on the reference and the engine."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from reference import CONSUMPTION_IMPLEMENTATIONS
from strategies import tables_from_rows

T = "tenant-1"
IMPLEMENTATIONS = pytest.mark.parametrize(
    "compute", CONSUMPTION_IMPLEMENTATIONS.values(), ids=list(CONSUMPTION_IMPLEMENTATIONS)
)


def _run(compute, rows: dict[str, list[dict[str, Any]]], id_type: pa.DataType = pa.string()):
    """Outputs of ``compute`` on literal rows of tenant T (tenant_id added to every row)."""
    rows = {name: [{"tenant_id": T, **row} for row in table] for name, table in rows.items()}
    return compute(tables_from_rows(rows, id_type))


def _lines(out) -> list[tuple[str, Any, int, float]]:
    """(consumer_type, consumer_id, devices, consumption) of every consumption row, in order."""
    return [
        (r["consumer_type"], r["consumer_id"], r["devices"], r["consumption"])
        for r in out["consumption"]
    ]


def _summary(out, license_id) -> dict[str, Any]:
    (row,) = [r for r in out["license_summary"] if r["license_id"] == license_id]
    return row


# ----- Example 1: the seed thread -----------------------------------------------------------------


def _seed_thread(multiple_use: int, allocations_consume: bool) -> dict[str, list[dict[str, Any]]]:
    """User u1 with 135 devices, office on one of them, E3 allocated to u1."""
    return {
        "users": [{"user_id": "u1", "status": "active"}],
        "devices": [{"device_id": f"pc{i:03d}", "user_id": "u1"} for i in range(135)],
        "installations": [{"device_id": "pc042", "application_id": "office"}],
        "licenses": [
            {
                "license_id": "E3",
                "metric": "user",
                "entitlements": 100,
                "multiple_use": multiple_use,
                "allocations_consume": allocations_consume,
            }
        ],
        "license_applications": [{"license_id": "E3", "application_id": "office"}],
        "allocations": [{"license_id": "E3", "target_id": "u1", "type": "allocated"}],
    }


@IMPLEMENTATIONS
def test_example1_forced_user_counts_all_135_devices(compute):
    out = _run(compute, _seed_thread(multiple_use=5, allocations_consume=True))
    # "u1 is forced, so all 135 devices count: consumption units(135, 5) = 27, reason allocation."
    assert out["consumption"] == [
        {
            "tenant_id": T,
            "license_id": "E3",
            "consumer_type": "user",
            "consumer_id": "u1",
            "devices": 135,
            "consumption": 27.0,
            "reason": "allocation",
            "allocation": "allocated",
            "over_utilized": False,
        }
    ]
    assert _summary(out, "E3") == {
        "tenant_id": T,
        "license_id": "E3",
        "metric": "user",
        "entitlements": 100,
        "consumed": 27.0,
        "available": 73.0,
        "shortfall": 0.0,
        "shortfall_cost": 0.0,
        "consumers": 1,
        "evidence": 1,
        "over_utilized": 0,
    }
    assert out["unlicensed"] == []
    assert out["chargeback"] == [
        {"tenant_id": T, "license_id": "E3", "org_unit": None, "consumption": 27.0, "cost": 0.0}
    ]


@IMPLEMENTATIONS
def test_example1_unlimited_multiple_use_consumes_one(compute):
    out = _run(compute, _seed_thread(multiple_use=0, allocations_consume=True))
    # "With the scenario multiple_use 0 it is 1."
    (row,) = out["consumption"]
    assert (row["consumption"], row["reason"], row["devices"]) == (1.0, "allocation", 135)
    assert _summary(out, "E3")["consumed"] == 1.0


@IMPLEMENTATIONS
def test_example1_allocations_not_consuming_counts_installed_device_only(compute):
    out = _run(compute, _seed_thread(multiple_use=5, allocations_consume=False))
    # "With allocations_consume false it is units(1, 5) = 1, reason installed."
    (row,) = out["consumption"]
    assert (row["consumption"], row["reason"], row["devices"]) == (1.0, "installed", 1)
    assert row["allocation"] == "allocated"
    assert _summary(out, "E3")["consumed"] == 1.0


# ----- Example 2: allocations take priority -------------------------------------------------------

ALLOCATED = (2, 5, 8, 11, 12)  # 5 of the 12 devices; the 7 others are 1, 3, 4, 6, 7, 9, 10


@IMPLEMENTATIONS
@pytest.mark.parametrize("id_type", [pa.string(), pa.int64()], ids=["string_ids", "int64_ids"])
def test_example2_allocated_devices_never_over_utilized(compute, id_type):
    if id_type == pa.string():
        device, lic, app = (lambda i: f"d{i:02d}"), "L", "app"
    else:
        device, lic, app = (lambda i: i), 100, 200
    rows = {
        "devices": [{"device_id": device(i)} for i in range(1, 13)],
        "installations": [{"device_id": device(i), "application_id": app} for i in range(1, 13)],
        "licenses": [{"license_id": lic, "metric": "device", "entitlements": 10, "unit_cost": 2.5}],
        "license_applications": [{"license_id": lic, "application_id": app}],
        "allocations": [
            {"license_id": lic, "target_id": device(i), "type": "allocated"} for i in ALLOCATED
        ],
    }
    out = _run(compute, rows, id_type)
    summary = _summary(out, lic)
    # "Consumed 12, shortfall 2"
    assert (summary["consumed"], summary["shortfall"], summary["available"]) == (12.0, 2.0, -2.0)
    assert (summary["shortfall_cost"], summary["consumers"], summary["evidence"]) == (5.0, 12, 12)
    # "the two over-utilised consumers are the two highest device_ids among the 7 unallocated ones."
    assert summary["over_utilized"] == 2
    over = [r["consumer_id"] for r in out["consumption"] if r["over_utilized"]]
    assert over == [device(9), device(10)]
    assert all(r["consumption"] == 1.0 and r["reason"] == "installed" for r in out["consumption"])
    allocated = {r["consumer_id"] for r in out["consumption"] if r["allocation"] == "allocated"}
    assert allocated == {device(i) for i in ALLOCATED}


# ----- Example 3: a retired user ------------------------------------------------------------------


def _retired_user(status: str) -> dict[str, list[dict[str, Any]]]:
    return {
        "users": [{"user_id": "r", "status": status, "org_unit": "finance"}],
        "devices": [
            {"device_id": "desktop", "user_id": "r"},
            {"device_id": "laptop", "user_id": "r"},
        ],
        "installations": [
            {"device_id": "desktop", "application_id": "visio"},
            {"device_id": "laptop", "application_id": "visio"},
        ],
        "licenses": [{"license_id": "U", "metric": "user", "multiple_use": 5}],
        "license_applications": [{"license_id": "U", "application_id": "visio"}],
    }


@IMPLEMENTATIONS
def test_example3_retired_user_devices_each_consume(compute):
    out = _run(compute, _retired_user("retired"))
    # "Each device is its own consumer: consumption 2, two rows with consumer_type device."
    assert _lines(out) == [("device", "desktop", 1, 1.0), ("device", "laptop", 1, 1.0)]
    assert all(r["reason"] == "installed" for r in out["consumption"])
    assert _summary(out, "U")["consumed"] == 2.0
    # chargeback: "for a device consumer, of the device's user_id whatever its status"
    assert out["chargeback"] == [
        {"tenant_id": T, "license_id": "U", "org_unit": "finance", "consumption": 2.0, "cost": 0.0}
    ]


@IMPLEMENTATIONS
def test_example3_active_user_consumes_once(compute):
    out = _run(compute, _retired_user("active"))
    # "Were r active: one row, consumer_type user, consumption 1."
    assert _lines(out) == [("user", "r", 2, 1.0)]
    assert _summary(out, "U")["consumed"] == 1.0


# ----- Example 4: spill-over ----------------------------------------------------------------------


def _spill_over(l2_entitlements: int, true_up: str | None) -> dict[str, list[dict[str, Any]]]:
    """Application a, candidates L1 (priority 1, 2 entitlements) and L2 (priority 2)."""
    return {
        "devices": [{"device_id": f"d{i}"} for i in range(1, 6)],
        "installations": [{"device_id": f"d{i}", "application_id": "a"} for i in range(1, 6)],
        "licenses": [
            {
                "license_id": lic,
                "metric": "device",
                "priority": priority,
                "entitlements": ent,
                "true_up": true_up == lic,
            }
            for lic, priority, ent in (("L1", 1, 2), ("L2", 2, l2_entitlements))
        ],
        "license_applications": [
            {"license_id": "L1", "application_id": "a"},
            {"license_id": "L2", "application_id": "a"},
        ],
    }


def _holders(out) -> dict[str, list[str]]:
    holders: dict[str, list[str]] = {"L1": [], "L2": []}
    for row in out["consumption"]:
        holders[row["license_id"]].append(row["consumer_id"])
    return holders


@IMPLEMENTATIONS
def test_example4_spill_over_to_next_candidate(compute):
    out = _run(compute, _spill_over(l2_entitlements=10, true_up=None))
    # "d1, d2 go to L1, d3..d5 to L2."
    assert _holders(out) == {"L1": ["d1", "d2"], "L2": ["d3", "d4", "d5"]}
    assert (_summary(out, "L1")["evidence"], _summary(out, "L2")["evidence"]) == (2, 3)
    assert not any(r["over_utilized"] for r in out["consumption"])


@IMPLEMENTATIONS
@pytest.mark.parametrize(
    ("true_up", "expected"),
    [
        # "If L2 were also full, the rest would go to the first true_up candidate"
        ("L2", {"L1": ["d1", "d2"], "L2": ["d3", "d4", "d5"]}),
        ("L1", {"L1": ["d1", "d2", "d4", "d5"], "L2": ["d3"]}),
        # "else back to L1."
        (None, {"L1": ["d1", "d2", "d4", "d5"], "L2": ["d3"]}),
    ],
    ids=["true_up_L2", "true_up_L1", "no_true_up_back_to_L1"],
)
def test_example4_both_full_goes_to_true_up_else_first(compute, true_up, expected):
    out = _run(compute, _spill_over(l2_entitlements=1, true_up=true_up))
    assert _holders(out) == expected
    over: dict[str, list[str]] = {"L1": [], "L2": []}
    for row in out["consumption"]:
        if row["over_utilized"]:
            over[row["license_id"]].append(row["consumer_id"])
    # The spilled devices are the last in consumer order, so they are the over-utilised ones.
    assert over == {"L1": expected["L1"][2:], "L2": expected["L2"][1:]}
    assert _summary(out, "L1")["shortfall"] == len(expected["L1"]) - 2
