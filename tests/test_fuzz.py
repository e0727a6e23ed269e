"""Fuzzing of the two parsers that read untrusted bytes and text: the Arrow IPC chunk decoder
(``licensecore.wire.decode_tables``, also through ``Upload`` on a server with a scoped token) and
the collection-filter compiler (``licensecore.server.filters.compile_filter``).

Whatever comes in, the only exception allowed out is the documented one (``InputError`` for the
decoder; ``FilterError`` for filters): never a crash, a hang or another exception type. What is
accepted must be sound: every decoded table has the announced row count and passes Arrow's full
validation, and every compiled filter evaluates to one boolean per row. Example counts come from
the hypothesis profiles in conftest.py.
"""

from __future__ import annotations

import datetime as dt
import itertools

import grpc
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensecore import wire
from licensecore.clients.errors import error_from_rpc
from licensecore.server import filters
from licensecore.server.app import create_server
from licensecore.server.auth import TokenRegistry, create_token
from licensecore.server.errors import InputError
from licensecore.server.limits import LimitExceeded, Limits
from licensecore.server.service import UPLOAD_TABLES
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

# Valid tables of many Arrow types: the seeds the mutations start from.
SEEDS = {
    "users": pa.table({"tenant_id": ["t1", "t1", None], "user_id": ["u1", "ü2", "u3"],
                       "last_sign_in": pa.array([dt.datetime(2024, 1, 1), None, None],
                                                pa.timestamp("us", tz="UTC"))}),
    "devices": pa.table({"tenant_id": ["t"] * 4, "device_id": pa.array([1, 2, 3, 4], pa.int64()),
                         "cores": pa.array([4, None, 2, 8], pa.int32())}),
    "bundles": pa.table({"bundle_id": pa.array(["b1", "b2"]).dictionary_encode(),
                         "disabled_plans": pa.array([["x", "y"], None], pa.list_(pa.string())),
                         "price": [1.5, float("-inf")], "enabled": [True, None]}),
    "empty": pa.table({"id": pa.array([], pa.large_string())}),
}
NAMES = sorted(SEEDS)


def ipc(table: pa.Table) -> bytes:
    return b"".join(c.data for c in wire.table_chunks("x", table))


SEED_BYTES = {name: ipc(table) for name, table in SEEDS.items()}


def decode_or_reject(chunks: list[pb.TableChunk]) -> dict[str, pa.Table] | None:
    """Decode; ``InputError`` is the one allowed refusal (returns None). Accepted tables are
    checked: announced row counts match and Arrow's full validation passes."""
    try:
        tables = wire.decode_tables(chunks)
    except InputError as error:
        assert error.table is not None and error.problem
        return None
    last = {c.table: c.row_count for c in chunks if c.last}
    assert tables.keys() == last.keys()
    for name, table in tables.items():
        assert table.num_rows == last[name]
        table.validate(full=True)
    return tables


@st.composite
def mutated_bytes(draw) -> tuple[str, bytes]:
    """A seed's IPC stream with a few bytes flipped, inserted or deleted, or cut short."""
    name = draw(st.sampled_from(NAMES))
    data = bytearray(SEED_BYTES[name])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return name, bytes(data)


@given(st.binary(max_size=2048), st.integers(-5, 10**12))
def test_random_bytes_are_rejected_with_input_error(data: bytes, rows: int):
    assert decode_or_reject([pb.TableChunk(table="users", data=data, last=True, row_count=rows)]) is None


def test_column_name_that_is_not_utf8_is_input_error():
    """A schema whose field name is not UTF-8 (found by the fuzzer below) is corrupt input."""
    data = SEED_BYTES["bundles"].replace(b"enabled", b"\xe5nabled", 1)
    assert data != SEED_BYTES["bundles"]
    chunk = pb.TableChunk(table="bundles", data=data, last=True, row_count=SEEDS["bundles"].num_rows)
    with pytest.raises(InputError, match="corrupt or truncated"):
        wire.decode_tables([chunk])


@given(mutated_bytes(), st.booleans())
def test_mutated_ipc_streams_only_raise_input_error(mutated: tuple[str, bytes], honest_count: bool):
    name, data = mutated
    rows = SEEDS[name].num_rows if honest_count else SEEDS[name].num_rows + 1
    tables = decode_or_reject([pb.TableChunk(table=name, data=data, last=True, row_count=rows)])
    if not honest_count:
        assert tables is None


@given(st.sampled_from(NAMES), st.data())
def test_truncated_streams_are_rejected_or_lose_nothing(name: str, data: st.DataObject):
    whole = SEED_BYTES[name]
    cut = data.draw(st.integers(0, len(whole) - 1))
    # Arrow's end-of-stream marker is optional, so a cut between whole messages may still decode;
    # then the announced row count guarantees nothing was lost.
    tables = decode_or_reject([pb.TableChunk(table=name, data=whole[:cut], last=True,
                                             row_count=SEEDS[name].num_rows)])
    assert tables is None or tables[name].equals(SEEDS[name])
    # Without its last chunk a table is always refused.
    assert decode_or_reject([pb.TableChunk(table=name, data=whole[:cut])]) is None


