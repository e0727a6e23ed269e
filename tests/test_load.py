"""Load and fault tests on loopback, bounded in calls and time.

32 concurrent clients mix uploads, computations and bad requests with zero unexpected errors and
every result equal to the in-process one; clients cancelled mid-upload and mid-download leave the
server healthy (no half dataset, no computation slot held); a ``licensecore serve --data-dir``
killed with SIGKILL between upload and compute keeps every dataset; ``licensecore loadtest`` sends
the bearer token of ``LICENSECORE_TOKEN``.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pyarrow as pa
import pytest

from licensecore import wire
from licensecore.bench.datagen import Size
from licensecore.clients import LicenseCoreClient
from licensecore.clients.cli import main
from licensecore.clients.loadtest import (
    KINDS,
    BadRequest,
    LoadReport,
    embedded_server,
    run_load,
    workload,
)
from licensecore.server import datasets
from licensecore.server.app import create_server
from licensecore.server.auth import TokenRegistry, create_token
from licensecore.server.consumption import compute_consumption
from licensecore.server.limits import Limits
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

# Small enough for 2 shared cores: two tenants, ~800 input rows per call.
LOAD = workload(Size(tenants=2, users=60, devices=100, installations=500, applications=40,
                     licenses=16), seed=7)


def _equal(got: dict[str, pa.Table], want: dict[str, pa.Table]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].equals(want[name]), name


def test_32_clients_mixing_calls_get_only_expected_answers(capsys):
    with embedded_server() as target:
        report = run_load(target, LOAD, clients=32, calls=320)
    print(report.summary())
    assert report.unexpected == []
    assert report.calls == 320
    assert {kind: len(v) for kind, v in report.latencies.items()} == {
        "upload": 64, "by_handle": 128, "inline": 64, "bad": 64}
    assert len(set(report.handles)) == 64
    summary = capsys.readouterr().out
    assert all(kind in summary for kind in KINDS)
    assert "p50 ms" in summary and "p99 ms" in summary and "0 unexpected error(s)" in summary


def test_load_with_a_memory_budget_of_two_datasets_reads_evicted_ones_back(tmp_path, monkeypatch):
    """64 uploads into a budget of two datasets: by-handle computations find their dataset evicted
    and read it back from the data directory while other clients write theirs."""
    reads = []
    read = datasets._read
    monkeypatch.setattr(datasets, "_read", lambda *args: reads.append(args) or read(*args))
    budget = 2 * sum(t.nbytes for t in LOAD.tables.values())
    server, port = create_server("127.0.0.1:0", data_dir=tmp_path,
                                 limits=Limits(memory_budget_bytes=budget))
    try:
        report = run_load(f"127.0.0.1:{port}", LOAD, clients=32, calls=320)
    finally:
        server.stop(None)
    assert report.unexpected == []
    assert len(report.handles) == 64
    assert {p.name for p in tmp_path.iterdir()} >= set(report.handles)
    print(f"{len(reads)} dataset reads from disk")
    assert len(reads) >= 32


def test_the_load_test_reports_wrong_results_and_wrong_statuses():
    """The checks can fail: a wrong expected result and a wrong expected status are reported."""
    wrong_want = {**LOAD.want, "unlicensed": LOAD.want["unlicensed"].slice(1)}
    unknown = next(bad for bad in LOAD.bad if bad.code is grpc.StatusCode.NOT_FOUND)
    wrong_status = BadRequest(unknown.name, unknown.send, grpc.StatusCode.INVALID_ARGUMENT)
    broken = dataclasses.replace(LOAD, want=wrong_want, bad=(wrong_status,))
    with embedded_server() as target:
        report = run_load(target, broken, clients=2, calls=10)
    assert not report.ok
    assert any("different unlicensed" in problem for problem in report.unexpected)
    assert any("NOT_FOUND" in problem and "expected INVALID_ARGUMENT" in problem
               for problem in report.unexpected)


@pytest.mark.parametrize("tenants, status", [("*", 0), (["tenant-00"], 1)], ids=["all", "one-tenant"])
def test_loadtest_command_sends_the_token_and_prints_the_figures(tmp_path, monkeypatch, capsys,
                                                                 tenants, status):
    """Against a server with tokens: a token for every tenant passes; one scoped to a single
    tenant is refused (PERMISSION_DENIED) and the command exits 1."""
    monkeypatch.setenv("LICENSECORE_TOKEN", create_token(tmp_path / "tokens", tenants))
    server, port = create_server("127.0.0.1:0", tokens=TokenRegistry.load(tmp_path / "tokens"))
    try:
        assert main(["loadtest", "--server", f"127.0.0.1:{port}", "--clients", "4", "--calls", "20",
                     "--size", "S"]) == status
    finally:
        server.stop(None)
    out, err = capsys.readouterr()
    if status == 0:
        assert "20 calls by 4 clients" in out and "0 unexpected error(s)" in out and "p99 ms" in out
    else:
        assert "PERMISSION_DENIED" in err


@pytest.fixture
def loaded_server(tmp_path) -> Iterator[tuple[str, Path, Callable[[], LoadReport]]]:
    """A server (data dir, two computation slots) with a background load of 8 clients running;
    yields its address, its data dir and a function that waits for the load and returns its
    report. The load must end without an unexpected error."""
    data_dir = tmp_path / "data"
    server, port = create_server("127.0.0.1:0", data_dir=data_dir,
                                 limits=Limits(max_concurrent=2, slot_wait_seconds=10.0))
    target = f"127.0.0.1:{port}"
    with futures.ThreadPoolExecutor(1) as pool:
        load = pool.submit(run_load, target, LOAD, clients=8, calls=80)
        try:
            yield target, data_dir, lambda: load.result(120)
            assert load.result(120).unexpected == []
        finally:
            server.stop(None)


def _big_installations() -> dict[str, pa.Table]:
    """LOAD plus 150k unlinked installations: several MiB, so uploads and `unlicensed` outputs
    take many chunks."""
    devices = LOAD.tables["devices"].slice(0, 1)
    rows = 150_000
    extra = pa.table({"tenant_id": pa.array([devices["tenant_id"][0].as_py()] * rows),
                      "device_id": pa.array([devices["device_id"][0].as_py()] * rows),
                      "application_id": pa.array([f"unlinked-{i:07d}" for i in range(rows)])})
    installations = pa.concat_tables([LOAD.tables["installations"], extra.cast(
        LOAD.tables["installations"].schema)])
    return {**LOAD.tables, "installations": installations}


BIG = _big_installations()


def test_upload_cancelled_mid_stream_under_load_stores_nothing(loaded_server):
    target, data_dir, wait_for_load = loaded_server
    chunks = list(wire.encode_tables(BIG))
    assert len(chunks) > 3
    asked_for_more, release = threading.Event(), threading.Event()

    def requests() -> Iterator[pb.UploadRequest]:
        yield pb.UploadRequest(chunk=chunks[0])
        asked_for_more.set()  # gRPC took the first chunk and wants the next
        release.wait(30)
        yield from (pb.UploadRequest(chunk=c) for c in chunks[1:])

    with grpc.insecure_channel(target) as channel:
        upload = pb_grpc.LicenseCoreStub(channel).Upload.future(requests())
        assert asked_for_more.wait(30)
        assert upload.cancel()
        release.set()
        with pytest.raises(grpc.FutureCancelledError):
            upload.result()
    with LicenseCoreClient(target, timeout=60) as client:
        assert client.health() == "SERVING"
        handle = client.upload(BIG)
        _equal(client.compute_consumption(handle), compute_consumption(BIG))
    # Once the background uploads are done too, only complete datasets are on disk: no temporary
    # leftover of the cancelled upload.
    wait_for_load()
    assert not [p.name for p in data_dir.iterdir() if not re.fullmatch(r"[0-9a-f]{32}", p.name)]


def test_downloads_cancelled_after_the_first_chunk_release_their_slots(loaded_server):
    target, _, _ = loaded_server
    want = compute_consumption(BIG)
    with LicenseCoreClient(target, timeout=60) as client:
        handle = client.upload(BIG)
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.LicenseCoreStub(channel)
        for _ in range(4):  # twice the server's two computation slots
            stream = stub.ComputeConsumption(pb.ComputeConsumptionRequest(dataset_id=handle),
                                             timeout=60)
            first = next(stream)
            assert first.table == "consumption"
            stream.cancel()
            with pytest.raises(grpc.RpcError) as caught:
                list(stream)
            assert caught.value.code() is grpc.StatusCode.CANCELLED
    # A leaked slot would make these wait and end RESOURCE_EXHAUSTED; they all complete.
    with LicenseCoreClient(target, timeout=60) as client:
        assert client.health() == "SERVING"
        with futures.ThreadPoolExecutor(3) as pool:
            results = list(pool.map(client.compute_consumption, [handle, handle, handle]))
    for got in results:
        _equal(got, want)


def test_server_killed_between_upload_and_compute_keeps_every_dataset(serve_process):
    start, processes = serve_process
    report = run_load(start(), LOAD, clients=8, calls=40)
    assert report.unexpected == [] and len(report.handles) == 8
    processes[0].send_signal(signal.SIGKILL)
    assert processes[0].wait(10) == -signal.SIGKILL
    with LicenseCoreClient(start(), timeout=60) as client:
        for handle in report.handles:
            _equal(client.compute_consumption(handle), LOAD.want)
