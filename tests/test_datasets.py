"""The dataset store: atomic durable writes, restarts, checksums, LRU eviction under a budget."""

from __future__ import annotations

import json
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pyarrow as pa
import pytest

from licensecore import wire
from licensecore.clients import LicenseCoreClient
from licensecore.clients.errors import DataLoss
from licensecore.server import consumption, datasets
from licensecore.server.app import create_server
from licensecore.server.datasets import DatasetCorrupt, DatasetStore, UnknownDataset
from licensecore.server.errors import InputError
from licensecore.server.limits import LimitExceeded
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

USERS = pa.table({"tenant_id": ["t1", "t1", "t2"], "user_id": ["alice", "bob", "alice"],
                  "status": ["active", "active", "retired"], "org_unit": ["eng", None, "ops"]})
DEVICES = pa.table({
    "tenant_id": ["t1", "t2"], "device_id": ["d1", "d1"], "user_id": ["alice", "alice"],
    "host_id": pa.array([None, None], pa.string()), "cores": pa.array([4, None], pa.int32()),
})
INSTALLATIONS = pa.table({"tenant_id": ["t1", "t2"], "device_id": ["d1", "d1"],
                          "application_id": ["visio", "visio"]})
LICENSES = pa.table({
    "tenant_id": ["t1"], "license_id": ["L1"], "metric": ["device"],
    "entitlements": pa.array([1], pa.int64()), "vm_rights": ["none"], "true_up": [False],
    "unit_cost": [2.5],
})
LICENSE_APPLICATIONS = pa.table({"tenant_id": ["t1"], "license_id": ["L1"], "application_id": ["visio"]})
TABLES = {"users": USERS, "devices": DEVICES, "installations": INSTALLATIONS, "licenses": LICENSES,
          "license_applications": LICENSE_APPLICATIONS}


def _dataset(rows: int, tenant: str = "t1") -> dict[str, pa.Table]:
    return {"installations": pa.table({
        "tenant_id": [tenant] * rows, "device_id": ["d1"] * rows,
        "application_id": [f"app-{i:06d}" for i in range(rows)],
    })}


def _nbytes(tables: dict[str, pa.Table]) -> int:
    return sum(t.nbytes for t in tables.values())


def _assert_same(got: dict[str, pa.Table], want: dict[str, pa.Table]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].equals(want[name], check_metadata=True), name


# --- in memory --------------------------------------------------------------------------------


def test_memory_store_round_trip_and_unknown_handle():
    store = DatasetStore()
    handle = store.put(TABLES)
    assert re.fullmatch(r"[0-9a-f]{32}", handle)
    _assert_same(store.get(handle), TABLES)
    assert store.tenants(handle) == {"t1", "t2"}
    with pytest.raises(UnknownDataset):
        store.get("0" * 32)


def test_tenants_by_table_gives_each_tables_tenants_as_text():
    tables = {
        "users": USERS,
        "none": pa.table({"user_id": ["u1"]}),
        "ints": pa.table({"tenant_id": pa.array([7, None, 7], pa.int64())}),
        "lists": pa.table({"tenant_id": pa.array([[1]])}),
    }
    assert datasets.tenants_by_table(tables) == {
        "users": frozenset(USERS["tenant_id"].to_pylist()), "none": frozenset(),
        "ints": frozenset({"7"}), "lists": None}


def test_put_keeps_the_union_of_the_tenant_sets_it_is_given():
    store = DatasetStore()
    given = {name: frozenset({f"{name}-tenant"}) for name in TABLES}  # not recomputed
    handle = store.put(TABLES, given)
    assert store.tenants(handle) == {f"{name}-tenant" for name in TABLES}


def test_put_refuses_a_tenant_column_that_is_not_text():
    tables = {"users": pa.table({"tenant_id": pa.array([[1]]), "user_id": ["u1"]})}
    with pytest.raises(InputError) as caught:
        DatasetStore().put(tables)
    assert (caught.value.table, caught.value.column, caught.value.count) == ("users", "tenant_id", 1)


