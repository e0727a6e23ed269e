"""Compact tables (``licensecore.compact``): dictionary-encoded or GUID bytes on the wire, the same
tables after ``expand``. Results compact over gRPC only for a caller that asks; inputs a client compacts are
read by the server as the plain columns they stand for."""

from __future__ import annotations

import itertools

import grpc
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensecore import compact, wire
from licensecore.bench import datagen
from licensecore.clients import LicenseCoreClient
from licensecore.server import consumption
from licensecore.server.errors import InputError
from licensecore.server.schema import CONSUMPTION_INPUTS
from licensecore.server.tables import normalize_tables
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

GUIDS = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(300)]


@st.composite
def _values_and_codes(draw) -> tuple[pa.Array, np.ndarray]:
    """A string dictionary (one length, as GUIDs, or several; sliced; up to 300 values, past the
    int8 index range) and codes into it with nulls (-1)."""
    n = draw(st.sampled_from([0, 1, 2, 5, 127, 128, 300]))
    words = GUIDS[:n] if draw(st.booleans()) else ["x" * (i % 4) + str(i) for i in range(n)]
    skip = draw(st.integers(0, 2))
    values = pa.array(["pad"] * skip + words, pa.large_string() if draw(st.booleans()) else pa.string())
    codes = draw(st.lists(st.integers(-1, n - 1), max_size=60) if n else st.lists(st.just(-1), max_size=5))
    return values.slice(skip), np.array(codes, np.int64)


@given(_values_and_codes(), st.sampled_from([0, 1, 8]))
def test_a_compacted_column_expands_to_the_plain_take(values_codes, min_rows):
    values, codes = values_codes
    compact.MIN_ROWS_PER_VALUE, saved = min_rows, compact.MIN_ROWS_PER_VALUE
    try:
        compacted = compact.dictionary_of(values, codes)
    finally:
        compact.MIN_ROWS_PER_VALUE = saved
    want = values.take(pa.array(codes, mask=codes < 0))
    if len(values) * min_rows > codes.size:
        assert compacted is None
        return
    index = pa.int8() if len(values) <= 127 else pa.int16()
    assert compacted.type == pa.dictionary(index, values.type)
    table = compact.tagged(pa.table({"id": compacted, "n": np.arange(codes.size)}),
                           {"id": values.type, "n": pa.int64()})
    assert table.schema.field("id").metadata == {compact.TAG: b"1"}
    expanded = compact.expand(table)
    assert expanded.equals(pa.table({"id": want, "n": np.arange(codes.size)}), check_metadata=True)
    assert expanded.schema.field("id").metadata is None


def test_a_dictionary_column_of_a_dictionary_type_is_not_tagged_nor_expanded():
    ids = pa.array(["a", "b", "a"]).dictionary_encode()
    table = compact.tagged(pa.table({"id": ids, "kind": ids}), {"id": ids.type, "kind": pa.string()})
    assert table.schema.field("id").metadata is None
    assert table.schema.field("kind").metadata == {compact.TAG: b"1"}
    expanded = compact.expand(table)
    assert expanded.column("id").type == ids.type
    assert expanded.column("kind").to_pylist() == ["a", "b", "a"]


def test_strings_that_are_not_few_or_not_strings_are_not_compacted():
    codes = np.zeros(15, np.int64)
    assert compact.dictionary_of(pa.array(["a", "b"]), codes) is None  # 2 values need 16 rows
    assert compact.dictionary_of(pa.array(["a", "b"]), np.zeros(16, np.int64)) is not None
    assert compact.dictionary_of(pa.array([1, 2]), np.zeros(16, np.int64)) is None


# --- compact inputs -----------------------------------------------------------------------------


@pytest.fixture(params=["dictionaries", "guids"])
def compact_everything(request, monkeypatch):
    """Every string column of a row or more is compacted (the real thresholds skip small tables):
    as a dictionary, or (no column being few enough) as GUID bytes where its values are GUIDs."""
    monkeypatch.setattr(compact, "SAMPLE_ROWS", 1)
    monkeypatch.setattr(compact, "MIN_ROWS_PER_VALUE", 0 if request.param == "dictionaries" else 10**9)
    return request.param


