"""Arrow tables <-> ``TableChunk`` messages, shared by the server and the clients.

Each table travels as one Arrow IPC stream sliced into chunks of at most ``CHUNK_BYTES``; the
receiver joins a table's chunks and decodes them with ``pyarrow.ipc`` (no per-row Python).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TypeVar

import pyarrow as pa
from google.protobuf.message import Message

from licensecore.server.errors import InputError
from licensecore.server.limits import LimitExceeded
from licensecore.v1 import licensecore_pb2 as pb

M = TypeVar("M", bound=Message)

# 4 MiB (gRPC's default message limit) less room for the message envelope: at XL, 1 MiB chunks
# cost ~3 s more per gigabyte streamed, in per-message overhead.
CHUNK_BYTES = (4 << 20) - (64 << 10)


def table_chunks(name: str, table: pa.Table) -> Iterator[pb.TableChunk]:
    """The chunks of one table: its Arrow IPC stream in slices of at most ``CHUNK_BYTES``."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data = sink.getvalue()
    starts = range(0, data.size, CHUNK_BYTES)  # never empty: a stream holds at least its schema
    for start in starts:
        last = start == starts[-1]
        yield pb.TableChunk(
            table=name,
            data=data.slice(start, min(CHUNK_BYTES, data.size - start)).to_pybytes(),
            last=last,
            row_count=table.num_rows if last else 0,
        )


def encode_tables(tables: Mapping[str, pa.Table]) -> Iterator[pb.TableChunk]:
    """The chunks of every table, one table after the other."""
    for name, table in tables.items():
        yield from table_chunks(name, table)


def capped(messages: Iterable[M], max_bytes: int) -> Iterator[M]:
    """``messages`` as they arrive, until their serialized sizes add up to more than ``max_bytes``:
    then ``LimitExceeded("max_request_bytes")`` and nothing more is read (an endless stream ends)."""
    total = 0
    for message in messages:
        total += message.ByteSize()
        if total > max_bytes:
            raise LimitExceeded("max_request_bytes", max_bytes, total)
        yield message


def decode_tables(
    chunks: Iterable[pb.TableChunk],
    known: Collection[str] | None = None,
    *,
    max_rows: int | None = None,
) -> dict[str, pa.Table]:
    """Reassemble and decode the tables of a chunk stream.

    ``known`` limits the accepted table names (None accepts any). Raises ``InputError`` naming the
    table for an unknown or repeated table, a table without its last chunk, and IPC bytes that are
    corrupt, truncated or followed by garbage; ``LimitExceeded("max_rows")`` when a table announces
    more than ``max_rows`` rows (checked before decoding; the decoded count must match).
    """
    parts: dict[str, list[bytes]] = {}
    row_counts: dict[str, int] = {}
    for chunk in chunks:
        name = chunk.table
        if not name:
            raise _stream_error(name, "chunk without a table name")
        if known is not None and name not in known:
            raise _stream_error(name, f"unknown table; expected one of {', '.join(sorted(known))}")
        if name in row_counts:
            raise _stream_error(name, "table sent twice (a chunk follows its last chunk)")
        parts.setdefault(name, []).append(chunk.data)
        if chunk.last:
            if max_rows is not None and chunk.row_count > max_rows:
                raise LimitExceeded("max_rows", max_rows, chunk.row_count, subject=name)
            row_counts[name] = chunk.row_count
    unfinished = sorted(parts.keys() - row_counts.keys())
    if unfinished:
        raise _stream_error(unfinished[0], "truncated: the stream ended before the last chunk")
    return {name: _decode(name, b"".join(parts[name]), rows) for name, rows in row_counts.items()}


def _decode(name: str, data: bytes, row_count: int) -> pa.Table:
    source = pa.BufferReader(data)
    try:
        table = pa.ipc.open_stream(source).read_all()
        table.validate(full=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _stream_error(name, f"corrupt or truncated Arrow IPC stream ({exc})") from None
    if source.tell() != len(data):
        raise _stream_error(name, f"{len(data) - source.tell()} stray byte(s) after the IPC stream")
    if table.num_rows != row_count:
        raise _stream_error(
            name, f"truncated Arrow IPC stream: {table.num_rows} row(s) decoded, {row_count} sent"
        )
    return table


def _stream_error(table: str, problem: str) -> InputError:
    return InputError(table=table, column="", row=-1, value=None, count=0, problem=problem)
