"""Server limits, deadlines and cancellation: each limit is RESOURCE_EXHAUSTED naming it, the
server stays healthy, and a caller that leaves stops the work and frees its computation slot."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pyarrow as pa
import pytest
from google.rpc import error_details_pb2

from licensecore import wire
from licensecore.clients import LicenseCoreClient
from licensecore.clients.errors import LicenseCoreServerError, ResourceExhausted
from licensecore.server import consumption
from licensecore.server.app import create_server
from licensecore.server.calls import ComputeSlots, Slot, streamed
from licensecore.server.limits import KiB, LimitExceeded, Limits, MiB, parse_bytes
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

USERS = pa.table({"tenant_id": ["t1", "t1"], "user_id": ["alice", "bob"],
                  "status": ["active", "active"], "org_unit": ["eng", None]})
LIMITS = Limits(max_message_bytes=2 * MiB, max_request_bytes=1 * MiB, max_rows=1_000,
                max_concurrent=1, slot_wait_seconds=0.3, memory_budget_bytes=256 * KiB)


def _installations(rows: int) -> pa.Table:
    return pa.table({
        "tenant_id": ["t1"] * rows,
        "device_id": [f"d{i % 7}" for i in range(rows)],
        "application_id": [f"application-{i:09d}" for i in range(rows)],
    })


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    server, port = create_server("127.0.0.1:0", limits=LIMITS)
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture
def client(address: str) -> Iterator[LicenseCoreClient]:
    with LicenseCoreClient(address, timeout=30) as c:
        yield c


@pytest.fixture
def stub(address: str) -> Iterator[pb_grpc.LicenseCoreStub]:
    with grpc.insecure_channel(address) as channel:
        yield pb_grpc.LicenseCoreStub(channel)


def _assert_limit(error: ResourceExhausted, limit: str, maximum: int) -> None:
    assert error.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (error.limit, error.maximum) == (limit, maximum)
    assert error.value > maximum
    assert limit in error.message
    quota = [d for d in error.details if isinstance(d, error_details_pb2.QuotaFailure)]
    assert [v.subject for v in quota[0].violations] == [limit]


def _assert_healthy(client: LicenseCoreClient) -> None:
    assert client.health() == "SERVING"
    got = client.compute_consumption({"users": USERS})
    assert got["consumption"].equals(consumption.compute_consumption({"users": USERS})["consumption"])


# --- each limit -------------------------------------------------------------------------------


def test_too_many_rows_is_refused_naming_max_rows(client):
    with pytest.raises(ResourceExhausted) as caught:
        client.upload({"users": USERS, "installations": _installations(1_001)})
    _assert_limit(caught.value, "max_rows", 1_000)
    assert caught.value.value == 1_001
    _assert_healthy(client)


def test_rows_at_the_limit_are_accepted(client):
    assert client.upload({"installations": _installations(1_000)})


def test_request_beyond_max_request_bytes_is_refused(client):
    big = _installations(1_000).append_column("note", pa.array(["x" * 2_000] * 1_000))
    with pytest.raises(ResourceExhausted) as caught:
        client.compute_consumption({"installations": big})
    _assert_limit(caught.value, "max_request_bytes", 1 * MiB)
    _assert_healthy(client)


def test_endless_chunk_stream_is_cut_off(client, stub):
    sent = 0

    def endless() -> Iterator[pb.TableChunk]:
        nonlocal sent
        while True:  # never the last chunk
            sent += 1
            yield pb.TableChunk(table="installations", data=b"\0" * (64 * KiB), last=False)

    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ComputeConsumptionInline(endless(), timeout=30))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_request_bytes" in caught.value.details()
    assert sent < 40  # 17 chunks pass 1 MiB; the rest is what gRPC buffered ahead
    _assert_healthy(client)


def test_message_beyond_max_message_bytes_is_refused_by_grpc(client, stub):
    chunk = pb.TableChunk(table="users", data=b"\0" * (3 * MiB), last=True)
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ComputeConsumptionInline(iter([chunk]), timeout=30))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    _assert_healthy(client)


def test_upload_beyond_memory_budget_without_data_dir_is_refused(client):
    big = _installations(1_000).append_column("note", pa.array(["x" * 400] * 1_000))
    assert big.nbytes > 256 * KiB
    with pytest.raises(ResourceExhausted) as caught:
        client.upload({"installations": big})
    _assert_limit(caught.value, "memory_budget_bytes", 256 * KiB)
    _assert_healthy(client)


# --- concurrency, deadlines, cancellation -------------------------------------------------------


class _Blocked:
    """A consumption computation that waits for ``release`` (patched in for the server's)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.answer: dict | None = None  # None: the input users

    def __call__(self, tables, compact=False):
        self.calls += 1
        self.started.set()
        assert self.release.wait(30)
        return self.answer if self.answer is not None else {"users": tables["users"]}


@pytest.fixture
def blocked(monkeypatch) -> Iterator[_Blocked]:
    gate = _Blocked()
    monkeypatch.setattr(consumption, "compute_consumption", gate)
    yield gate
    gate.release.set()


def _in_thread(call) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_beyond_max_concurrent_is_refused_after_a_short_wait(address, blocked):
    with LicenseCoreClient(address, timeout=30) as first, LicenseCoreClient(address, timeout=30) as second:
        thread, outcome = _in_thread(lambda: first.compute_consumption({"users": USERS}))
        assert blocked.started.wait(10)
        began = time.monotonic()
        with pytest.raises(ResourceExhausted) as caught:
            second.compute_consumption({"users": USERS})
        assert time.monotonic() - began >= LIMITS.slot_wait_seconds
        assert (caught.value.limit, caught.value.maximum, caught.value.value) == ("max_concurrent", 1, 2)
        blocked.release.set()
        thread.join(10)
        assert outcome[0]["users"].equals(USERS)
        assert second.compute_consumption({"users": USERS})["users"].equals(USERS)
        assert blocked.calls == 2


def test_deadline_passing_while_waiting_for_a_slot_never_computes(address, blocked):
    with LicenseCoreClient(address, timeout=30) as first, LicenseCoreClient(address, timeout=0.1) as hasty:
        thread, _ = _in_thread(lambda: first.compute_consumption({"users": USERS}))
        assert blocked.started.wait(10)
        with pytest.raises(LicenseCoreServerError) as caught:
            hasty.compute_consumption({"users": USERS})
        assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        blocked.release.set()
        thread.join(10)
        assert blocked.calls == 1  # the call past its deadline never reached the computation


def test_deadline_passing_during_compute_frees_the_slot(address, blocked, stub):
    call = stub.ComputeConsumptionInline(wire.encode_tables({"users": USERS}), timeout=1.0)
    assert blocked.started.wait(10)
    with pytest.raises(grpc.RpcError) as caught:
        list(call)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    blocked.release.set()  # the computation ends; the slot must come back for the next call
    with LicenseCoreClient(address, timeout=30) as client:
        assert client.compute_consumption({"users": USERS})["users"].equals(USERS)


def test_cancelled_call_frees_its_slot(address, blocked, stub):
    call = stub.ComputeConsumptionInline(wire.encode_tables({"users": USERS}))
    assert blocked.started.wait(10)
    call.cancel()
    blocked.release.set()
    with LicenseCoreClient(address, timeout=30) as client:
        assert client.compute_consumption({"users": USERS})["users"].equals(USERS)
    assert blocked.calls == 2


def test_cancel_mid_download_frees_the_slot(address, stub):
    devices = pa.table({"tenant_id": ["t1"] * 7, "device_id": [f"d{i}" for i in range(7)],
                        "user_id": ["alice"] * 7, "host_id": pa.array([None] * 7, pa.string()),
                        "cores": pa.array([2] * 7, pa.int32())})
    tables = {"users": USERS, "devices": devices, "installations": _installations(1_000)}
    with LicenseCoreClient(address) as client:
        handle = client.upload(tables)
    responses = stub.ComputeConsumption(pb.ComputeConsumptionRequest(dataset_id=handle))
    next(responses)
    responses.cancel()
    with LicenseCoreClient(address, timeout=30) as client:
        assert client.compute_consumption(handle).keys() == {"consumption", "license_summary",
                                                             "unlicensed", "chargeback"}


def test_cancel_mid_stream_of_a_large_answer_frees_the_slot(address, blocked, stub):
    big = pa.table({"note": pa.array(["x" * 1_000] * 16_000)})  # ~16 MiB: 16 chunks
    blocked.release.set()
    blocked.answer = {"users": big}
    responses = stub.ComputeConsumptionInline(wire.encode_tables({"users": USERS}))
    first = next(responses)
    assert not first.last  # the server is still streaming (held back by flow control)
    responses.cancel()
    with LicenseCoreClient(address, timeout=30) as client:  # slot wait 0.3 s: it must be free
        assert client.compute_consumption({"users": USERS})["users"].equals(big)


# --- the building blocks ----------------------------------------------------------------------


class _Context:
    """A ServicerContext stand-in whose caller leaves after ``active_for`` checks."""

    def __init__(self, active_for: int, remaining: float = 60.0) -> None:
        self.active_for = active_for
        self.remaining = remaining

    def is_active(self) -> bool:
        self.active_for -= 1
        return self.active_for >= 0

    def time_remaining(self) -> float:
        return self.remaining


def test_stream_stops_pulling_when_the_caller_leaves_and_releases_the_slot():
    slots = ComputeSlots(1, 0.0)
    slot = slots.acquire(_Context(10))
    pulled = []

    def messages() -> Iterator[int]:
        for n in range(100):
            pulled.append(n)  # each message is work (a scenario computed, a table encoded)
            yield n

    assert list(streamed(messages(), _Context(3), slot)) == [0, 1, 2]
    assert pulled == [0, 1, 2]
    assert isinstance(slots.acquire(_Context(10)), Slot)  # the slot came back


def test_abandoned_stream_releases_the_slot_when_closed():
    slots = ComputeSlots(1, 0.0)
    stream = streamed(iter(range(10)), _Context(100), slots.acquire(_Context(10)))
    next(stream)
    with pytest.raises(LimitExceeded):
        slots.acquire(_Context(10))
    stream.close()  # what gRPC's dropping of the iterator does
    assert isinstance(slots.acquire(_Context(10)), Slot)


def test_slot_release_is_idempotent():
    slots = ComputeSlots(1, 0.0)
    slot = slots.acquire(_Context(10))
    slot.release()
    slot.release()  # a BoundedSemaphore would raise on a second real release
    slots.acquire(_Context(10))
    with pytest.raises(LimitExceeded):
        slots.acquire(_Context(10))


@pytest.mark.parametrize("text, want", [
    ("1048576", 1 << 20), ("2GiB", 2 << 30), ("512MiB", 512 << 20), ("1.5GB", 1_500_000_000),
    ("64k", 64 << 10), ("10 MB", 10_000_000), ("7b", 7),
])
def test_parse_bytes(text, want):
    assert parse_bytes(text) == want


@pytest.mark.parametrize("text", ["", "GiB", "-1", "2 GiBs", "1e9"])
def test_parse_bytes_rejects(text):
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_defaults_fit_the_xl_benchmark():
    limits = Limits()
    assert limits.max_rows >= 10_000_000  # XL's largest table: 10 M installations
    assert limits.max_request_bytes >= 2 << 30 and limits.memory_budget_bytes >= 2 << 30  # ~1.5 GB
    assert limits.max_message_bytes > wire.CHUNK_BYTES