def test_compacted_inputs_are_the_columns_of_few_values_or_guids_and_expand_to_the_given_tables(monkeypatch):
    monkeypatch.setattr(compact, "SAMPLE_ROWS", 4000)
    n = 8000
    sampled = np.linspace(0, n - 1, 4000).astype(np.int64)
    looks_few = np.array([f"u{i}" for i in range(n)], object)
    looks_few[sampled] = "same"  # the sample shows one value; the whole column has ~4,000
    table = pa.table({
        "tenant": pa.array([f"t{i % 3}" for i in range(n)]),
        "app": pa.array([f"app-{i % 300}" if i % 7 else None for i in range(n)], pa.large_string()),
        "guid": pa.array([f"{i:08x}-0000-4000-8000-{i:012x}" if i % 5 else None for i in range(n)],
                         pa.large_string()),
        "upper": pa.array([f"{i:08X}-0000-4000-8000-{i:012X}" for i in range(n)]),  # not canonical
        "looks_few": pa.array(looks_few, pa.string()),
        "number": pa.array(np.arange(n) % 3),
    })
    small = pa.table({"tenant": ["t0"] * 3999})
    out = compact.compacted({"big": table, "small": small})
    assert out["small"] is small
    fields = {f.name: f for f in out["big"].schema}
    assert fields["tenant"].type == pa.dictionary(pa.int8(), pa.string())
    assert fields["app"].type == pa.dictionary(pa.int16(), pa.large_string())
    for name in ("tenant", "app"):
        assert fields[name].metadata == {compact.TAG: b"1"}
        assert compact.declared_type(fields[name]) == table.schema.field(name).type
    assert fields["guid"].type == pa.binary(16)
    assert fields["guid"].metadata == {compact.GUID_TAG: b"large_string"}
    assert compact.declared_type(fields["guid"]) == pa.large_string()
    assert out["big"].column("guid")[1].as_py() == bytes.fromhex("00000001000040008000000000000001")
    assert out["big"].column("guid").null_count == n // 5
    for name in ("upper", "looks_few", "number"):
        assert fields[name] == table.schema.field(name)
    assert compact.expand(out["big"]).equals(table)


@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["a", "b", "ab"])), st.integers(1, 9)),
                max_size=12),
       st.integers(1, 4))
def test_runs_are_the_runs_of_equal_values(runs, min_run):
    """``runs`` gives each run's value and length (adjacent equal values are one run) or None, and
    None only where the runs are shorter than ``MIN_RUN_LENGTH`` on average."""
    rows = [v for v, n in runs for _ in range(n)]
    saved = compact.RUN_SAMPLES, compact.RUN_SAMPLE_ROWS, compact.MIN_RUN_LENGTH
    # One sample slice, the whole array: the sample's verdict is the whole array's.
    compact.RUN_SAMPLES, compact.RUN_SAMPLE_ROWS, compact.MIN_RUN_LENGTH = 1, max(len(rows), 1), min_run
    try:
        got = compact.runs(pa.array(rows, pa.string()))
    finally:
        compact.RUN_SAMPLES, compact.RUN_SAMPLE_ROWS, compact.MIN_RUN_LENGTH = saved
    want = [(v, len(list(group))) for v, group in itertools.groupby(rows)]
    if not rows or len(want) * min_run > len(rows):
        assert got is None
        return
    assert got is not None
    values, lengths = got
    assert list(zip(values.to_pylist(), lengths.tolist())) == want


