"""Compact tables: string columns of few distinct values travel dictionary-encoded.

Such a column (a tenant id, an application id, a consumption row's license and reason) travels as
a dictionary array: its possible values once, and one small integer per row. The field is tagged
(``TAG`` in its metadata): the column stands for a column of the dictionary's value type
(``declared_type``), and ``expand`` turns it back into one.

- Results: a caller that sends the gRPC metadata ``HEADER`` lets the server send compact columns.
  The server makes them from its codes directly (``dictionary_of``), so the strings are built
  once, by the receiver. At XL the consumption response is about half the bytes. A caller that
  does not ask gets plain columns, as every client did before.
- Inputs: a client may send compact columns (``compacted``); the server reads each as the plain
  column it stands for, and its consumption encoder codes the few values once instead of every
  row. At XL the inline consumption request is about 40% smaller.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = ("licensecore-compact", "1")  # gRPC request metadata: compact results are welcome
TAG = b"licensecore.compact"  # field metadata key of a compacted column
MIN_ROWS_PER_VALUE = 8  # a column is compacted when it has this many rows per dictionary value
SAMPLE_ROWS = 1 << 16  # a client compacts a column when a sample of this many rows shows it worth it
MIN_RUN_LENGTH = 64  # values in runs this long on average are coded by run (``runs``)
RUN_SAMPLES, RUN_SAMPLE_ROWS = 16, 4096  # ``runs`` looks at this many slices of this many rows first


def dictionary_of(values: pa.Array, codes: np.ndarray) -> pa.DictionaryArray | None:
    """``values.take(codes)`` (-1: null) as a dictionary array with the narrowest index type; None
    when ``values`` are not strings or are not few next to the rows."""
    if not is_string(values.type) or (
            len(values) * MIN_ROWS_PER_VALUE > codes.size):
        return None
    return _dictionary_array(values, codes)


def is_string(t: pa.DataType) -> bool:
    """Whether ``t`` is ``string`` or ``large_string`` (the types of offsets and bytes)."""
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _dictionary_array(values: pa.Array, codes: np.ndarray) -> pa.DictionaryArray:
    """``values.take(codes)`` (-1: null) as a dictionary array with the narrowest index type."""
    nulls = codes < 0
    indices = pa.array(codes.astype(_index_type(len(values))), mask=nulls if nulls.any() else None)
    return pa.DictionaryArray.from_arrays(indices, values)


def runs(values: pa.Array) -> tuple[pa.Array, np.ndarray] | None:
    """The values of ``values``' runs of equal values and the runs' lengths, when its runs are
    long (``MIN_RUN_LENGTH`` rows on average; a table sorted by tenant has a few tenant runs);
    else None. Arrow's run-end encoding is one pass, but a costly one over values that do not
    repeat, so it runs on the whole array only when ``RUN_SAMPLES`` evenly spaced slices show
    long runs."""
    n = len(values)
    if n < RUN_SAMPLES * RUN_SAMPLE_ROWS:
        return None
    starts = np.linspace(0, n - RUN_SAMPLE_ROWS, RUN_SAMPLES).astype(np.int64)
    sampled = sum(len(pc.run_end_encode(values.slice(s, RUN_SAMPLE_ROWS)).values) for s in starts)
    if sampled * MIN_RUN_LENGTH > RUN_SAMPLES * RUN_SAMPLE_ROWS:
        return None
    encoded = pc.run_end_encode(values)
    if len(encoded.values) * MIN_RUN_LENGTH > n:
        return None
    return encoded.values, np.diff(encoded.run_ends.to_numpy(), prepend=0)


def _index_type(n_values: int) -> type[np.signedinteger]:
    """The narrowest signed integer type that indexes ``n_values`` values."""
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if n_values <= np.iinfo(t).max)


def declared_type(field: pa.Field) -> pa.DataType:
    """The type a column stands for: its dictionary's value type when tagged, else its own."""
    return field.type.value_type if _is_tagged(field) else field.type


def _is_tagged(field: pa.Field) -> bool:
    return bool(field.metadata) and TAG in field.metadata and pa.types.is_dictionary(field.type)


def compacted(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """``tables`` with each string column of few distinct values as a tagged dictionary column
    (the columns side by side: Arrow's hashing releases the GIL).

    A column of at least ``SAMPLE_ROWS`` rows is hashed whole only when an evenly spaced sample
    of that many rows has at most one distinct value per ``MIN_ROWS_PER_VALUE`` rows, and sent
    compact only when the whole column has too; so a column of GUIDs that do not repeat costs a
    sample, not a hash.
    """
    candidates = [(name, i) for name, table in tables.items() for i, field in enumerate(table.schema)
                  if is_string(field.type) and table.num_rows >= SAMPLE_ROWS]
    if not candidates:
        return dict(tables)
    with ThreadPoolExecutor(max_workers=min(len(candidates), os.cpu_count() or 1)) as pool:
        columns = list(pool.map(lambda c: _compact_column(tables[c[0]].column(c[1])), candidates))
    out = dict(tables)
    for (name, i), column in zip(candidates, columns):
        if column is not None:
            field = out[name].field(i)
            out[name] = out[name].set_column(
                i, pa.field(field.name, column.type, field.nullable, {**(field.metadata or {}), TAG: b"1"}),
                column)
    return out


def _compact_column(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """``column`` dictionary-encoded with the narrowest index type, when it has few distinct values
    (see ``compacted``); else None."""
    coded = _run_codes(column) or _hash_codes(column)
    if coded is None or len(coded[0]) * MIN_ROWS_PER_VALUE > len(column):
        return None
    values, codes = coded
    index = pa.from_numpy_dtype(_index_type(len(values)))
    return pa.chunked_array([_dictionary_array(values, c) for c in codes], pa.dictionary(index, column.type))


def _run_codes(column: pa.ChunkedArray) -> tuple[pa.Array, list[np.ndarray]] | None:
    """The distinct values of a column in long runs (tenant ids, as tables usually come) and each
    chunk's codes into them (-1: null), from its runs' values; None unless every chunk is in
    long runs (``runs``)."""
    ran = [runs(chunk) for chunk in column.chunks]
    if not ran or any(r is None for r in ran):
        return None
    encoded = pa.chunked_array([values for values, _ in ran], column.type).dictionary_encode()
    codes = [np.repeat(chunk.indices.fill_null(-1).to_numpy(), lengths)
             for chunk, (_, lengths) in zip(encoded.chunks, ran)]
    return encoded.chunk(0).dictionary, codes


def _hash_codes(column: pa.ChunkedArray) -> tuple[pa.Array, list[np.ndarray]] | None:
    """The distinct values of a column and each chunk's codes into them (-1: null), by Arrow's
    hash; None when a sample of ``SAMPLE_ROWS`` rows shows more than one value per
    ``MIN_ROWS_PER_VALUE`` rows."""
    sample = column.take(np.linspace(0, len(column) - 1, SAMPLE_ROWS).astype(np.int64))
    if len(pc.unique(sample)) * MIN_ROWS_PER_VALUE > SAMPLE_ROWS:
        return None
    encoded = column.dictionary_encode()
    return encoded.chunk(0).dictionary, [chunk.indices.fill_null(-1).to_numpy() for chunk in encoded.chunks]


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
    tagged_at = [i for i, field in enumerate(table.schema) if _is_tagged(field)]
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
    if not is_string(values.type) or (
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
