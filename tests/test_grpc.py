"""The gRPC server in-process on a loopback port: round trips, congruence, health, errors."""

from __future__ import annotations

import grpc
import pyarrow as pa
import pytest
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from hypothesis import given
from hypothesis import strategies as st

from licensecore import wire
from licensecore.clients import (
    DatasetNotFound,
    InputRejected,
    LicenseCoreClient,
    LicenseCoreServerError,
)
from licensecore.clients.errors import error_from_rpc
from licensecore.server import consumption
from licensecore.server.errors import InputError
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

OUTPUTS = {"consumption", "license_summary", "unlicensed", "chargeback"}

USERS = pa.table({
    "tenant_id": ["t1", "t1", "t1", "t2"],
    "user_id": ["alice", "bob", "carol", "alice"],
    "status": ["active", "active", "retired", "active"],
    "org_unit": ["eng", "ops", None, "sales"],
})
DEVICES = pa.table({
    "tenant_id": ["t1", "t1", "t1", "t1", "t2"],
    "device_id": ["d1", "d2", "d3", "h1", "d1"],
    "user_id": ["alice", "alice", "carol", None, "alice"],
    "host_id": [None, None, "h1", None, None],
    "cores": pa.array([4, 8, None, 16, 2], pa.int32()),
})
INSTALLATIONS = pa.table({
    "tenant_id": ["t1", "t1", "t1", "t1", "t1", "t2"],
    "device_id": ["d1", "d2", "d3", "d1", "h1", "d1"],
    "application_id": ["visio", "visio", "project", "office", "sql", "visio"],
})
LICENSES = pa.table({
    "tenant_id": ["t1", "t1", "t1", "t2"],
    "license_id": ["L1", "L2", "L3", "L1"],
    "metric": ["user", "device", "core", "device"],
    "entitlements": pa.array([1, 5, None, 0], pa.int64()),
    "vm_rights": ["none", "none", "host", "none"],
    "true_up": [False, False, False, True],
    "unit_cost": [10.0, 2.5, 0.125, 4.0],
})
LICENSE_APPLICATIONS = pa.table({
    "tenant_id": ["t1", "t1", "t1", "t2"],
    "license_id": ["L1", "L2", "L3", "L1"],
    "application_id": ["visio", "project", "sql", "visio"],
})
ALLOCATIONS = pa.table({
    "tenant_id": ["t1", "t1"],
    "license_id": ["L2", "L1"],
    "target_id": ["d3", "bob"],
    "type": ["permanent", "allocated"],
    "override": pa.array([None, 2.0], pa.float64()),
})
GOOD = {
    "users": USERS,
    "devices": DEVICES,
    "installations": INSTALLATIONS,
    "licenses": LICENSES,
    "license_applications": LICENSE_APPLICATIONS,
    "allocations": ALLOCATIONS,
}


def _with(table: pa.Table, **columns: object) -> pa.Table:
    """``table`` with columns replaced (or appended) by the given values."""
    for name, values in columns.items():
        array = values if isinstance(values, pa.Array) else pa.array(values)
        index = table.schema.get_field_index(name)
        if index >= 0:
            table = table.set_column(index, name, array)
        else:
            table = table.append_column(name, array)
    return table


def _good_with(**tables: pa.Table) -> dict[str, pa.Table]:
    return {**GOOD, **tables}


def _assert_equal_tables(got: dict[str, pa.Table], want: dict[str, pa.Table]) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].equals(want[name], check_metadata=True), name


@pytest.fixture(scope="module")
def client(server_address):
    with LicenseCoreClient(server_address) as c:
        yield c


@pytest.fixture(scope="module")
def stub(server_address):
    with grpc.insecure_channel(server_address) as channel:
        yield pb_grpc.LicenseCoreStub(channel)


# --- round trips and congruence ---------------------------------------------------------------


def test_upload_returns_handle_and_row_counts(stub):
    requests = (pb.UploadRequest(chunk=c) for c in wire.encode_tables(GOOD))
    response = stub.Upload(requests)
    assert len(response.dataset_id) == 32
    assert dict(response.row_counts) == {name: t.num_rows for name, t in GOOD.items()}


def test_compute_by_handle_matches_in_process(client):
    handle = client.upload(GOOD)
    got = client.compute_consumption(handle)
    assert set(got) == OUTPUTS
    _assert_equal_tables(got, consumption.compute_consumption(GOOD))


