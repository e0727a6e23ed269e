"""Compact tables: string columns of few distinct values travel dictionary-encoded, GUIDs as 16 bytes.

A column of few values (a tenant id, an application id, a consumption row's license and reason)
travels as a dictionary array: its possible values once, and one small integer per row. The field
is tagged (``TAG`` in its metadata): the column stands for a column of the dictionary's value type
(``declared_type``), and ``expand`` turns it back into one.

A column of many values that are all canonical lowercase GUIDs (a user, device or consumer id)
travels as ``fixed_size_binary(16)``: each GUID's 16 bytes in the order of its hex digits (as
RFC 9562 writes a UUID), 16 bytes a row instead of 40. Its field is tagged ``GUID_TAG``, whose
value names the string type the column stands for; ``expand`` prints the text back.

- Results: a caller that sends the gRPC metadata ``HEADER`` lets the server send compact columns.
  The server makes them from its codes directly (``dictionary_of``), so the strings are built
  once, by the receiver. At XL the consumption response is about a quarter of the bytes. A caller that
  does not ask gets plain columns, as every client did before.
- Inputs: a client may send compact columns (``compacted``); the server reads each as the plain
  column it stands for, and its consumption encoder codes the few values once instead of every
  row, and reads GUIDs without parsing text. At XL the inline consumption request is about a
  quarter of the bytes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from licensecore.kernels import guids

HEADER = ("licensecore-compact", "1")  # gRPC request metadata: compact results are welcome
TAG = b"licensecore.compact"  # field metadata key of a compacted column
GUID_TAG = b"licensecore.guid"  # field metadata key of a GUID column as bytes; value: its string type
GUID_TYPE = pa.binary(16)
MIN_ROWS_PER_VALUE = 8  # a column is compacted when it has this many rows per dictionary value
SAMPLE_ROWS = 1 << 16  # a client compacts a column when a sample of this many rows shows it worth it
MIN_RUN_LENGTH = 64  # values in runs this long on average are coded by run (``runs``)
RUN_SAMPLES, RUN_SAMPLE_ROWS = 16, 4096  # ``runs`` looks at this many slices of this many rows first
FEW_GUIDS = 1 << 16  # GUID columns of at most this many distinct values are numbered in one pass


def dictionary_of(values: pa.Array, codes: np.ndarray) -> pa.DictionaryArray | None:
    """``values.take(codes)`` (-1: null) as a dictionary array with the narrowest index type; None
    when ``values`` are not strings or are not few next to the rows."""
    if not is_string(values.type) or not is_few(len(values), codes.size):
        return None
    return _dictionary_array(values, codes)


def is_few(n_values: int, n_rows: int) -> bool:
    """Whether ``n_values`` distinct values over ``n_rows`` rows are few enough to send as a
    dictionary: at most one per ``MIN_ROWS_PER_VALUE`` rows."""
    return n_values * MIN_ROWS_PER_VALUE <= n_rows


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
    """The type a column stands for: its dictionary's value type when tagged, the string type
    its tag names when a GUID column, else its own."""
    if is_guid_column(field):
        return pa.type_for_alias(field.metadata[GUID_TAG].decode())
    return field.type.value_type if _is_tagged(field) else field.type


def _is_tagged(field: pa.Field) -> bool:
    return bool(field.metadata) and TAG in field.metadata and pa.types.is_dictionary(field.type)


def is_guid_column(field: pa.Field) -> bool:
    """Whether ``field`` is a GUID column travelling as 16 bytes a row (``GUID_TAG`` naming a string
    type; any other tag value leaves the column a plain binary one, which no id accepts)."""
    return (bool(field.metadata) and field.metadata.get(GUID_TAG) in (b"string", b"large_string")
            and field.type == GUID_TYPE)


def compacted(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """``tables`` with each string column of few distinct values as a tagged dictionary column and
    each other one whose values are all canonical GUIDs as a GUID column (the columns side by
    side: Arrow's hashing and the GUID parser release the GIL).

    Only columns of at least ``SAMPLE_ROWS`` rows are looked at. A column is sent as a dictionary
    when it has at most one distinct value per ``MIN_ROWS_PER_VALUE`` rows. A column of GUIDs is
    parsed once and its values numbered in one pass that stops past ``FEW_GUIDS`` of them
    (``few_guids``); any other column is hashed whole only when an evenly spaced sample of
    ``SAMPLE_ROWS`` rows has few enough values, so a column of values that do not repeat costs a
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
            tag = {GUID_TAG: str(field.type).encode()} if column.type == GUID_TYPE else {TAG: b"1"}
            out[name] = out[name].set_column(
                i, pa.field(field.name, column.type, field.nullable, {**(field.metadata or {}), **tag}), column)
    return out


def _compact_column(column: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """``column`` dictionary-encoded with the narrowest index type, when it has few distinct values
    (see ``compacted``); else as GUID bytes when every value is a canonical GUID; else None."""
    coded = _run_codes(column)
    if coded is not None and is_few(len(coded[0]), len(column)):
        return _dictionary_column(column.type, *coded)
    parsed = guid_pairs(column)
    if parsed is None:
        coded = _hash_codes(column)
        few = coded is not None and is_few(len(coded[0]), len(column))
        return _dictionary_column(column.type, *coded) if few else None
    pairs, valid = parsed
    bounds = np.cumsum([len(chunk) for chunk in column.chunks])[:-1]
    numbered = few_guids(pairs[:, 0], pairs[:, 1], valid)
    if numbered is not None and is_few(numbered[1].shape[0], len(column)):
        codes, distinct = numbered
        values = strings_of(distinct[:, 0], distinct[:, 1], column.type)
        return _dictionary_column(column.type, values, np.split(codes, bounds))
    return pa.chunked_array([guid_array(p, v) for p, v in zip(np.split(pairs, bounds), np.split(valid, bounds))],
                            GUID_TYPE)


def _dictionary_column(typ: pa.DataType, values: pa.Array, codes: list[np.ndarray]) -> pa.ChunkedArray:
    """Chunks of codes (-1: null) into ``values`` as a dictionary column of value type ``typ``."""
    index = pa.from_numpy_dtype(_index_type(len(values)))
    return pa.chunked_array([_dictionary_array(values, c) for c in codes], pa.dictionary(index, typ))


def guid_pairs(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Each row's GUID as a (hi, lo) row of uint64 (zeros for a null) and whether it is not null;
    None when a value is not a canonical lowercase GUID (or the column has no rows)."""
    pairs = np.empty((len(column), 2), np.uint64)
    valid = np.ones(len(column), np.bool_)
    start = 0
    for chunk in column.chunks:
        end = start + len(chunk)
        mask = np.asarray(chunk.is_valid()) if chunk.null_count else np.empty(0, np.bool_)
        if mask.size:
            valid[start:end] = mask
        if not guids.parse(*string_buffers(chunk), mask, pairs[start:end, 0], pairs[start:end, 1]):
            return None
        start = end
    return (pairs, valid) if len(column) else None


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
    if not is_few(len(pc.unique(sample)), SAMPLE_ROWS):
        return None
    encoded = column.dictionary_encode()
    return encoded.chunk(0).dictionary, [chunk.indices.fill_null(-1).to_numpy() for chunk in encoded.chunks]


def tagged(table: pa.Table, declared: dict[str, pa.DataType]) -> pa.Table:
    """``table`` with the ``TAG`` on each dictionary column and the ``GUID_TAG`` on each GUID column
    whose ``declared`` type is neither (the columns ``dictionary_of`` and ``guid_array`` made; an
    id column of dictionary type stays untagged)."""
    def field_of(field: pa.Field) -> pa.Field:
        want = declared[field.name]
        if pa.types.is_dictionary(field.type) and not pa.types.is_dictionary(want):
            return field.with_metadata({TAG: b"1"})
        if field.type == GUID_TYPE and is_string(want):
            return field.with_metadata({GUID_TAG: str(want).encode()})
        return field

    schema = pa.schema([field_of(field) for field in table.schema], table.schema.metadata)
    return pa.Table.from_arrays(table.columns, schema=schema)


def expand(table: pa.Table) -> pa.Table:
    """``table`` with each tagged column as a column of the type it stands for (untagged); the
    columns side by side (the takes and the GUID printer release the GIL)."""
    tagged_at = [i for i, field in enumerate(table.schema) if _is_tagged(field) or is_guid_column(field)]
    if not tagged_at:
        return table
    with ThreadPoolExecutor(max_workers=len(tagged_at)) as pool:
        columns = list(pool.map(lambda i: expanded(table.column(i), table.field(i)), tagged_at))
    for i, column in zip(tagged_at, columns):
        table = table.set_column(i, pa.field(table.field(i).name, column.type), column)
    return table


def expanded(column: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
    """A tagged column (``field``) as a column of the type it stands for."""
    typ = declared_type(field)
    if is_guid_column(field):
        return pa.chunked_array([guid_text(chunk, typ) for chunk in column.chunks], typ)
    chunks = [take(chunk.dictionary, chunk.indices.fill_null(-1).to_numpy(), fixed_width(chunk.dictionary))
              for chunk in column.chunks]
    return pa.chunked_array(chunks, typ)


def few_guids(hi: np.ndarray, lo: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Each row's code (-1: not valid; ``valid`` empty: all are) into the sorted distinct (hi, lo)
    pairs, and those as rows, in one hash pass (``kernels.guids.first_seen``); None when there are
    more than ``FEW_GUIDS``."""
    codes = np.empty(hi.size, np.int64)
    seen = np.empty((2, FEW_GUIDS), np.uint64)
    d = guids.first_seen(hi, lo, valid, codes, seen[0], seen[1])
    if d < 0:
        return None
    order = np.lexsort((seen[1, :d], seen[0, :d]))
    return ranks(order)[codes], seen[:, order].T.copy()


def ranks(order: np.ndarray) -> np.ndarray:
    """Rank of each value given the order that sorts them, and rank[-1] = -1 (nulls stay -1)."""
    rank = np.empty(order.size + 1, np.int64)
    rank[order] = np.arange(order.size)
    rank[-1] = -1
    return rank


def guid_array(pairs: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """``GUID_TYPE`` rows from (hi, lo) rows (as ``guid_pairs`` gives); null where ``valid`` is False."""
    validity = None if valid is None or valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(GUID_TYPE, pairs.shape[0], [validity, pa.py_buffer(pairs.byteswap())])


def guid_text(chunk: pa.Array, typ: pa.DataType) -> pa.Array:
    """A ``GUID_TYPE`` array as canonical GUID strings of ``typ`` (string or large_string)."""
    words = guid_words(chunk).astype(np.uint64)
    validity = chunk.is_valid().buffers()[1] if chunk.null_count else None
    return strings_of(words[0::2], words[1::2], typ, validity)


def guid_words(chunk: pa.Array) -> np.ndarray:
    """A ``GUID_TYPE`` array's rows as big-endian uint64 words, hi and lo in turn (no copy)."""
    return np.frombuffer(chunk.buffers()[1], ">u8")[2 * chunk.offset:2 * (chunk.offset + len(chunk))]


def strings_of(hi: np.ndarray, lo: np.ndarray, typ: pa.DataType, validity: pa.Buffer | None = None) -> pa.Array:
    """The canonical text of (hi, lo) pairs as a string array of ``typ``."""
    data = np.empty(hi.size * guids.GUID_LENGTH, np.uint8)
    guids.format_guids(hi, lo, data)
    offsets = np.arange(0, data.size + 1, guids.GUID_LENGTH,
                        dtype=np.int64 if pa.types.is_large_string(typ) else np.int32)
    return pa.Array.from_buffers(typ, hi.size, [validity, pa.py_buffer(offsets), pa.py_buffer(data)])


def take(values: pa.Array, codes: np.ndarray, width: int) -> pa.Array:
    """``values.take(codes)`` (-1: null): ``take_fixed`` when every value has ``width`` bytes
    (``fixed_width``; 0: not so) and the result's offsets fit, else Arrow's take."""
    if width and (codes.size * width < 2**31 or values.type == GUID_TYPE):
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
    none is null), as GUIDs do, or of a ``GUID_TYPE`` array without nulls; else 0."""
    if len(values) == 0 or values.null_count:
        return 0
    if values.type == GUID_TYPE:
        return GUID_TYPE.byte_width
    if not is_string(values.type):
        return 0
    offsets, _ = string_buffers(values)
    width = int(offsets[1] - offsets[0])
    return width if width and np.all(np.diff(offsets) == width) else 0


def take_fixed(values: pa.Array, codes: np.ndarray, width: int) -> pa.Array:
    """``values.take(codes)`` (-1: null) for values of ``width`` bytes each: NumPy's take of
    ``width``-byte records, with no per-row offsets or lengths to read (a null's slot holds the
    last value's bytes, under the validity bitmap)."""
    valid = codes >= 0
    validity = None if valid.all() else pa.array(valid).buffers()[1]
    if values.type == GUID_TYPE:
        records = np.frombuffer(values.buffers()[1], f"V{width}")[values.offset:values.offset + len(values)]
        return pa.Array.from_buffers(values.type, codes.size, [validity, pa.py_buffer(np.take(records, codes))])
    offsets, data = string_buffers(values)
    records = data[offsets[0]:offsets[0] + len(values) * width].view(f"V{width}")
    out_offsets = np.arange(0, codes.size * width + 1, width, dtype=offsets.dtype)
    return pa.Array.from_buffers(values.type, codes.size,
                                 [validity, pa.py_buffer(out_offsets), pa.py_buffer(np.take(records, codes))])
