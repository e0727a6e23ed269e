"""Compact results: string columns of few distinct values travel dictionary-encoded.

A caller that sends the gRPC metadata ``HEADER`` lets the server send such a column (a consumption
row's tenant, license, consumer type and reason; an unlicensed row's tenant and application) as a
dictionary array: its possible values once, and one small integer per row. The field is tagged
(``TAG`` in its metadata) and ``expand`` turns it back into a column of the dictionary's value
type, so the caller's tables are exactly those of a plain response. At XL the consumption response
is about half the bytes. A caller that does not ask gets plain columns, as every client did before.

The server makes these arrays from its codes directly (``dictionary_of``), so the strings are
built once, by the receiver, and not also by the server.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

HEADER = ("licensecore-compact", "1")  # gRPC request metadata: compact results are welcome
TAG = b"licensecore.compact"  # field metadata key of a compacted column
MIN_ROWS_PER_VALUE = 8  # a column is compacted when it has this many rows per dictionary value


def dictionary_of(values: pa.Array, codes: np.ndarray) -> pa.DictionaryArray | None:
    """``values.take(codes)`` (-1: null) as a dictionary array with the narrowest index type; None
    when ``values`` are not strings or are not few next to the rows."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)) or (
            len(values) * MIN_ROWS_PER_VALUE > codes.size):
        return None
    index = next(t for t in (np.int8, np.int16, np.int32, np.int64) if len(values) <= np.iinfo(t).max)
    nulls = codes < 0
    indices = pa.array(codes.astype(index), mask=nulls if nulls.any() else None)
    return pa.DictionaryArray.from_arrays(indices, values)


def tagged(table: pa.Table, declared: dict[str, pa.DataType]) -> pa.Table:
    """``table`` with the ``TAG`` on each dictionary column whose ``declared`` type is not one (the
    columns ``dictionary_of`` compacted; an id column of dictionary type stays untagged)."""
    fields = [
        field.with_metadata({TAG: b"1"})
        if pa.types.is_dictionary(field.type) and not pa.types.is_dictionary(declared[field.name])
        else field
        for field in table.schema
    ]
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields, table.schema.metadata))


def expand(table: pa.Table) -> pa.Table:
    """``table`` with each tagged column as a column of its dictionary's value type (untagged);
    the columns side by side (the takes release the GIL)."""
    tagged_at = [i for i, field in enumerate(table.schema)
                 if field.metadata and TAG in field.metadata and pa.types.is_dictionary(field.type)]
    if not tagged_at:
        return table
    with ThreadPoolExecutor(max_workers=len(tagged_at)) as pool:
        columns = list(pool.map(lambda i: _expanded(table.column(i)), tagged_at))
    for i, column in zip(tagged_at, columns):
        table = table.set_column(i, pa.field(table.field(i).name, column.type), column)
    return table


def _expanded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    chunks = [take(chunk.dictionary, chunk.indices.fill_null(-1).to_numpy(), fixed_width(chunk.dictionary))
              for chunk in column.chunks]
    return pa.chunked_array(chunks, column.type.value_type)


def take(values: pa.Array, codes: np.ndarray, width: int) -> pa.Array:
    """``values.take(codes)`` (-1: null): ``take_fixed`` when every value has ``width`` bytes
    (``fixed_width``; 0: not so) and the result's offsets fit, else Arrow's take."""
    if width and codes.size * width < 2**31:
        return take_fixed(values, codes, width)
    return values.take(pa.array(codes, mask=codes < 0))


def string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's offsets (its slice) and data bytes, without copying."""
    _, offset_buf, data_buf = values.buffers()
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(offset_buf, width)[values.offset:values.offset + len(values) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    return offsets, data


def fixed_width(values: pa.Array) -> int:
    """The length in bytes of every value of a string array whose values all have one length (and
    none is null), as GUIDs do; else 0."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)) or (
            len(values) == 0 or values.null_count):
        return 0
    offsets, _ = string_buffers(values)
    width = int(offsets[1] - offsets[0])
    return width if width and np.all(np.diff(offsets) == width) else 0


def take_fixed(values: pa.Array, codes: np.ndarray, width: int) -> pa.Array:
    """``values.take(codes)`` (-1: null) for values of ``width`` bytes each: NumPy's take of
    ``width``-byte records, with no per-row offsets or lengths to read (a null's slot holds the
    last value's bytes, under the validity bitmap)."""
    offsets, data = string_buffers(values)
    records = data[offsets[0]:offsets[0] + len(values) * width].view(f"V{width}")
    out = np.take(records, codes)
    out_offsets = np.arange(0, codes.size * width + 1, width, dtype=offsets.dtype)
    valid = codes >= 0
    validity = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(values.type, codes.size,
                                 [validity, pa.py_buffer(out_offsets), pa.py_buffer(out)])