def test_compute_by_handle_is_repeatable(client):
    handle = client.upload(GOOD)
    _assert_equal_tables(client.compute_consumption(handle), client.compute_consumption(handle))


def test_inline_matches_in_process(client):
    _assert_equal_tables(client.compute_consumption(GOOD), consumption.compute_consumption(GOOD))


def test_empty_request_matches_in_process(client):
    _assert_equal_tables(client.compute_consumption({}), consumption.compute_consumption({}))


def _many_installations(rows: int) -> pa.Table:
    return pa.table({
        "tenant_id": pa.array(["t1"] * rows),
        "device_id": pa.array(["d1", "d2", "d3", "h1"] * (rows // 4)),
        "application_id": pa.array([f"app-{i:07d}" for i in range(rows)]),
    })


def test_large_table_is_split_into_chunks_below_grpcs_default_message_limit():
    table = _many_installations(600_000)
    chunks = list(wire.table_chunks("installations", table))
    assert len(chunks) >= 3
    assert all(len(c.data) <= wire.CHUNK_BYTES for c in chunks)
    assert all(c.ByteSize() < 4 * 1024 * 1024 for c in chunks)
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert wire.decode_tables(chunks)["installations"].equals(table)


def test_large_tables_round_trip_both_ways(client, stub):
    # 200k unlinked applications: the upload and the `unlicensed` output both need many chunks.
    tables = _good_with(installations=_many_installations(200_000))
    requests = (pb.UploadRequest(chunk=c) for c in wire.encode_tables(tables))
    response = stub.Upload(requests)
    assert response.row_counts["installations"] == 200_000
    want = consumption.compute_consumption(tables)
    _assert_equal_tables(client.compute_consumption(response.dataset_id), want)
    _assert_equal_tables(client.compute_consumption(tables), want)


# --- the chunk codecs of licensecore.wire (no protobuf copies of chunk bytes) ------------------

SMALL = pa.table({"tenant_id": ["t1", None, "t2"], "n": pa.array([1, 2, 3], pa.int64())})
CHUNK_REQUESTS = [pb.UploadRequest, pb.ResolveBundlesInlineRequest, pb.ReconcileInlineRequest,
                  pb.WhatIfInlineRequest]


def _reference_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


NESTED = pa.concat_tables([pa.table({  # two record batches of dictionary, list, struct, bool columns
    "d": pa.array(["a", "b", None, "a"] * 50).dictionary_encode(),
    "l": pa.array([[1, 2], None, [3], []] * 50),
    "s": pa.array([{"x": 1, "y": "q"}, None, {"x": 2, "y": None}, {"x": 3, "y": "r"}] * 50),
    "b": pa.array([True, False, None, True] * 50),
})] * 2)


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 1000, 10**9])
@pytest.mark.parametrize("table", [_many_installations(4_000).slice(3), NESTED.slice(5, 300)],
                         ids=["strings", "nested"])  # slices: the writer must not send hidden rows
def test_chunks_cut_the_ipc_stream_anywhere(monkeypatch, chunk_bytes, table):
    stream = _reference_ipc(table)
    monkeypatch.setattr(wire, "CHUNK_BYTES", chunk_bytes)
    chunks = list(wire.table_chunks("installations", table))
    assert b"".join(c.data for c in chunks) == stream
    assert all(0 < len(c.data) <= chunk_bytes for c in chunks)
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert wire.decode_tables(chunks)["installations"].equals(table)