def test_compact_inputs_give_the_plain_results(tables, compact_everything):
    sent = compact.compacted(tables)
    # Tenant ids ("tenant-00") are few but not GUIDs.
    coded = ["device_id", "application_id"] + (["tenant_id"] if compact_everything == "dictionaries" else [])
    assert sorted(f.name for f in sent["installations"].schema if compact.declared_type(f) != f.type) == sorted(coded)
    normalized, _ = normalize_tables(sent, CONSUMPTION_INPUTS, keep_dictionaries=True)
    kept = {"dictionaries": pa.types.is_dictionary, "guids": lambda t: t == compact.GUID_TYPE}[compact_everything]
    assert all(kept(normalized["installations"].schema.field(name).type) for name in coded)
    if compact_everything == "guids":  # a GUID column other than an id's is read as text
        n = tables["users"].num_rows
        device = sent["installations"].schema.field("device_id")
        users = pa.Table.from_arrays(
            [sent["users"].column("tenant_id"), sent["users"].column("user_id"),
             sent["installations"].column("device_id").slice(0, n)],
            schema=pa.schema([sent["users"].schema.field("tenant_id"), sent["users"].schema.field("user_id"),
                              device.with_name("org_unit")]))
        users = normalize_tables({"users": users}, CONSUMPTION_INPUTS, keep_dictionaries=True)[0]["users"]
        assert users.schema.field("user_id").type == compact.GUID_TYPE
        assert users.column("org_unit").to_pylist() == tables["installations"].column("device_id")[:n].to_pylist()
    want = consumption.compute_consumption(tables)
    got = consumption.compute_consumption(sent)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].equals(want[name], check_metadata=True), name


def test_compact_inputs_read_plain_where_the_server_does_not_code_them(compact_everything):
    """Bundle resolution (no dictionary-aware encoder) reads a tagged column as its plain type."""
    from licensecore.bench.datagen_bundles import generate_bundles
    from licensecore.server.bundles import resolve_bundles

    tables = generate_bundles("S", seed=1)
    want = resolve_bundles(tables)
    got = resolve_bundles(compact.compacted(tables))
    for name in want:
        assert got[name].equals(want[name], check_metadata=True), name


def _set(tables: dict[str, pa.Table], table: str, column: str, row: int, value) -> dict[str, pa.Table]:
    """``tables`` with one value changed."""
    t = tables[table]
    values = t.column(column).to_pylist()
    values[row] = value
    i = t.column_names.index(column)
    return {**tables, table: t.set_column(i, t.field(i), pa.array(values, t.field(i).type))}


@pytest.mark.parametrize("table, column, row, value", [
    ("installations", "device_id", 7, "00000000-0000-4000-8000-000000000007"),  # names no device
    ("users", "user_id", 9, None),  # null in a required column
    ("allocations", "target_id", 3, "00000000-0000-4000-8000-000000000003"),  # names no target
])
def test_bad_guid_ids_sent_as_bytes_give_the_plain_error(tables, monkeypatch, table, column, row, value):
    """An error in a column sent as GUID bytes names the same table, column, row, value (as text)
    and count as with plain columns."""
    monkeypatch.setattr(compact, "SAMPLE_ROWS", 1)
    monkeypatch.setattr(compact, "MIN_ROWS_PER_VALUE", 10**9)
    bad = _set(tables, table, column, row, value)
    sent = compact.compacted(bad)
    assert sent[table].schema.field(column).type == compact.GUID_TYPE
    errors = []
    for inputs in (bad, sent):
        with pytest.raises(InputError) as info:
            consumption.compute_consumption(inputs)
        errors.append(info.value)
    assert [(e.table, e.column, e.row, e.value, e.count, e.problem) for e in errors] == [
        (table, column, row, value, 1, errors[0].problem)] * 2


