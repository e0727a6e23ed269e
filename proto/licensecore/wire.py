"""Arrow tables <-> ``TableChunk`` messages, shared by the server and the clients.

Each table travels as one Arrow IPC stream sliced into chunks of at most ``CHUNK_BYTES``; the
receiver puts a table's chunks together and decodes them with ``pyarrow.ipc`` (no per-row Python).

The bulk paths bypass protobuf's copies of the chunk bytes (a gigabyte was copied ~3 times on the
way out and ~4 times on the way in through protobuf messages): ``table_messages`` writes each
message's wire bytes in one copy from the table's own buffers, and ``parse_chunk`` /
``request_parser`` read received wire bytes into ``Chunk``s whose data views those bytes. The
first chunk announces the stream's size (``stream_bytes``), so the receiver copies each chunk into
one buffer as it arrives (while the next ones are on the way) and frees the message at once.
All of this is the ``licensecore.v1`` wire format exactly: other clients and servers interoperate.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError, Message

from licensecore.server.errors import InputError
from licensecore.server.limits import LimitExceeded
from licensecore.v1 import licensecore_pb2 as pb

M = TypeVar("M")

# 4 MiB (gRPC's default message limit) less room for the message envelope: at XL, 1 MiB chunks
# cost ~3 s more per gigabyte streamed, in per-message overhead (of protobuf messages then).
CHUNK_BYTES = (4 << 20) - (64 << 10)
_VARINT, _FIXED64, _LEN, _GROUP_START, _GROUP_END, _FIXED32 = range(6)  # protobuf wire types
_TABLE, _DATA, _LAST, _ROW_COUNT, _STREAM_BYTES = (
    pb.TableChunk.DESCRIPTOR.fields_by_name[name].number
    for name in ("table", "data", "last", "row_count", "stream_bytes"))


class ChunkLike(Protocol):
    """What decoding reads of a chunk: a ``pb.TableChunk`` or a ``Chunk``."""

    table: str
    data: bytes | memoryview
    last: bool
    row_count: int
    stream_bytes: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """A received ``TableChunk`` whose ``data`` views the received message (no copy); ``nbytes``
    is the serialized size of the whole request message that carried it."""

    table: str = ""
    data: bytes | memoryview = b""
    last: bool = False
    row_count: int = 0
    stream_bytes: int = 0
    nbytes: int = 0


# --- encoding -------------------------------------------------------------------------------------


class _Pieces:
    """A write-only file (for ``pa.PythonFile``) that keeps what it is given as views: the IPC
    writer hands it the column buffers themselves, so nothing is copied."""

    def __init__(self) -> None:
        self.views: list[memoryview] = []
        self.closed = False

    def write(self, data: bytes | pa.Buffer) -> int:
        view = memoryview(data).cast("B")
        self.views.append(view)
        return view.nbytes

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _chunks(name: str, table: pa.Table) -> Iterator[tuple[pb.TableChunk, list[memoryview]]]:
    """Each chunk of the Arrow IPC stream of ``table``: its fields but ``data`` (``stream_bytes`` on
    the first, ``last`` and ``row_count`` on the last), and the views of the table's buffers (and of
    the IPC metadata) that make its data."""
    pieces = _Pieces()
    with pa.ipc.new_stream(pa.PythonFile(pieces, mode="w"), table.schema) as writer:
        writer.write_table(table)
    stream_bytes = sum(view.nbytes for view in pieces.views)
    for n, (views, last) in enumerate(_cut(pieces.views)):
        yield pb.TableChunk(table=name, last=last, row_count=table.num_rows if last else 0,
                            stream_bytes=0 if n else stream_bytes), views


def _cut(views: list[memoryview]) -> Iterator[tuple[list[memoryview], bool]]:
    """``views`` regrouped into chunks of at most ``CHUNK_BYTES``, each with whether it is the last
    (a stream holds at least its schema, so there is always one)."""
    chunk: list[memoryview] = []
    room = CHUNK_BYTES
    for view in views:
        while view.nbytes > room:
            chunk.append(view[:room])
            yield chunk, False
            chunk, view, room = [], view[room:], CHUNK_BYTES
        chunk.append(view)
        room -= view.nbytes
    yield chunk, True


def table_chunks(name: str, table: pa.Table) -> Iterator[pb.TableChunk]:
    """The chunks of one table as protobuf messages: its Arrow IPC stream in slices of at most
    ``CHUNK_BYTES``."""
    for chunk, views in _chunks(name, table):
        chunk.data = b"".join(views)
        yield chunk


def encode_tables(tables: Mapping[str, pa.Table]) -> Iterator[pb.TableChunk]:
    """The chunks of every table, one table after the other."""
    for name, table in tables.items():
        yield from table_chunks(name, table)


def table_messages(name: str, table: pa.Table, within: type[Message] | None = None) -> Iterator[bytes]:
    """The serialized messages of ``table_chunks`` — ``TableChunk``s, or with ``within`` (e.g.
    ``pb.UploadRequest``) messages of that type holding the chunk in their ``chunk`` field — each
    built in one copy from the table's buffers. The ``data`` field is written last (protobuf
    accepts fields in any order)."""
    outer = within.DESCRIPTOR.fields_by_name["chunk"].number if within is not None else None
    for chunk, views in _chunks(name, table):
        size = sum(view.nbytes for view in views)
        head = chunk.SerializeToString() + _key(_DATA, _LEN) + _varint(size)
        envelope = b"" if outer is None else _key(outer, _LEN) + _varint(len(head) + size)
        yield b"".join((envelope, head, *views))


def encode_messages(tables: Mapping[str, pa.Table], within: type[Message] | None = None) -> Iterator[bytes]:
    """``table_messages`` of every table, one table after the other."""
    for name, table in tables.items():
        yield from table_messages(name, table, within)


def serialize(message: bytes | Message) -> bytes:
    """A gRPC serializer that passes messages already serialized (``table_messages``) through."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# --- decoding -------------------------------------------------------------------------------------