@st.composite
def chunk_sequences(draw) -> list[pb.TableChunk]:
    """Seeds' IPC streams cut into random slices, then shuffled, dropped, repeated, renamed and
    re-flagged: the shapes a broken or hostile client can send."""
    chunks = []
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=4)):
        data = SEED_BYTES[name]
        cuts = sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=4)))
        bounds = [0, *cuts, len(data)]
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            last = i == len(bounds) - 2
            chunks.append(pb.TableChunk(table=name, data=data[lo:hi], last=last,
                                        row_count=SEEDS[name].num_rows if last else 0))
    for _ in range(draw(st.integers(0, 3))):
        if not chunks:
            break
        at = draw(st.integers(0, len(chunks) - 1))
        chunk = pb.TableChunk()
        chunk.CopyFrom(chunks[at])
        op = draw(st.sampled_from(["drop", "repeat", "rename", "flag", "count", "swap"]))
        if op == "drop":
            del chunks[at]
        elif op == "repeat":
            chunks.insert(draw(st.integers(0, len(chunks))), chunk)
        elif op == "rename":
            chunk.table = draw(st.sampled_from([*NAMES, "", "users\0", "ü" * 3]))
            chunks[at] = chunk
        elif op == "flag":
            chunk.last = not chunk.last
            chunks[at] = chunk
        elif op == "count":
            chunk.row_count = draw(st.integers(-(2**63), 2**63 - 1))
            chunks[at] = chunk
        else:
            other = draw(st.integers(0, len(chunks) - 1))
            chunks[at], chunks[other] = chunks[other], chunks[at]
    return chunks


@given(chunk_sequences())
def test_chunk_sequences_decode_or_raise_input_error(chunks: list[pb.TableChunk]):
    tables = decode_or_reject(chunks)
    if tables is not None:  # whatever is accepted is exactly some seed (no silent corruption)
        for table in tables.values():
            assert any(table.equals(seed) for seed in SEEDS.values())


def test_unmodified_sequences_decode_to_the_seeds():
    chunks = [c for name in NAMES for c in wire.table_chunks(name, SEEDS[name])]
    assert decode_or_reject(chunks) == SEEDS


# ----- the same over the wire: Upload with a token scoped to tenant t1 ----------------------------


@pytest.fixture(scope="module")
def scoped_upload(tmp_path_factory):
    """Upload on a server with a data directory and tokens; the caller may see tenant t1 only."""
    home = tmp_path_factory.mktemp("wire-fuzz")
    token = create_token(home / "tokens", ["t1"])
    server, port = create_server("127.0.0.1:0", tokens=TokenRegistry.load(home / "tokens"),
                                 data_dir=home / "data")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        upload = pb_grpc.LicenseCoreStub(channel).Upload
        yield lambda chunks: upload(iter([pb.UploadRequest(chunk=c) for c in chunks]),
                                    metadata=[("authorization", f"Bearer {token}")], timeout=30)
    server.stop(None)


@st.composite
def tenant_tables(draw) -> list[pb.TableChunk]:
    """Upload tables (and a few unknown names) whose tenant_id holds t1, t2 or nulls, encoded and
    then, sometimes, cut or mislabelled."""
    chunks = []
    names = st.sampled_from(["users", "devices", "licenses", "people", "pools", "bogus"])
    for name in draw(st.lists(names, max_size=3)):
        tenants = draw(st.lists(st.sampled_from(["t1", "t2", None]), max_size=4))
        table = pa.table({"tenant_id": pa.array(tenants, pa.string()),
                          "id": pa.array([f"x{i}" for i in range(len(tenants))], pa.string())})
        chunks.extend(wire.table_chunks(name, table))
    if chunks and draw(st.booleans()):
        at = draw(st.integers(0, len(chunks) - 1))
        broken = pb.TableChunk()
        broken.CopyFrom(chunks[at])
        cut = draw(st.integers(0, len(broken.data)))
        broken.data = broken.data[:cut]
        broken.row_count = draw(st.sampled_from([broken.row_count, broken.row_count + 1, 10**12]))
        chunks[at] = broken
    return chunks