def test_a_guid_tag_that_names_no_string_type_is_a_wrong_type(tables, monkeypatch):
    """A binary(16) column whose tag names anything but string or large_string is not a GUID
    column: the id column is then of a wrong type (bad input), not read as ids of that type."""
    monkeypatch.setattr(compact, "SAMPLE_ROWS", 1)
    monkeypatch.setattr(compact, "MIN_ROWS_PER_VALUE", 10**9)
    sent = compact.compacted(tables)
    users = sent["users"]
    i = users.column_names.index("user_id")
    field = users.field(i)
    assert compact.is_guid_column(field)
    for tag in (b"int64", b"nonsense"):
        bad = users.set_column(i, field.with_metadata({compact.GUID_TAG: tag}), users.column(i))
        assert not compact.is_guid_column(bad.field(i))
        with pytest.raises(InputError) as info:
            consumption.compute_consumption({**sent, "users": bad})
        assert (info.value.table, info.value.column) == ("users", "user_id")
        assert "wrong type" in info.value.problem


# --- over gRPC ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tables():
    return datagen.generate("S", seed=3)


def _raw_consumption(address: str, tables: dict[str, pa.Table], metadata=()) -> dict[str, pa.Table]:
    """The response of ComputeConsumptionInline as sent, not expanded."""
    with grpc.insecure_channel(address) as channel:
        chunks = pb_grpc.LicenseCoreStub(channel).ComputeConsumptionInline(
            wire.encode_tables(tables), metadata=metadata)
        return wire.decode_tables(chunks)


def test_a_caller_that_asks_gets_compact_columns_and_the_client_expands_them(server_address, tables):
    want = consumption.compute_consumption(tables)
    raw = _raw_consumption(server_address, tables, (compact.HEADER,))
    assert [f.name for f in raw["consumption"].schema if pa.types.is_dictionary(f.type)] == [
        "tenant_id", "license_id", "consumer_type", "reason"]
    for name, column in (("consumption", "consumer_id"), ("unlicensed", "device_id")):
        assert raw[name].schema.field(column).type == compact.GUID_TYPE
        assert raw[name].schema.field(column).metadata == {compact.GUID_TAG: b"string"}
    assert raw["consumption"].nbytes < want["consumption"].nbytes
    assert {name: compact.expand(table) for name, table in raw.items()} == want
    with LicenseCoreClient(server_address) as client:
        for got in (client.compute_consumption(tables), client.compute_consumption(client.upload(tables))):
            assert got.keys() == want.keys()
            for name in want:
                assert got[name].equals(want[name], check_metadata=True), name


def test_a_caller_that_does_not_ask_gets_plain_columns(server_address, tables):
    raw = _raw_consumption(server_address, tables)
    assert not any(pa.types.is_dictionary(f.type) for t in raw.values() for f in t.schema)
    assert raw == consumption.compute_consumption(tables)


def test_the_client_sends_compact_inputs(server_address, tables, monkeypatch):
    """With thresholds that S's installations pass, the client's request carries compact columns,
    and the results are those of plain inputs."""
    monkeypatch.setattr(compact, "SAMPLE_ROWS", 1024)
    sent = compact.compacted(tables)["installations"].schema
    assert [f.type for f in sent] == [pa.dictionary(pa.int8(), pa.string()), compact.GUID_TYPE,
                                      pa.dictionary(pa.int16(), pa.string())]
    want = consumption.compute_consumption(tables)
    with LicenseCoreClient(server_address) as client:
        got = client.compute_consumption(tables)
    for name in want:
        assert got[name].equals(want[name], check_metadata=True), name


def test_dictionary_typed_ids_stay_dictionaries_through_the_client(server_address, tables):
    """Output id columns have the input type (SPEC 0): dictionary license ids come back as
    dictionaries, while the compacted columns beside them come back plain."""
    def dictionary_ids(table: pa.Table) -> pa.Table:
        if "license_id" not in table.column_names:
            return table
        i = table.column_names.index("license_id")
        return table.set_column(i, "license_id", table.column(i).dictionary_encode())

    tables = {name: dictionary_ids(table) for name, table in tables.items()}
    want = consumption.compute_consumption(tables)
    assert pa.types.is_dictionary(want["consumption"].column("license_id").type)
    with LicenseCoreClient(server_address) as client:
        got = client.compute_consumption(tables)
    for name in want:
        assert got[name].equals(want[name], check_metadata=True), name
