"""Bundle resolution through a real server on loopback: by handle, inline, options, bad input."""

from __future__ import annotations

import pyarrow as pa
import pytest

from licensecore.clients import InputRejected, LicenseCoreClient
from licensecore.server.app import create_server
from licensecore.server.bundles import resolve_bundles


def _table(tenant: str = "t", **cols) -> pa.Table:
    n = len(next(iter(cols.values())))
    return pa.table({"tenant_id": [tenant] * n, **cols})


# SPEC section 5, example 5, plus a second tenant whose license group would lose 11 of 12 members.
TABLES = {
    "people": pa.concat_tables([
        _table(person_id=["p1", "p2", "p3", "p4", "p9"], account_id=["p1", "p2", "p3", "p4", "p9"]),
        _table("u", person_id=["q0"], account_id=["a0"]),
    ]),
    "group_members": _table(
        group_id=["de-staff"] * 4 + ["de-interns"], member_type=["person"] * 3 + ["group", "person"],
        member_id=["p1", "p2", "p3", "de-interns", "p4"]),
    "pools": pa.concat_tables([_table(pool_id=["DE"], sku_id=["E3"]), _table("u", pool_id=["US"], sku_id=["E3"])]),
    "bundles": pa.concat_tables([
        _table(bundle_id=["DE-Std"], pool_id=["DE"], license_group_id=["lg"], capacity=pa.array([2], pa.int64())),
        _table("u", bundle_id=["US-Std"], pool_id=["US"], license_group_id=["lg-us"], capacity=pa.array([None], pa.int64())),
    ]),
    "bundle_rules": pa.concat_tables([
        _table(bundle_id=["DE-Std", "DE-Std"], rule=["assign", "exclude"], actor_type=["group", "person"],
               actor_id=["de-staff", "p2"]),
        _table("u", bundle_id=["US-Std"], rule=["assign"], actor_type=["person"], actor_id=["q0"]),
    ]),
    "license_group_members": pa.concat_tables([
        _table(license_group_id=["lg", "lg"], account_id=["p4", "p9"]),
        _table("u", license_group_id=["lg-us"] * 12, account_id=[f"a{i}" for i in range(12)]),
    ]),
}


@pytest.fixture(scope="module")
def client():
    server, port = create_server("127.0.0.1:0")
    with LicenseCoreClient(f"127.0.0.1:{port}") as c:
        yield c
    server.stop(None)


def _plan(outputs) -> list[tuple]:
    return [(r["tenant_id"], r["op"], r["account_id"], r["status"]) for r in outputs["fulfillment"].to_pylist()]


def test_by_handle_and_inline_equal_in_process(client):
    want = resolve_bundles(TABLES)
    handle = client.upload(TABLES)
    for got in (client.resolve_bundles(handle), client.resolve_bundles(TABLES)):
        assert set(got) == set(want)
        for name in want:
            assert got[name].equals(want[name]), name
    assert _plan(want)[:2] == [("t", "add", "p1", "ready"), ("t", "remove", "p9", "ready")]
    # 11 removes of 12 current members > 0.5 × 12: the guard holds them back.
    us = [p for p in _plan(want) if p[0] == "u" and p[1] == "remove"]
    assert len(us) == 11 and {p[3] for p in us} == {"needs_approval"}


def test_options_travel_by_handle_and_inline(client):
    handle = client.upload(TABLES)
    for source in (handle, TABLES):
        loose = client.resolve_bundles(source, max_remove_fraction=1.0)
        assert {p[3] for p in _plan(loose) if p[0] == "u"} == {"ready"}
        strict = client.resolve_bundles(source, guard_min_members=1, max_remove_fraction=0.0)
        assert ("t", "remove", "p9", "needs_approval") in _plan(strict)


@pytest.mark.parametrize("change, where", [
    ({"collections": _table(collection_id=["c"], filter=["__import__('os')"])}, "collections.filter"),
    ({"locations": _table(location_id=["a", "b"], parent_id=["b", "a"])}, "locations.parent_id"),
    ({"bundles": pa.concat_tables([TABLES["bundles"], _table(
        bundle_id=["x"], pool_id=["nope"], license_group_id=["lg"], capacity=pa.array([1], pa.int64()))])},
     "bundles.pool_id"),
    ({"bundle_rules": _table(bundle_id=["DE-Std"], rule=["grant"], actor_type=["person"], actor_id=["p1"])},
     "bundle_rules.rule"),
    ({"group_members": _table(group_id=["g"], member_type=["user"], member_id=["p1"])}, "group_members.member_type"),
])
def test_bad_input_is_invalid_argument_and_server_keeps_serving(client, change, where):
    for send in (lambda t: client.resolve_bundles(t), lambda t: client.resolve_bundles(client.upload(t))):
        with pytest.raises(InputRejected) as info:
            send({**TABLES, **change})
        assert info.value.field == where
    assert client.health() == "SERVING"
    assert client.resolve_bundles(TABLES)["bundle_assignees"].num_rows == 4


def test_bad_option_is_invalid_argument(client):
    with pytest.raises(InputRejected) as info:
        client.resolve_bundles(TABLES, max_remove_fraction=-1.0)
    assert info.value.field == "options.max_remove_fraction"