def parse_chunk(message: bytes) -> Chunk:
    """A serialized ``TableChunk`` as a ``Chunk`` viewing ``message`` (a gRPC deserializer)."""
    return _chunk([memoryview(message)], len(message))


def request_parser(message_class: type[Message]) -> Callable[[bytes], Chunk | Message]:
    """A gRPC deserializer of ``message_class`` requests, which hold a ``TableChunk`` in ``chunk``:
    the chunk as a ``Chunk`` viewing the request bytes. When another member of ``chunk``'s oneof
    is set (options, a scenario: small), the request parsed by protobuf; when none is, an empty
    ``Chunk`` (what ``request.chunk`` reads then)."""
    field = message_class.DESCRIPTOR.fields_by_name["chunk"]
    oneof = field.containing_oneof
    others = frozenset(f.number for f in oneof.fields) - {field.number} if oneof else frozenset()

    def parse(message: bytes) -> Chunk | Message:
        parts: list[memoryview] = []  # the chunk's occurrences, merged as protobuf merges them
        other = False
        for number, wire_type, value in _fields(memoryview(message)):
            if number == field.number and wire_type == _LEN:
                parts = parts if not other else []
                parts.append(value)
                other = False
            elif number in others and wire_type == _LEN:
                other = True
        if other:
            return message_class.FromString(message)
        return _chunk(parts, len(message))

    return parse


def _chunk(parts: list[memoryview], nbytes: int) -> Chunk:
    """The ``TableChunk`` made of ``parts`` (serialized occurrences, merged in order)."""
    table, data, last, row_count, stream_bytes = "", b"", False, 0, 0
    for part in parts:
        for number, wire_type, value in _fields(part):
            if number == _TABLE and wire_type == _LEN:
                try:
                    table = str(value, "utf-8")
                except UnicodeDecodeError:
                    raise DecodeError("TableChunk.table is not valid UTF-8") from None
            elif number == _DATA and wire_type == _LEN:
                data = value
            elif number == _LAST and wire_type == _VARINT:
                last = value != 0
            elif number == _ROW_COUNT and wire_type == _VARINT:
                row_count = _int64(value)
            elif number == _STREAM_BYTES and wire_type == _VARINT:
                stream_bytes = _int64(value)
    return Chunk(table, data, last, row_count, stream_bytes, nbytes)


def _int64(value: int) -> int:
    """A 64-bit varint read as int64 (two's complement)."""
    return value - (1 << 64) if value >> 63 else value


