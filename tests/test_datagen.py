"""Tests of the synthetic data generator (size S and tiny custom sizes only, so they are fast)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from licensecore.bench.datagen import SIZES, Size, generate, main, write_dir

TINY = Size(tenants=2, users=60, devices=100, installations=500, applications=40, licenses=12)
TS = pa.timestamp("us", tz="UTC")
TYPES = {
    "users": {"tenant_id": pa.string(), "user_id": "id", "status": pa.string(),
              "org_unit": pa.string(), "account_enabled": pa.bool_(), "last_sign_in": TS},
    "devices": {"tenant_id": pa.string(), "device_id": "id", "user_id": "id", "host_id": "id",
                "cores": pa.int32()},
    "installations": {"tenant_id": pa.string(), "device_id": "id", "application_id": "id"},
    "licenses": {"tenant_id": pa.string(), "license_id": "id", "metric": pa.string(),
                 "entitlements": pa.int64(), "multiple_use": pa.int32(),
                 "allocations_consume": pa.bool_(), "vm_rights": pa.string(),
                 "priority": pa.int32(), "true_up": pa.bool_(), "unit_cost": pa.float64(),
                 "points_per_core": pa.float64(), "min_points": pa.float64(),
                 "sku_id": pa.string()},
    "license_applications": {"tenant_id": pa.string(), "license_id": "id",
                             "application_id": "id"},
    "allocations": {"tenant_id": pa.string(), "license_id": "id", "target_id": "id",
                    "type": pa.string(), "override": pa.float64(), "exemption": pa.string()},
}


@pytest.fixture(scope="module")
def s() -> dict[str, pa.Table]:
    return generate("S", 0)


def _key(table: pa.Table, column: str) -> pa.Array:
    """tenant_id|id strings, so membership tests stay within a tenant."""
    ids = pc.cast(table[column], pa.string())
    return pc.binary_join_element_wise(table["tenant_id"], ids, "|").combine_chunks()


def _counts(table: pa.Table, columns: list[str]) -> np.ndarray:
    grouped = table.group_by(columns).aggregate([([], "count_all")])
    return grouped["count_all"].to_numpy()


def _values(table: pa.Table, column: str) -> set:
    return set(table[column].drop_null().to_pylist())


def check_valid(t: dict[str, pa.Table]) -> None:
    """SPEC section 0/1 validity: unique keys, references resolve inside their tenant."""
    for table, key in (("users", "user_id"), ("devices", "device_id"),
                       ("licenses", "license_id")):
        assert _counts(t[table], ["tenant_id", key]).max() == 1, table
        assert t[table][key].null_count == 0
    users, devices, licenses = (_key(t[n], k) for n, k in
                                (("users", "user_id"), ("devices", "device_id"),
                                 ("licenses", "license_id")))

    def resolves(table: str, column: str, keys: pa.Array, mask=None) -> None:
        refs = t[table] if mask is None else t[table].filter(mask)
        refs = refs.filter(pc.is_valid(refs[column]))
        assert pc.all(pc.is_in(_key(refs, column), value_set=keys)).as_py(), column

    resolves("devices", "user_id", users)
    resolves("devices", "host_id", devices)
    resolves("installations", "device_id", devices)
    resolves("license_applications", "license_id", licenses)
    resolves("allocations", "license_id", licenses)
    alloc = t["allocations"]
    assert _counts(alloc, ["tenant_id", "license_id", "target_id"]).max() == 1
    metric = dict(zip(_key(t["licenses"], "license_id").to_pylist(),
                      t["licenses"]["metric"].to_pylist()))
    is_user = pa.array([metric[k] == "user" for k in _key(alloc, "license_id").to_pylist()])
    resolves("allocations", "target_id", users, is_user)
    resolves("allocations", "target_id", devices, pc.invert(is_user))
    for table, column in (("devices", "cores"), ("licenses", "entitlements"),
                          ("licenses", "multiple_use"), ("licenses", "unit_cost"),
                          ("licenses", "points_per_core"), ("licenses", "min_points"),
                          ("allocations", "override")):
        assert pc.min(t[table][column].fill_null(0)).as_py() >= 0, column
    for table, column in (("licenses", "unit_cost"), ("licenses", "points_per_core"),
                          ("licenses", "min_points"), ("allocations", "override")):
        eighths = t[table][column].drop_null().to_numpy() * 8
        assert np.array_equal(eighths, np.round(eighths)), column


@pytest.mark.parametrize("id_type", ["string", "int64"])
def test_schema_types(id_type: str) -> None:
    tables = generate("S", 0, id_type=id_type)
    id_arrow = pa.string() if id_type == "string" else pa.int64()
    assert list(tables) == list(TYPES)
    for name, types in TYPES.items():
        expected = [(c, id_arrow if ty == "id" else ty) for c, ty in types.items()]
        assert [(f.name, f.type) for f in tables[name].schema] == expected, name
    if id_type == "string":
        assert all(len(g) == 36 and g.count("-") == 4 and g[14] == "4"
                   for g in tables["users"]["user_id"].to_pylist())


def test_deterministic(s: dict[str, pa.Table]) -> None:
    again = generate("S", 0)
    assert all(again[n].equals(s[n]) for n in s)
    other = generate("S", 1)
    assert not other["installations"].equals(s["installations"])


def test_id_type_changes_only_ids(s: dict[str, pa.Table]) -> None:
    ints = generate("S", 0, id_type="int64")
    for name, table in s.items():
        assert ints[name].num_rows == table.num_rows
        for column in table.column_names:
            if not column.endswith("_id") or column in ("tenant_id", "sku_id"):
                assert ints[name][column].equals(table[column]), (name, column)
            else:
                assert ints[name][column].null_count == table[column].null_count


@pytest.mark.parametrize("size,seed", [("S", 0), ("S", 1), (TINY, 0), (TINY, 5)])
def test_valid(size: str | Size, seed: int) -> None:
    check_valid(generate(size, seed))
    check_valid(generate(size, seed, id_type="int64"))


def test_sizes_and_tenants(s: dict[str, pa.Table]) -> None:
    assert set(SIZES) >= {"S", "M", "L", "XL"}
    spec = SIZES["S"]
    assert s["installations"].num_rows == spec.installations
    assert s["users"].num_rows == spec.users and s["devices"].num_rows == spec.devices
    per_tenant = _counts(s["users"], ["tenant_id"])
    assert len(per_tenant) == spec.tenants and len(set(per_tenant)) == spec.tenants
    assert _counts(generate(TINY)["users"], ["tenant_id"]).sum() == TINY.users
    with pytest.raises(ValueError, match="too small"):
        generate(Size(4, 10, 10, 10, 10, 10))
    with pytest.raises(ValueError, match="id_type"):
        generate("S", id_type="uuid")


def test_enums_and_options_present(s: dict[str, pa.Table]) -> None:
    lic, alloc = s["licenses"], s["allocations"]
    assert _values(s["users"], "status") == {"active", "inactive", "retired"}
    assert _values(lic, "metric") == {"device", "user", "core"}
    assert _values(lic, "vm_rights") == {"none", "host"}
    assert _values(alloc, "type") == {"allocated", "permanent", "awaiting_inventory",
                                      "unallocated"}
    assert _values(lic, "multiple_use") == {0, 1, 5}
    assert _values(lic, "allocations_consume") == _values(lic, "true_up") == {True, False}
    assert lic["entitlements"].null_count > 0 and "ENTERPRISEPACK" in _values(lic, "sku_id")
    assert len(_values(lic, "priority")) > 1
    assert 0 < alloc["override"].null_count < alloc.num_rows
    assert 0 < alloc["exemption"].null_count < alloc.num_rows
    assert s["users"]["org_unit"].null_count > 0
    # Per tenant: 20-50 org units and every metric.
    for tenant in _values(s["users"], "tenant_id"):
        users = s["users"].filter(pc.equal(s["users"]["tenant_id"], tenant))
        assert 1 <= len(_values(users, "org_unit")) <= 50
        tenant_lic = lic.filter(pc.equal(lic["tenant_id"], tenant))
        assert _values(tenant_lic, "metric") == {"device", "user", "core"}


def test_licensing_shapes(s: dict[str, pa.Table]) -> None:
    links, inst = s["license_applications"], s["installations"]
    linked_apps = set(_key(links, "application_id").to_pylist())
    installed = set(_key(inst, "application_id").to_pylist())
    assert installed - linked_apps, "some evidence must be unlicensed"
    per_app = _counts(links, ["tenant_id", "application_id"])
    assert set(per_app) == {1, 2}
    assert set(_key(s["licenses"], "license_id").to_pylist()) - set(
        _key(links, "license_id").to_pylist()), "some licenses have no application"
    assert _counts(inst, inst.column_names).max() > 1, "duplicate installation rows"


def test_devices_vms_and_heavy_users(s: dict[str, pa.Table]) -> None:
    dev = s["devices"]
    vms = dev.filter(pc.is_valid(dev["host_id"]))
    assert 0.03 < vms.num_rows / dev.num_rows < 0.07
    host_keys = set(_key(vms, "host_id").to_pylist())
    hosts = dev.filter(pc.is_in(_key(dev, "device_id"), value_set=pa.array(list(host_keys))))
    assert hosts["host_id"].null_count == hosts.num_rows, "hosts are not VMs"
    assert set(hosts["cores"].drop_null().to_pylist()) <= set(range(8, 65))
    assert set(vms["cores"].drop_null().to_pylist()) <= set(range(1, 9))
    assert dev["cores"].null_count > 0 and dev["user_id"].null_count > 0
    owned = dev.filter(pc.is_valid(dev["user_id"]))
    per_user = _counts(owned, ["tenant_id", "user_id"])
    assert np.median(per_user) <= 2 and (per_user >= 100).sum() >= 1


def test_allocation_targets_prefer_active_users(s: dict[str, pa.Table]) -> None:
    users, alloc = s["users"], s["allocations"]
    status = dict(zip(_key(users, "user_id").to_pylist(), users["status"].to_pylist()))
    targets = [status[k] for k in _key(alloc, "target_id").to_pylist() if k in status]
    assert targets and targets.count("active") / len(targets) > 0.8


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "csv"])
def test_write_dir(tmp_path, s: dict[str, pa.Table], fmt: str) -> None:
    paths = write_dir(s, tmp_path, fmt)
    assert sorted(p.name for p in paths) == sorted(f"{n}.{fmt}" for n in s)
    for name, table in s.items():
        path = tmp_path / f"{name}.{fmt}"
        if fmt == "parquet":
            assert pq.read_table(path).equals(table)
        elif fmt == "arrow":
            assert feather.read_table(path).equals(table)
        else:
            assert path.stat().st_size > 0
    with pytest.raises(ValueError):
        write_dir(s, tmp_path, "xlsx")


def test_cli(tmp_path, capsys) -> None:
    main(["--size", "S", "--seed", "3", "--out", str(tmp_path), "--id-type", "int64"])
    out = capsys.readouterr().out
    assert "installations" in out and "10,000" in out
    assert pq.read_table(tmp_path / "allocations.parquet").schema.field("target_id").type \
        == pa.int64()
