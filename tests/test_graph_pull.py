"""``licensecore graph pull`` against the local Graph emulator: the tables equal what it holds."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
from graph_emulator import TOKEN, GraphEmulator, graph_cli, guid, make_user, populate

from licensecore.clients.graph.auth import (StaticTokenCredential, credential_from_env,
                                            resolve_graph_url)
from licensecore.clients.graph.errors import GraphPermissionError
from licensecore.clients.graph.tables import KEYS, user_tables
from licensecore.server.errors import InputError

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")]
TENANT = "contoso"
TABLES = tuple(KEYS)


@pytest.fixture
def emulator(monkeypatch):
    monkeypatch.setenv("LICENSECORE_GRAPH_TOKEN", TOKEN)
    em = GraphEmulator(delta_page_size=400)
    em.start()
    yield em
    em.stop()


def _pull(emulator, out, *extra) -> int:
    return graph_cli(["graph", "pull", "--tenant", TENANT, "--output", str(out),
                      "--graph-url", emulator.base_url, *extra])


def _utc(value):
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def expected(em: GraphEmulator, sign_ins: bool = True) -> dict[str, list[dict]]:
    """The tables straight from the emulator's directory (each user has one state per SKU)."""
    t = TENANT
    users, people, licenses = [], [], []
    for u in em.users.values():
        enabled = u["accountEnabled"]
        users.append({"tenant_id": t, "user_id": u["id"],
                      "status": "active" if enabled else "inactive",
                      "org_unit": u["department"], "account_enabled": enabled,
                      "last_sign_in": _utc(u["signInActivity"]["lastSignInDateTime"]) if sign_ins
                      else None})
        people.append({"tenant_id": t, "person_id": u["id"], "account_id": u["id"],
                       "enabled": enabled, "location_id": u["usageLocation"],
                       "department": u["department"], "job_title": u["jobTitle"],
                       "country": u["country"], "user_principal_name": u["userPrincipalName"]})
        licenses += [{"tenant_id": t, "user_id": u["id"], "sku_id": s["skuId"],
                      "assigned_by_group": s["assignedByGroup"], "state": s["state"]}
                     for s in u["licenseAssignmentStates"]]
    skus = [{"tenant_id": t, "sku_id": s["skuId"], "enabled_units": s["prepaidUnits"]["enabled"],
             "sku_part_number": s["skuPartNumber"], "consumed_units": s["consumedUnits"],
             "service_plans": [p["servicePlanName"] for p in s["servicePlans"]]} for s in em.skus]
    devices = []
    for d in em.devices.values():
        owners = [o for o in d["owners"] if o in em.users]
        devices.append({"tenant_id": t, "device_id": d["id"],
                        "user_id": owners[0] if owners else None, "host_id": None, "cores": None})
    members = [{"tenant_id": t, "license_group_id": g, "account_id": u}
               for g, group in em.groups.items() if group["assignedLicenses"]
               for u in em.members[g] if u in em.users]
    rows = {"users": users, "people": people, "directory_licenses": licenses, "skus": skus,
            "devices": devices, "license_group_members": members}
    return {name: sorted(r, key=lambda row, n=name: tuple(row[k] for k in KEYS[n]))
            for name, r in rows.items()}


def _read(out) -> dict[str, list[dict]]:
    return {name: pq.read_table(out / f"{name}.parquet").to_pylist() for name in TABLES}


def _change_directory(em: GraphEmulator, rng: random.Random) -> None:
    """Updates, new and deleted users, membership moves, a group licensed, one unlicensed and
    one deleted, a device replaced."""
    ids = sorted(em.users)
    sku_ids = [s["skuId"] for s in em.skus]
    for uid in rng.sample(ids, 60):
        enabled = em.users[uid]["accountEnabled"]
        em.put_user(dict(em.users[uid], department="Finance", accountEnabled=not enabled))
    for i in range(25):
        em.put_user(make_user(rng, 10_000 + i, sku_ids, {}))
    licensed = [g for g, group in em.groups.items() if group["assignedLicenses"]]
    unlicensed = next(g for g, group in em.groups.items() if not group["assignedLicenses"])
    for uid in rng.sample(ids, 15):
        em.delete_user(uid)
    alive = sorted(em.users)
    for uid in rng.sample(alive, 40):
        em.add_member(licensed[0], uid)
    for uid in rng.sample(sorted(em.members[licensed[1]]), 30):
        em.remove_member(licensed[1], uid)
    em.put_group(unlicensed, "now licensed", [sku_ids[0]])
    em.put_group(licensed[2], "unlicensed now", [])
    em.delete_group(licensed[3])
    gone = next(iter(em.devices))
    del em.devices[gone]
    d = guid(rng)
    em.devices[d] = {"id": d, "deviceId": guid(rng), "displayName": "PC-new", "owners": [alive[0]]}