def _fields(view: memoryview) -> Iterator[tuple[int, int, int | memoryview | None]]:
    """(number, wire type, value) of each field of a serialized message (see ``_field``)."""
    at = 0
    while at < len(view):
        number, wire_type, value, at = _field(view, at)
        if wire_type == _GROUP_END:
            raise DecodeError("end of a group that never started")
        yield number, wire_type, value


def _field(view: memoryview, at: int) -> tuple[int, int, int | memoryview | None, int]:
    """The field at ``at`` and the offset after it: varints as int (64 bits), length-delimited
    values as views, None for the other wire types (skipped). Raises ``DecodeError`` for malformed
    bytes, as protobuf does."""
    key, at = _read_varint(view, at)
    number, wire_type = key >> 3, key & 7
    value: int | memoryview | None = None
    if number == 0:
        raise DecodeError("field number 0")
    if wire_type == _VARINT:
        value, at = _read_varint(view, at)
    elif wire_type == _LEN:
        size, at = _read_varint(view, at)
        value, at = view[at:at + size], at + size
    elif wire_type in (_FIXED64, _FIXED32):
        at += 8 if wire_type == _FIXED64 else 4
    elif wire_type == _GROUP_START:  # a deprecated group: skip its fields up to its end
        inner, inner_type = 0, _VARINT
        while inner_type != _GROUP_END:
            if at >= len(view):
                raise DecodeError("unterminated group")
            inner, inner_type, _, at = _field(view, at)
        if inner != number:
            raise DecodeError("group ends with another field number")
    elif wire_type != _GROUP_END:
        raise DecodeError(f"unexpected wire type {wire_type}")
    if at > len(view):
        raise DecodeError("truncated message")
    return number, wire_type, value, at


def _read_varint(view: memoryview, at: int) -> tuple[int, int]:
    """The varint at ``at`` (kept to 64 bits, as protobuf does) and the offset after it."""
    value = shift = 0
    for offset in range(at, min(at + 10, len(view))):
        byte = view[offset]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFF_FFFF_FFFF_FFFF, offset + 1
        shift += 7
    raise DecodeError("truncated or overlong varint")


# --- limits and reassembly ------------------------------------------------------------------------


def serialized_size(message: Chunk | Message) -> int:
    """The serialized size of a request message (known without serializing for a ``Chunk``)."""
    return message.nbytes if isinstance(message, Chunk) else message.ByteSize()


def capped(messages: Iterable[M], max_bytes: int) -> Iterator[M]:
    """``messages`` as they arrive, until their serialized sizes add up to more than ``max_bytes``:
    then ``LimitExceeded("max_request_bytes")`` and nothing more is read (an endless stream ends)."""
    total = 0
    for message in messages:
        total += serialized_size(message)
        if total > max_bytes:
            raise LimitExceeded("max_request_bytes", max_bytes, total)
        yield message


def decode_tables(
    chunks: Iterable[ChunkLike],
    known: Collection[str] | None = None,
    *,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    allocate: Callable[[int], pa.Buffer] = pa.allocate_buffer,
) -> dict[str, pa.Table]:
    """Reassemble and decode the tables of a chunk stream (``pb.TableChunk``s or ``Chunk``s).

    ``known`` limits the accepted table names (None accepts any). Raises ``InputError`` naming the
    table for an unknown or repeated table, a table without its last chunk, IPC bytes that are
    corrupt, truncated or followed by garbage, and a size other than the one announced;
    ``LimitExceeded("max_rows")`` when a table announces more than ``max_rows`` rows (checked before
    decoding; the decoded count must match). A ``stream_bytes`` above ``max_bytes`` is not trusted
    for a buffer (the chunks are joined at the end, as when no size is announced); ``allocate``
    makes the buffer of an announced size (Arrow's pool by default; see ``heap_buffer``).
    """
    streams: dict[str, _Stream] = {}
    decoded: dict[str, Callable[[], pa.Table]] = {}  # the complete tables, in the order they completed
    for chunk in chunks:
        name = chunk.table
        if not name:
            raise _stream_error(name, "chunk without a table name")
        if known is not None and name not in known:
            raise _stream_error(name, f"unknown table; expected one of {', '.join(sorted(known))}")
        if name in decoded:
            raise _stream_error(name, "table sent twice (a chunk follows its last chunk)")
        if name not in streams:
            streams[name] = _Stream(chunk.stream_bytes, max_bytes, allocate)
        streams[name].add(chunk.data)
        if chunk.last:
            if max_rows is not None and chunk.row_count > max_rows:
                raise LimitExceeded("max_rows", max_rows, chunk.row_count, subject=name)
            decoded[name] = _decode_soon(name, streams[name], chunk.row_count)
    unfinished = sorted(streams.keys() - decoded.keys())
    if unfinished:
        raise _stream_error(unfinished[0], "truncated: the stream ended before the last chunk")
    return {name: table() for name, table in decoded.items()}