@given(tenant_tables())
def test_upload_over_the_wire_answers_like_the_decoder_and_keeps_scopes(scoped_upload, chunks):
    """The server's answer is the in-process decoder's: its InputError as INVALID_ARGUMENT (same
    message), a limit as RESOURCE_EXHAUSTED; decodable tables holding tenant t2 are refused
    PERMISSION_DENIED (never stored); the rest are stored with their row counts."""
    try:
        tables = wire.decode_tables(chunks, UPLOAD_TABLES, max_rows=Limits().max_rows)
        expected, message = None, ""
    except InputError as error:
        expected, message = grpc.StatusCode.INVALID_ARGUMENT, str(error)
    except LimitExceeded as error:
        expected, message = grpc.StatusCode.RESOURCE_EXHAUSTED, str(error)
    if expected is None:
        tenants = {t for table in tables.values() for t in table["tenant_id"].to_pylist()}
        if tenants - {"t1", None}:
            expected = grpc.StatusCode.PERMISSION_DENIED
    try:
        response = scoped_upload(chunks)
    except grpc.RpcError as rpc_error:
        error = error_from_rpc(rpc_error)
        assert error.code is expected, error
        assert message in error.message
        return
    assert expected is None
    assert dict(response.row_counts) == {name: t.num_rows for name, t in tables.items()}


# ----- collection filters -------------------------------------------------------------------------

PEOPLE = pa.table({
    "dept": ["eng", None, "o'neil", ""],
    "age": pa.array([30, None, -5, 2**40], pa.int64()),
    "level": pa.array([1, 127, -128, None], pa.int8()),
    "score": [1.5, float("nan"), None, -0.0],
    "active": [True, False, None, True],
    "team": pa.array(["a", "b", None, "a"]).dictionary_encode(),
    "since": pa.array([dt.datetime(2024, 1, 1), None, None, None], pa.timestamp("us")),
})
COLUMNS = {f.name: f.type for f in PEOPLE.schema}

TOKENS = [
    *COLUMNS, "and", "or", "not", "in", "is", "null", "true", "false", "AND", "Not", "==", "!=",
    "<", "<=", ">", ">=", "=", "(", ")", ",", "'eng'", "''", "'o''neil'", "'", "'unterminated",
    "0", "-7", "2.5", "1e9", "9" * 40, "-0", "1.", ".5", "--", ";", "__import__", "é", "nope",
    "\x00", "\n", "\\", "${x}", "%s",
]


def compile_or_reject(text: str) -> filters.Filter | None:
    """Compile; ``FilterError`` (with a position inside the text) is the one allowed refusal.
    A compiled filter must evaluate to one boolean per row of PEOPLE."""
    try:
        compiled = filters.compile_filter(text, COLUMNS)
    except filters.FilterError as error:
        assert 0 <= error.position <= max(len(text), filters.MAX_LENGTH) and error.expected
        return None
    mask = filters.evaluate(compiled, PEOPLE)
    assert mask.dtype == bool and mask.shape == (PEOPLE.num_rows,)
    return compiled


@given(st.text(max_size=200))
def test_random_text_compiles_or_raises_filter_error(text: str):
    compile_or_reject(text)


@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([" ", "", "  \t"]))
def test_token_soups_compile_or_raise_filter_error(tokens: list[str], separator: str):
    compile_or_reject(separator.join(tokens))


@st.composite
def well_formed(draw, depth: int = 0) -> str:
    """Grammatical filters (SPEC 3.4) over PEOPLE's columns, with literals of any kind."""
    literal = st.one_of(st.integers(-(2**70), 2**70).map(str), st.sampled_from(["true", "false"]),
                        st.text(max_size=5).map(lambda s: "'" + s.replace("'", "''") + "'"),
                        st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str))
    column = st.sampled_from(sorted(COLUMNS))
    leaf = st.one_of(
        st.tuples(column, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), literal).map(" ".join),
        st.tuples(column, st.lists(literal, min_size=1, max_size=3)).map(
            lambda p: f"{p[0]} in ({', '.join(p[1])})"),
        st.tuples(column, st.sampled_from(["is null", "is not null"])).map(" ".join),
    )
    if depth >= 3:
        return draw(leaf)
    sub = well_formed(depth + 1)
    return draw(st.one_of(leaf, sub.map(lambda s: f"not {s}"), sub.map(lambda s: f"({s})"),
                          st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(" ".join)))


@given(well_formed())
def test_grammatical_filters_compile_or_raise_filter_error(text: str):
    compile_or_reject(text)


@given(st.integers(0, 200), st.sampled_from(["(", "not ", "not (", "( not "]))
def test_deep_nesting_is_refused_beyond_the_limit_without_recursion_error(depth: int, opener: str):
    text = opener * depth + "dept == 'eng'" + ")" * (depth * opener.count("("))
    levels = depth * (opener.count("(") + opener.count("not"))
    assert (compile_or_reject(text) is not None) == (levels <= filters.MAX_DEPTH)


def test_over_long_filters_are_refused_before_parsing():
    assert compile_or_reject("dept == '" + "x" * filters.MAX_LENGTH + "'") is None