def test_full_pull_of_3000_users_then_incremental_delta_pull_match_the_directory(emulator, tmp_path,
                                                                                capsys):
    populate(emulator, 3000, seed=1, devices=400, members_per_group=700)
    out = tmp_path / "tenant"
    assert _pull(emulator, out) == 0
    assert "full pull" in capsys.readouterr().out
    assert _read(out) == expected(emulator)
    # several pages: 3000 users at 400 per delta page, members@delta split over group items
    assert emulator.request_count("/next") >= 8

    _change_directory(emulator, random.Random(7))
    before = len(emulator.requests)
    assert _pull(emulator, out) == 0
    assert "incremental pull" in capsys.readouterr().out
    assert _read(out) == expected(emulator)
    incremental = [path for _, path in emulator.requests[before:]]
    # users and groups came from their delta links, not from a new full round
    assert incremental.count("/users/delta") == 1 and incremental.count("/groups/delta") == 1
    assert "/users/delta()" not in incremental and "/groups/delta()" not in incremental

    assert _pull(emulator, tmp_path / "fresh", "--full") == 0
    assert _read(tmp_path / "fresh") == _read(out)


def test_full_flag_ignores_the_stored_delta_links(emulator, tmp_path):
    populate(emulator, 50, devices=5, members_per_group=10)
    out = tmp_path / "t"
    assert _pull(emulator, out) == 0
    before = len(emulator.requests)
    assert _pull(emulator, out, "--full") == 0
    paths = [p for _, p in emulator.requests[before:]]
    assert "/users/delta()" in paths and "/groups/delta()" in paths


def test_refused_sign_in_activity_pulls_without_it_and_says_so(emulator, tmp_path, capsys):
    populate(emulator, 200, devices=10, members_per_group=20)
    emulator.denied = {"AuditLog.Read.All"}
    out = tmp_path / "t"
    assert _pull(emulator, out) == 0
    err = capsys.readouterr().err
    assert "AuditLog.Read.All" in err and "without signInActivity" in err
    assert _read(out) == expected(emulator, sign_ins=False)


@pytest.mark.parametrize("permission", ["User.Read.All", "GroupMember.Read.All", "Device.Read.All",
                                        "Organization.Read.All"])
def test_forbidden_read_names_the_graph_permission_and_writes_nothing(emulator, tmp_path, permission):
    populate(emulator, 20, devices=2)
    emulator.denied = {permission}
    with pytest.raises(GraphPermissionError, match=permission):
        _pull(emulator, tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_throttled_read_is_retried_after_retry_after(emulator, tmp_path):
    populate(emulator, 300, devices=20, members_per_group=30)
    fault = emulator.inject(429, path="/devices", retry_after=1)
    out = tmp_path / "t"
    assert _pull(emulator, out) == 0
    assert fault.count == 0 and emulator.request_count("/devices") == 2
    assert _read(out) == expected(emulator)


def test_expired_delta_link_falls_back_to_a_full_pull(emulator, tmp_path, capsys):
    populate(emulator, 300, devices=10, members_per_group=50)
    out = tmp_path / "t"
    assert _pull(emulator, out) == 0
    _change_directory(emulator, random.Random(3))
    emulator.expire_delta_links()
    assert _pull(emulator, out) == 0
    assert "expired" in capsys.readouterr().err
    assert _read(out) == expected(emulator)


def test_graph_url_is_https_except_on_the_loopback_host():
    assert resolve_graph_url("https://graph.microsoft.us/v1.0/") == "https://graph.microsoft.us/v1.0"
    assert resolve_graph_url("http://127.0.0.1:8080/v1.0") == "http://127.0.0.1:8080/v1.0"
    assert resolve_graph_url(None, {}) == "https://graph.microsoft.com/v1.0"
    assert resolve_graph_url(None, {"LICENSECORE_GRAPH_URL": "https://x.example/v1.0"}) == \
        "https://x.example/v1.0"
    with pytest.raises(InputError, match="plain http"):
        resolve_graph_url("http://graph.example/v1.0")


def test_one_license_row_per_sku_prefers_active_then_direct_then_smallest_group():
    user = {"id": "u1", "accountEnabled": True, "licenseAssignmentStates": [
        {"skuId": "s1", "assignedByGroup": "g2", "state": "Active"},
        {"skuId": "s1", "assignedByGroup": None, "state": "Error"},
        {"skuId": "s1", "assignedByGroup": "g1", "state": "Active"},
        {"skuId": "s2", "assignedByGroup": "g3", "state": "Error"},
        {"skuId": "s2", "assignedByGroup": None, "state": "Error"},
    ], "assignedLicenses": [{"skuId": "s2"}, {"skuId": "s3"}]}
    rows = user_tables(TENANT, [user])["directory_licenses"].to_pylist()
    assert [(r["sku_id"], r["assigned_by_group"], r["state"]) for r in rows] == [
        ("s1", "g1", "Active"), ("s2", None, "Error"), ("s3", None, None)]


def test_a_token_in_the_environment_takes_precedence_over_azure_identity():
    credential = credential_from_env({"LICENSECORE_GRAPH_TOKEN": "abc"})
    assert isinstance(credential, StaticTokenCredential)
    assert credential.get_token("https://graph.microsoft.com/.default").token == "abc"
    assert type(credential_from_env({})).__name__ == "DefaultAzureCredential"