def test_memory_store_evicts_least_recently_used_and_forgets_it():
    a, b, c = _dataset(100), _dataset(100, "t2"), _dataset(100, "t3")
    store = DatasetStore(memory_budget_bytes=2 * _nbytes(a))
    ha, hb = store.put(a), store.put(b)
    store.get(ha)  # a is now more recent than b
    hc = store.put(c)
    with pytest.raises(UnknownDataset):
        store.get(hb)
    with pytest.raises(UnknownDataset):
        store.tenants(hb)
    _assert_same(store.get(ha), a)
    _assert_same(store.get(hc), c)


def test_memory_store_refuses_a_dataset_larger_than_the_budget():
    big = _dataset(1_000)
    store = DatasetStore(memory_budget_bytes=_nbytes(big) - 1)
    with pytest.raises(LimitExceeded) as caught:
        store.put(big)
    assert (caught.value.limit, caught.value.value) == ("memory_budget_bytes", _nbytes(big))


# --- on disk ----------------------------------------------------------------------------------


def test_disk_layout_manifest_and_no_temporaries(tmp_path):
    handle = DatasetStore(tmp_path).put(TABLES)
    assert [p.name for p in tmp_path.iterdir()] == [handle]
    manifest = json.loads((tmp_path / handle / "manifest.json").read_text())
    assert manifest["tenants"] == ["t1", "t2"]
    assert set(manifest["tables"]) == set(TABLES)
    for name, entry in manifest["tables"].items():
        path = tmp_path / handle / entry["file"]
        assert entry["rows"] == TABLES[name].num_rows
        assert entry["bytes"] == path.stat().st_size
        assert len(entry["sha256"]) == 64
        assert pa.ipc.open_file(pa.memory_map(str(path))).read_all().equals(TABLES[name])


def test_restart_finds_the_dataset(tmp_path):
    handle = DatasetStore(tmp_path).put(TABLES)
    reopened = DatasetStore(tmp_path)
    _assert_same(reopened.get(handle), TABLES)
    assert reopened.tenants(handle) == {"t1", "t2"}


def test_failed_write_leaves_no_half_dataset(tmp_path, monkeypatch):
    written = []
    real_fsync = datasets._fsync

    def fsync_then_fail_on_manifest(path: Path) -> None:
        written.append(path.name)
        if path.name == "manifest.json":
            raise OSError("disk full")
        real_fsync(path)

    monkeypatch.setattr(datasets, "_fsync", fsync_then_fail_on_manifest)
    store = DatasetStore(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        store.put(TABLES)
    assert "users.arrow" in written  # table files were written before the failure
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_an_interrupted_write_are_removed_at_start(tmp_path):
    handle = DatasetStore(tmp_path).put(TABLES)
    leftover = tmp_path / f"{datasets.TEMP_PREFIX}{'a' * 32}"
    leftover.mkdir()
    (leftover / "users.arrow").write_bytes(b"half a file")
    reopened = DatasetStore(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [handle]
    _assert_same(reopened.get(handle), TABLES)


def _stored(tmp_path: Path) -> tuple[str, Path]:
    handle = DatasetStore(tmp_path).put(TABLES)
    return handle, tmp_path / handle


def test_flipped_byte_is_detected_not_served(tmp_path):
    handle, directory = _stored(tmp_path)
    path = directory / "installations.arrow"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetCorrupt) as caught:
        DatasetStore(tmp_path).get(handle)
    assert (caught.value.dataset_id, caught.value.file) == (handle, "installations.arrow")
    assert "SHA-256" in caught.value.problem


def test_truncated_file_is_detected(tmp_path):
    handle, directory = _stored(tmp_path)
    path = directory / "users.arrow"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetCorrupt) as caught:
        DatasetStore(tmp_path).get(handle)
    assert caught.value.file == "users.arrow"


def test_missing_file_and_broken_manifest_are_detected(tmp_path):
    handle, directory = _stored(tmp_path)
    (directory / "licenses.arrow").unlink()
    with pytest.raises(DatasetCorrupt, match="licenses.arrow: file missing"):
        DatasetStore(tmp_path).get(handle)
    (directory / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetCorrupt) as caught:
        DatasetStore(tmp_path).get(handle)
    assert caught.value.file == "manifest.json"