class _Stream:
    """One table's IPC stream, gathered as its chunks arrive. When its first chunk announces the
    size (within ``max_bytes``), each chunk is copied at once into one buffer of that size, so the
    copy overlaps the transfer of the next chunks and the received message is freed; otherwise the
    chunks are kept and joined at the end."""

    def __init__(self, announced: int, max_bytes: int | None,
                 allocate: Callable[[int], pa.Buffer]) -> None:
        self._parts: list[bytes | memoryview] = []
        self._received = 0
        self._buffer: pa.Buffer | None = None
        if 0 < announced and (max_bytes is None or announced <= max_bytes):
            try:
                self._buffer = allocate(announced)
            except MemoryError:  # an announcement this process cannot hold: trust the chunks only
                return
            self._sink = pa.FixedSizeBufferWriter(self._buffer)

    def add(self, data: bytes | memoryview) -> None:
        if self._buffer is None:
            self._parts.append(data)
        elif self._received + len(data) <= self._buffer.size:
            self._sink.write(data)  # releases the GIL
        self._received += len(data)

    def data(self, name: str) -> bytes | pa.Buffer:
        """The whole stream; ``InputError`` when more or fewer bytes came than were announced."""
        if self._buffer is None:
            return b"".join(self._parts)
        if self._received != self._buffer.size:
            raise _stream_error(name, f"{self._received} byte(s) sent, {self._buffer.size} announced")
        return self._buffer


def heap_buffer(size: int) -> pa.Buffer:
    """A buffer of ``size`` bytes from the process heap (NumPy, glibc), for tables a caller frees
    and receives again: with ``server.memory.keep_freed_memory`` the next call reuses the pages
    (downloads at L took a third of the time they took in Arrow's pool, whose freed gigabytes go
    back to the system)."""
    return pa.py_buffer(np.empty(size, np.uint8))


def _decode_soon(name: str, stream: _Stream, row_count: int) -> Callable[[], pa.Table]:
    """Start decoding a complete table: its IPC stream read now (no copy), Arrow's full validation
    of its arrays on the validation pool, so that it overlaps the transfer of the tables after it
    (and the arrays are checked side by side). The returned function gives the table, or raises the
    ``InputError`` of a corrupt or truncated stream, once every table has arrived."""
    try:
        data = stream.data(name)
        source = pa.BufferReader(data)
        table = pa.ipc.open_stream(source).read_all()
        table.validate()
        arrays = [array for column in table.columns for array in column.chunks]  # names decoded
    except InputError as error:
        return functools.partial(_raise, error)
    except (pa.ArrowException, OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        return functools.partial(_raise, _corrupt(name, exc))
    checks = [_validation_pool().submit(array.validate, full=True) for array in arrays]

    def result() -> pa.Table:
        for check in checks:
            try:
                check.result()
            except (pa.ArrowException, ValueError) as exc:
                raise _corrupt(name, exc) from None
        if source.tell() != len(data):
            raise _stream_error(name, f"{len(data) - source.tell()} stray byte(s) after the IPC stream")
        if table.num_rows != row_count:
            raise _stream_error(
                name, f"truncated Arrow IPC stream: {table.num_rows} row(s) decoded, {row_count} sent"
            )
        return table

    return result


@functools.cache
def _validation_pool() -> ThreadPoolExecutor:
    """Threads for Arrow's full validation (it releases the GIL); its tasks wait on nothing."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="licensecore-validate")


def _raise(error: Exception) -> pa.Table:
    raise error


def _corrupt(table: str, exc: Exception) -> InputError:
    return _stream_error(table, f"corrupt or truncated Arrow IPC stream ({exc})")


def _stream_error(table: str, problem: str) -> InputError:
    return InputError(table=table, column="", row=-1, value=None, count=0, problem=problem)