def test_stream_of_an_exact_number_of_chunks_ends_with_a_full_last_chunk(monkeypatch):
    size = len(_reference_ipc(SMALL))
    monkeypatch.setattr(wire, "CHUNK_BYTES", size // 2 if size % 2 == 0 else size)
    chunks = list(wire.table_chunks("users", SMALL))
    assert chunks[-1].last and len(chunks[-1].data) == wire.CHUNK_BYTES


@pytest.mark.parametrize("within", [None, *CHUNK_REQUESTS], ids=lambda w: w and w.__name__)
def test_serialized_messages_are_the_protobuf_encoding_of_the_chunks(monkeypatch, within):
    monkeypatch.setattr(wire, "CHUNK_BYTES", 100)
    table = _many_installations(40)
    chunks = list(wire.table_chunks("installations", table))
    messages = list(wire.table_messages("installations", table, within))
    if within is None:
        assert [pb.TableChunk.FromString(m) for m in messages] == chunks
    else:
        assert [within.FromString(m) for m in messages] == [within(chunk=c) for c in chunks]


@pytest.mark.parametrize("within", CHUNK_REQUESTS, ids=lambda w: w.__name__)
def test_request_parser_reads_chunks_as_protobuf_does(within):
    parse = wire.request_parser(within)
    for chunk in wire.table_chunks("users", SMALL):
        message = within(chunk=chunk).SerializeToString()
        got = parse(message)
        assert isinstance(got, wire.Chunk)
        assert (got.table, bytes(got.data), got.last, got.row_count) == (
            chunk.table, chunk.data, chunk.last, chunk.row_count)
        assert got.nbytes == wire.serialized_size(got) == within(chunk=chunk).ByteSize()
    assert parse(b"") == wire.Chunk()  # no member set: request.chunk reads an empty chunk


@pytest.mark.parametrize("within, other", [
    (pb.ResolveBundlesInlineRequest, {"options": pb.BundleOptions(guard_min_members=3)}),
    (pb.ReconcileInlineRequest, {"options": pb.ReconcileOptions(inactive_days=9)}),
    (pb.WhatIfInlineRequest, {"scenario": pb.ScenarioChunk(scenario="s")}),
], ids=["bundles", "reconcile", "whatif"])
def test_request_parser_follows_the_oneof(within, other):
    parse = wire.request_parser(within)
    chunk = within(chunk=pb.TableChunk(table="users", data=b"x", last=True, row_count=1))
    other = within(**other)
    assert parse(other.SerializeToString()) == other  # the other member: a protobuf message
    both = chunk.SerializeToString() + other.SerializeToString()  # the last member set wins
    assert parse(both) == within.FromString(both) == other
    got = parse(other.SerializeToString() + chunk.SerializeToString())
    assert isinstance(got, wire.Chunk) and got.table == "users"


@given(table=st.text(), data=st.binary(), last=st.booleans(),
       row_count=st.integers(-(2**63), 2**63 - 1), unknown=st.sampled_from([
           b"", b"\x48\x96\x01", b"\x4d\x01\x02\x03\x04", b"\x49" + bytes(8), b"\x52\x02ab",
           b"\x4b\x08\x01\x4c"]))  # varint, fixed32, fixed64, bytes and group fields 9 and 10
def test_parse_chunk_reads_what_protobuf_reads(table, data, last, row_count, unknown):
    message = pb.TableChunk(table=table, data=data, last=last, row_count=row_count)
    serialized = unknown + message.SerializeToString() + unknown
    got = wire.parse_chunk(serialized)
    assert (got.table, bytes(got.data), got.last, got.row_count) == (table, data, last, row_count)
    assert got.nbytes == len(serialized)


def test_merged_chunk_fields_and_repeated_scalars_resolve_as_in_protobuf():
    first = pb.UploadRequest(chunk=pb.TableChunk(table="users", data=b"a", row_count=5))
    second = pb.UploadRequest(chunk=pb.TableChunk(data=b"b", last=True))
    serialized = first.SerializeToString() + second.SerializeToString()
    want = pb.UploadRequest.FromString(serialized).chunk
    got = wire.request_parser(pb.UploadRequest)(serialized)
    assert (got.table, bytes(got.data), got.last, got.row_count) == (
        want.table, want.data, want.last, want.row_count) == ("users", b"b", True, 5)


@pytest.mark.parametrize("serialized", [
    b"\x0a\x05ab", b"\x80", b"\x00", b"\x4c", b"\x4b", b"\x4b\x54", b"\x0a\x02\xff\xfe",
    b"\x0f", b"\xff" * 11,
], ids=["truncated", "varint", "field-0", "group-end", "open-group", "wrong-group-end",
        "bad-utf8", "wire-type-7", "overlong-varint"])
def test_malformed_messages_raise_decode_error_like_protobuf(serialized):
    with pytest.raises(DecodeError):
        pb.TableChunk.FromString(serialized)
    with pytest.raises(DecodeError):
        wire.parse_chunk(serialized)


def test_first_chunk_announces_the_stream_size(monkeypatch):
    monkeypatch.setattr(wire, "CHUNK_BYTES", 100)
    chunks = list(wire.table_chunks("users", SMALL))
    assert chunks[0].stream_bytes == len(_reference_ipc(SMALL))
    assert all(c.stream_bytes == 0 for c in chunks[1:])


def _announcing(stream_bytes: int, data: bytes, *, split: int = 0) -> list[pb.TableChunk]:
    """A table "users" sent in two chunks (cut at ``split``), the first announcing ``stream_bytes``."""
    return [pb.TableChunk(table="users", data=data[:split], stream_bytes=stream_bytes),
            pb.TableChunk(table="users", data=data[split:], last=True, row_count=SMALL.num_rows)]


@pytest.mark.parametrize("announced_more", [1, -1], ids=["fewer-sent", "more-sent"])
def test_a_size_other_than_announced_is_invalid_input(announced_more):
    data = _reference_ipc(SMALL)
    with pytest.raises(InputError) as caught:
        wire.decode_tables(_announcing(len(data) + announced_more, data, split=9))
    assert caught.value.table == "users"
    assert f"{len(data)} byte(s) sent, {len(data) + announced_more} announced" in str(caught.value)


@pytest.mark.parametrize("announced", [10**6, 2**62], ids=["above-max-bytes", "beyond-memory"])
def test_a_size_that_cannot_be_trusted_is_ignored(announced):
    data = _reference_ipc(SMALL)  # the chunks are joined at the end instead
    tables = wire.decode_tables(_announcing(announced, data, split=9),
                                max_bytes=10**5 if announced == 10**6 else None)
    assert tables["users"].equals(SMALL)


@pytest.mark.parametrize("allocate", [pa.allocate_buffer, wire.heap_buffer], ids=["arrow", "heap"])
def test_an_announced_table_is_placed_in_one_buffer_of_its_size(monkeypatch, allocate):
    monkeypatch.setattr(wire, "CHUNK_BYTES", 100)
    sizes = []

    def recorded(size: int) -> pa.Buffer:
        sizes.append(size)
        return allocate(size)

    tables = wire.decode_tables(wire.table_chunks("users", SMALL), allocate=recorded)
    assert tables["users"].equals(SMALL)
    assert sizes == [len(_reference_ipc(SMALL))]


def test_only_the_first_chunk_announces():
    data = _reference_ipc(SMALL)
    chunks = _announcing(0, data, split=9)
    chunks[1].stream_bytes = 5  # ignored
    assert wire.decode_tables(chunks)["users"].equals(SMALL)


def test_upload_of_a_wrong_announced_size_is_invalid_argument(stub):
    data = _reference_ipc(SMALL)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Upload(pb.UploadRequest(chunk=c) for c in _announcing(len(data) - 1, data, split=9))
    error = error_from_rpc(caught.value)
    assert isinstance(error, InputRejected) and error.table == "users"
    assert "announced" in error.message


def test_decoded_chunks_are_views_of_the_received_bytes():
    message = next(wire.table_messages("users", SMALL))
    chunk = wire.parse_chunk(message)
    assert isinstance(chunk.data, memoryview) and chunk.data.obj is message


# --- health and reflection --------------------------------------------------------------------


def test_health_is_serving(client):
    assert client.health() == "SERVING"
    assert client.health("licensecore.v1.LicenseCore") == "SERVING"


def test_reflection_lists_the_services(server_address):
    with grpc.insecure_channel(server_address) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "licensecore.v1.LicenseCore" in services
    assert "grpc.health.v1.Health" in services


# --- errors -----------------------------------------------------------------------------------


def test_unknown_handle_is_not_found(client):
    with pytest.raises(DatasetNotFound) as caught:
        client.compute_consumption("0" * 32)
    assert caught.value.code is grpc.StatusCode.NOT_FOUND


# (tables, table, column, row or None when SPEC leaves the reported row open)
BAD_INPUTS = {
    "missing_required_column": (
        _good_with(licenses=LICENSES.drop_columns(["metric"])), "licenses", "metric", -1),
    "wrong_id_type": (
        {"licenses": _with(LICENSES, license_id=[1.0, 2.0, 3.0, 1.0])},
        "licenses", "license_id", None),
    "wrong_tenant_type": (
        _good_with(users=_with(USERS, tenant_id=pa.array([1, 1, 1, 2], pa.int64()))),
        "users", "tenant_id", None),
    "wrong_number_type": (
        _good_with(devices=_with(DEVICES, cores=["4", "8", None, "16", "2"])),
        "devices", "cores", None),
    "null_in_required_column": (
        _good_with(installations=_with(
            INSTALLATIONS,
            application_id=["visio", None, "project", "office", "sql", "visio"])),
        "installations", "application_id", 1),
    "unknown_enum_value": (
        _good_with(licenses=_with(LICENSES, metric=["user", "seat", "core", "device"])),
        "licenses", "metric", 1),
    "negative_entitlements": (
        _good_with(licenses=_with(LICENSES, entitlements=pa.array([1, -1, None, 0], pa.int64()))),
        "licenses", "entitlements", 1),
    "negative_cores": (
        _good_with(devices=_with(DEVICES, cores=pa.array([-4, 8, None, 16, 2], pa.int32()))),
        "devices", "cores", 0),
    "duplicate_license_id": (
        _good_with(licenses=_with(LICENSES, license_id=["L1", "L1", "L3", "L1"])),
        "licenses", "license_id", None),
    "installation_on_unknown_device": (
        _good_with(installations=_with(
            INSTALLATIONS, device_id=["d1", "d2", "ghost", "d1", "h1", "d1"])),
        "installations", "device_id", 2),
    "allocation_to_unknown_license": (
        _good_with(allocations=_with(ALLOCATIONS, license_id=["L9", "L1"])),
        "allocations", "license_id", 0),
    "device_of_unknown_user": (
        _good_with(devices=_with(DEVICES, user_id=["alice", "zed", "carol", None, "alice"])),
        "devices", "user_id", 1),
}


@pytest.mark.parametrize("path", ["inline", "handle"])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_invalid_argument_naming_table_and_column(client, case, path):
    tables, table, column, row = BAD_INPUTS[case]
    with pytest.raises(InputRejected) as caught:
        client.compute_consumption(tables if path == "inline" else client.upload(tables))
    error = caught.value
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert (error.table, error.column, error.field) == (table, column, f"{table}.{column}")
    if row is not None:
        assert error.row == row
    with pytest.raises(InputError) as in_process:
        consumption.compute_consumption(tables)
    assert error.message == str(in_process.value)


def _chunks(name: str, table: pa.Table) -> list[pb.TableChunk]:
    return list(wire.table_chunks(name, table))


def _ipc_bytes(table: pa.Table) -> bytes:
    return b"".join(c.data for c in _chunks("users", table))


# (chunks, table named by the error)
BAD_STREAMS = {
    "corrupt_ipc_bytes": (
        [pb.TableChunk(table="users", data=b"this is not an arrow stream", last=True,
                       row_count=4)], "users"),
    "truncated_ipc_stream": (
        [pb.TableChunk(table="users", data=_ipc_bytes(USERS)[:-100], last=True, row_count=4)],
        "users"),
    "row_count_mismatch": (
        [pb.TableChunk(table="devices", data=_ipc_bytes(DEVICES), last=True, row_count=9)],
        "devices"),
    "stray_bytes_after_stream": (
        [pb.TableChunk(table="users", data=_ipc_bytes(USERS) + b"junk", last=True,
                       row_count=4)], "users"),
    "stream_ends_before_last_chunk": (
        [pb.TableChunk(table="licenses", data=_ipc_bytes(LICENSES))], "licenses"),
    "unknown_table_name": (_chunks("user", USERS), "user"),
    "duplicate_table": (_chunks("users", USERS) + _chunks("users", USERS), "users"),
}


@pytest.mark.parametrize("rpc", ["Upload", "ComputeConsumptionInline"])
@pytest.mark.parametrize("case", sorted(BAD_STREAMS))
def test_bad_stream_is_invalid_argument_naming_table(stub, case, rpc):
    chunks, table = BAD_STREAMS[case]
    with pytest.raises(grpc.RpcError) as caught:
        if rpc == "Upload":
            stub.Upload(iter(pb.UploadRequest(chunk=c) for c in chunks))
        else:
            list(stub.ComputeConsumptionInline(iter(chunks)))
    error = error_from_rpc(caught.value)
    assert isinstance(error, InputRejected)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert (error.table, error.column, error.field) == (table, "", table)
    assert table in error.message


def test_unexpected_error_is_internal_and_short(client, monkeypatch):
    def broken(tables, compact=False):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(consumption, "compute_consumption", broken)
    with pytest.raises(LicenseCoreServerError) as caught:
        client.compute_consumption(GOOD)
    assert caught.value.code is grpc.StatusCode.INTERNAL
    assert "secret" not in caught.value.message


def test_server_still_serves_after_bad_inputs(client):
    for tables, *_ in BAD_INPUTS.values():
        with pytest.raises(InputRejected):
            client.compute_consumption(tables)
    assert client.health() == "SERVING"
    _assert_equal_tables(client.compute_consumption(GOOD), consumption.compute_consumption(GOOD))