@pytest.mark.parametrize("handle", ["../x", "", "A" * 32, "0" * 31, "0" * 32])
def test_handles_that_are_not_stored_datasets_are_unknown(tmp_path, handle):
    DatasetStore(tmp_path).put(TABLES)
    with pytest.raises(UnknownDataset):
        DatasetStore(tmp_path).get(handle)


def test_evicted_dataset_is_read_back_from_disk(tmp_path, monkeypatch):
    a, b = _dataset(200), _dataset(200, "t2")
    store = DatasetStore(tmp_path, memory_budget_bytes=_nbytes(a))
    reads = []
    real_read = datasets._read
    monkeypatch.setattr(datasets, "_read", lambda d, i: reads.append(i) or real_read(d, i))
    ha = store.put(a)
    hb = store.put(b)  # a is evicted from memory
    _assert_same(store.get(hb), b)
    assert reads == []  # b was in memory
    _assert_same(store.get(ha), a)
    assert reads == [ha]  # a came back from disk (and now b is evicted)
    _assert_same(store.get(hb), b)
    assert reads == [ha, hb]


def test_dataset_beyond_the_budget_is_kept_on_disk_only(tmp_path):
    big = _dataset(1_000)
    store = DatasetStore(tmp_path, memory_budget_bytes=_nbytes(big) // 2)
    handle = store.put(big)
    _assert_same(store.get(handle), big)


# --- through the server -----------------------------------------------------------------------


def test_corrupt_dataset_is_data_loss_through_the_client(tmp_path):
    server, port = create_server("127.0.0.1:0", data_dir=tmp_path)
    try:
        with LicenseCoreClient(f"127.0.0.1:{port}", timeout=30) as client:
            handle = client.upload(TABLES)
            server.stop(None)
            path = tmp_path / handle / "devices.arrow"
            path.write_bytes(path.read_bytes()[:-1] + b"\x01")
            server, port = create_server("127.0.0.1:0", data_dir=tmp_path)
        with LicenseCoreClient(f"127.0.0.1:{port}", timeout=30) as client:
            with pytest.raises(DataLoss) as caught:
                client.compute_consumption(handle)
            assert (caught.value.dataset_id, caught.value.file) == (handle, "devices.arrow")
            assert client.health() == "SERVING"
    finally:
        server.stop(None)


def test_upload_cancelled_mid_stream_stores_nothing(tmp_path):
    server, port = create_server("127.0.0.1:0", data_dir=tmp_path)
    sent_all, hold = threading.Event(), threading.Event()

    def requests() -> Iterator[pb.UploadRequest]:
        # The last table stays unfinished: gRPC may end a cancelled request stream like a finished
        # one a moment before the server sees the cancel, and complete tables would then be stored.
        *chunks, final = wire.encode_tables(TABLES)
        for chunk in chunks:
            yield pb.UploadRequest(chunk=chunk)
        yield pb.UploadRequest(chunk=pb.TableChunk(table=final.table, data=final.data[:64]))
        sent_all.set()
        hold.wait(30)  # the stream never ends

    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            upload = pb_grpc.LicenseCoreStub(channel).Upload.future(requests())
            assert sent_all.wait(10)
            upload.cancel()  # the stream is still open: the server never sees its end
            with LicenseCoreClient(f"127.0.0.1:{port}", timeout=30) as client:
                assert client.health() == "SERVING"
                handle = client.upload(TABLES)  # the server goes on; only this dataset is stored
        assert [p.name for p in tmp_path.iterdir()] == [handle]
    finally:
        hold.set()  # only now may the request generator finish
        server.stop(None)


def test_dataset_survives_a_killed_server(serve_process):
    start, processes = serve_process
    with LicenseCoreClient(start(), timeout=60) as client:
        handle = client.upload(TABLES)
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait(10)
    with LicenseCoreClient(start(), timeout=60) as client:
        got = client.compute_consumption(handle)
    _assert_same(got, consumption.compute_consumption(TABLES))
