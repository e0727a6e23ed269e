"""Dense integer codes for ids, made once at the edge.

One hash pass per id kind (``dictionary_encode`` over every column of that kind at once), then the
dictionary is ranked so that code order is id order: byte order for UTF-8 strings (sorted by
``kernels.strings`` on 8-byte prefixes), numeric order for int64. Keys are (tenant, id): ``tenant_code * len(dictionary) + id_code``, so entity codes
sort tenant first.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from licensecore.compact import (GUID_TYPE, dictionary_of, few_guids, fixed_width, guid_array, guid_text, guid_words,
                                 is_string, ranks, runs, string_buffers, strings_of, take)
from licensecore.kernels import guids
from licensecore.kernels.keys import composite_keys, table_lookup
from licensecore.kernels.strings import sort_order

from .parallel import PARTS, run_parts
from .tables import value_type


class Dictionary:
    """Sorted distinct values of several columns, and each column's codes into them.

    Columns whose every value is a canonical lowercase GUID are encoded as 128-bit integers
    (``kernels.guids``; a ``GUID_TYPE`` chunk is read, not parsed), which ``pairs`` then holds
    (else None); any other column set by Arrow's ``dictionary_encode``. Both give the same values
    and codes. A chunk of dictionary type is coded by its dictionary's values (each distinct
    dictionary once), then its rows through their indices; a chunk in long runs (tenant ids, as
    tables usually come) by its runs' values, then its rows run by run.
    """

    def __init__(self, columns: list[pa.ChunkedArray]) -> None:
        chunks = [chunk for col in columns for chunk in col.chunks]
        typ = value_type(columns[0].type) if columns else pa.string()
        plain, sources = _plain_chunks(chunks)
        values, codes, pairs = _guid_encode(plain, typ) or (*_arrow_encode(_as_text(plain, typ), typ), None)
        if plain is not chunks:
            codes = _row_codes(chunks, plain, sources, codes)
            if any(pa.types.is_dictionary(chunk.type) for chunk in chunks):
                values, codes, pairs = _used(values, codes, pairs)
        self.values: pa.Array = values
        self.pairs: np.ndarray | None = pairs  # the values as (hi, lo) rows, when GUIDs
        # Split by row counts: dictionary_encode may drop empty chunks.
        bounds = np.cumsum([len(col) for col in columns])[:-1]
        self.codes: list[np.ndarray] = np.split(codes, bounds)

    def __len__(self) -> int:
        return len(self.values)


def _plain_chunks(chunks: list[pa.Array]) -> tuple[list[pa.Array], list[tuple[int, np.ndarray | None]]]:
    """The arrays to code, fewer rows than ``chunks`` where that is cheap: each distinct dictionary
    of the dictionary chunks (chunks that share a dictionary, as an IPC stream's batches do, share
    its entry), the run values of a chunk in long runs (``compact.runs``), each other chunk as it
    is; and for each chunk, its entry and how its rows take their codes from the entry's: None
    (row for row), indices (a dictionary chunk's, -1 for null) or run lengths. ``chunks`` itself
    when every chunk is as it is."""
    plain: list[pa.Array] = []
    sources: list[tuple[int, np.ndarray | None]] = []
    seen: dict[tuple, int] = {}
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            values = chunk.dictionary
            key = (values.offset, len(values), *(b.address if b is not None else 0 for b in values.buffers()))
            if key not in seen:
                seen[key] = len(plain)
                plain.append(values)
            sources.append((seen[key], np.asarray(chunk.indices.fill_null(-1).to_numpy())))
            continue
        ran = runs(chunk) if is_string(chunk.type) else None
        sources.append((len(plain), None if ran is None else ran[1]))
        plain.append(chunk if ran is None else ran[0])
    if all(how is None for _, how in sources):
        return chunks, sources
    return plain, sources


def _row_codes(chunks: list[pa.Array], plain: list[pa.Array], sources: list[tuple[int, np.ndarray | None]],
               codes: np.ndarray) -> np.ndarray:
    """Each row's code, from the codes of ``_plain_chunks``' arrays."""
    starts = np.concatenate([[0], np.cumsum([len(p) for p in plain])])
    rows = []
    for chunk, (source, how) in zip(chunks, sources):
        values = codes[starts[source]:starts[source + 1]]
        if pa.types.is_dictionary(chunk.type):
            values = np.append(values, -1)[how]  # index -1 takes the appended -1
        elif how is not None:
            values = np.repeat(values, how)
        rows.append(values)
    return np.concatenate(rows) if rows else np.empty(0, np.int64)


def _used(values: pa.Array, codes: np.ndarray, pairs: np.ndarray | None
          ) -> tuple[pa.Array, np.ndarray, np.ndarray | None]:
    """The values (and their pairs) some row has (a dictionary may hold others), and the codes
    into them."""
    used = np.zeros(len(values), np.bool_)
    used[codes[codes >= 0]] = True
    if used.all():
        return values, codes, pairs
    new = np.cumsum(used) - 1
    return (values.filter(pa.array(used)), np.where(codes >= 0, new[codes], -1),
            None if pairs is None else pairs[used])


def _as_text(chunks: list[pa.Array], typ: pa.DataType) -> list[pa.Array]:
    """``chunks`` with each ``GUID_TYPE`` chunk as strings of ``typ``."""
    return [guid_text(chunk, typ) if chunk.type == GUID_TYPE else chunk for chunk in chunks]


def _arrow_encode(chunks: list[pa.Array], typ: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Sorted distinct values and codes through Arrow's hash table."""
    encoded = pa.chunked_array(chunks, type=typ).dictionary_encode()
    values = encoded.chunk(0).dictionary if encoded.num_chunks else pa.array([], type=typ)
    order = _sort_indices(values)
    parts = [np.asarray(c.indices.fill_null(-1).to_numpy(), np.int64) for c in encoded.chunks]
    codes = ranks(order)[np.concatenate(parts)] if parts else np.empty(0, np.int64)
    return values.take(pa.array(order)), codes


def _guid_encode(chunks: list[pa.Array], typ: pa.DataType) -> tuple[pa.Array, np.ndarray, np.ndarray] | None:
    """Sorted distinct values, codes and the values' (hi, lo) rows through ``kernels.guids``; None
    unless every value is a canonical lowercase GUID."""
    large = pa.types.is_large_string(typ)
    if not (pa.types.is_string(typ) or large) or not chunks:
        return None
    distinct = _distinct_guids(chunks)
    if distinct is None:
        return None
    codes, pairs = distinct
    if not large and pairs.shape[0] * guids.GUID_LENGTH >= 2**31:
        return None  # the values would not fit a string array's int32 offsets
    return strings_of(pairs[:, 0], pairs[:, 1], typ), codes, pairs


def _distinct_guids(chunks: list[pa.Array]) -> tuple[np.ndarray, np.ndarray] | None:
    """Each row's code (-1: null) into the sorted distinct GUIDs, and those as (hi, lo) rows; None
    when a value is not a canonical GUID.

    Rows of few distinct GUIDs (application ids) are numbered in one hash pass
    (``compact.few_guids``). Otherwise the pairs are partitioned by their high bits, in order
    (``kernels.guids``), so each partition is made distinct and sorted with a hash table that fits
    in cache, and the partitions' results laid end to end are sorted. Every step is split into
    parts run side by side: rows for parsing, counting and scattering, whole partitions for the
    rest.
    """
    parsed = _parse_guids(chunks)
    if parsed is None:
        return None
    few = few_guids(*parsed)
    if few is not None:
        return few
    codes = np.full(parsed[0].size, -1, np.int64)
    partitioned = _partition_guids(*parsed)
    del parsed  # the per-row pairs: the partitions hold them now
    if partitioned is None:  # no valid row
        return codes, np.empty((0, 2), np.uint64)
    bounds, part_hi, part_lo, part_row = partitioned
    parts, m = PARTS, part_hi.size
    # Whole partitions per part, about equal rows each.
    split = np.append(np.searchsorted(bounds, [p * m // parts for p in range(parts)]), bounds.size - 1)
    local = np.empty(m, np.int32 if m < 2**31 else np.int64)
    distinct = np.zeros(bounds.size - 1, np.int64)
    run_parts(lambda p: guids.distinct_partitions(bounds, split[p], split[p + 1], part_hi, part_lo,
                                                  local, distinct), parts)
    base = np.concatenate([[0], np.cumsum(distinct)[:-1]])
    out = np.empty((distinct.sum(), 2), np.uint64)
    run_parts(lambda p: guids.place_codes(bounds, split[p], split[p + 1], base, distinct, local,
                                          part_row, part_hi, part_lo, codes, out[:, 0], out[:, 1]), parts)
    return codes, out


def _parse_guids(chunks: list[pa.Array]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Each row's GUID as (hi, lo), and whether it is not null; None when a value is not a
    canonical GUID."""
    n = sum(len(chunk) for chunk in chunks)
    hi, lo = np.empty(n, np.uint64), np.empty(n, np.uint64)
    valid = np.ones(n, np.bool_)
    starts = np.concatenate([[0], np.cumsum([len(chunk) for chunk in chunks])[:-1]])

    def parse(p: int) -> bool:
        return all(_parse_rows(chunk, start, p, hi, lo, valid) for chunk, start in zip(chunks, starts))

    return (hi, lo, valid) if all(run_parts(parse)) else None


def _partition_guids(hi: np.ndarray, lo: np.ndarray, valid: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The valid rows' pairs and row numbers partitioned by the pairs' high bits, in order, and the
    partitions' bounds; None when no row is valid."""
    parts, n = PARTS, hi.size
    rows = [slice(p * n // parts, (p + 1) * n // parts) for p in range(parts)]
    ranges = [r for r in run_parts(lambda p: guids.hi_range(hi[rows[p]], valid[rows[p]]), parts) if r[2]]
    if not ranges:
        return None
    least = np.uint64(min(r[0] for r in ranges))
    shift = guids.partition_shift(least, np.uint64(max(r[1] for r in ranges)))
    counts = np.zeros((parts, 1 << guids.PARTITION_BITS), np.int64)
    run_parts(lambda p: guids.partition_counts(hi[rows[p]], valid[rows[p]], least, shift, counts[p]), parts)
    bounds = np.concatenate([[0], np.cumsum(counts.sum(axis=0))])
    cursors = bounds[:-1] + np.cumsum(counts, axis=0) - counts  # part p's first place in each partition
    m = bounds[-1]
    part_hi, part_lo = np.empty(m, np.uint64), np.empty(m, np.uint64)
    part_row = np.empty(m, np.int32 if n < 2**31 else np.int64)
    run_parts(lambda p: guids.scatter(hi[rows[p]], lo[rows[p]], valid[rows[p]], rows[p].start, least,
                                      shift, cursors[p], part_hi, part_lo, part_row), parts)
    return bounds, part_hi, part_lo, part_row


def _parse_rows(chunk: pa.Array, start: int, p: int, hi: np.ndarray, lo: np.ndarray,
                valid: np.ndarray) -> bool:
    """Parse part ``p`` (of ``PARTS``) of ``chunk``'s rows into ``hi``/``lo``/``valid`` from row
    ``start``; False when a value is not a canonical GUID."""
    a, b = p * len(chunk) // PARTS, (p + 1) * len(chunk) // PARTS
    rows = chunk.slice(a, b - a)
    start += a
    end = start + len(rows)
    if rows.null_count == len(rows):  # all null, or empty
        valid[start:end] = False
        return True
    mask = np.asarray(rows.is_valid()) if rows.null_count else np.empty(0, np.bool_)
    if mask.size:
        valid[start:end] = mask
    if rows.type == GUID_TYPE:  # big-endian (hi, lo) words
        words = guid_words(rows)
        hi[start:end], lo[start:end] = words[0::2], words[1::2]
        return True
    return guids.parse(*string_buffers(rows), mask, hi[start:end], lo[start:end])


def _sort_indices(values: pa.Array) -> np.ndarray:
    """``pc.array_sort_indices(values)`` (values without nulls); strings by ``kernels.strings``."""
    if is_string(values.type):
        return sort_order(*string_buffers(values))
    return pc.array_sort_indices(values).to_numpy()


class KeySpace:
    """Entities keyed by (tenant, id), coded densely in (tenant, id) order.

    When the key range is small next to the number of keys (the usual case: few tenants), a
    direct-address table maps keys to codes in O(1); otherwise keys are sorted and searched.
    """

    def __init__(self, keys: np.ndarray, width: int) -> None:
        self.width = max(width, 1)
        keys = keys[keys >= 0]
        n_cells = int(keys.max()) + 1 if keys.size else 0
        self._table: np.ndarray | None = None
        if n_cells <= 8 * keys.size + (1 << 20):
            present = np.zeros(n_cells, np.bool_)
            present[keys] = True
            self.keys = np.flatnonzero(present)
            self._table = np.full(n_cells, -1, np.int64)
            self._table[self.keys] = np.arange(self.keys.size)
        else:
            self.keys = np.unique(keys)

    def __len__(self) -> int:
        return self.keys.size

    def drop_table(self) -> None:
        """Free the direct-address table; look-ups then search the sorted keys."""
        self._table = None

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Entity code of each key; -1 for a null key or one that is not an entity."""
        if self._table is not None:
            return table_lookup(keys, self._table)
        pos = np.minimum(np.searchsorted(self.keys, keys), max(self.keys.size - 1, 0))
        found = keys >= 0
        found &= self.keys[pos] == keys if self.keys.size else False
        return np.where(found, pos, -1)

    def tenant_of(self, codes: np.ndarray) -> np.ndarray:
        return self._parts[0][codes]

    def id_of(self, codes: np.ndarray) -> np.ndarray:
        return self._parts[1][codes]

    @cached_property
    def _parts(self) -> tuple[np.ndarray, np.ndarray]:
        """Each entity's tenant code and id code, divided out of its key once rather than per row
        decoded (NumPy's int64 division is slow, and the rows outnumber the entities)."""
        return np.divmod(self.keys, self.width)


def composite(tenant: np.ndarray, ids: np.ndarray, width: int) -> np.ndarray:
    """(tenant, id) keys; -1 where the id is null."""
    return composite_keys(tenant, ids, max(width, 1))


DECODE_PART_ROWS = 1 << 20  # longer code arrays are decoded in parts side by side


def decode(values: pa.Array, codes: np.ndarray, typ: pa.DataType, compact: bool = False,
           pairs: np.ndarray | None = None) -> pa.Array | pa.ChunkedArray:
    """Ids for codes (-1: null), in the Arrow type the input used; with ``compact``, a dictionary
    array when ``licensecore.compact.dictionary_of`` makes one (string ids of few values), else
    ``GUID_TYPE`` rows when the values are GUIDs (``pairs``: their ``Dictionary.pairs``)."""
    if compact and values.type == typ:
        compacted = dictionary_of(values, codes)
        if compacted is not None:
            return compacted
        if pairs is not None:
            values, typ = guid_array(pairs), GUID_TYPE
    width = fixed_width(values)

    def part(p: int, parts: int) -> pa.Array:
        return take(values, codes[p * codes.size // parts:(p + 1) * codes.size // parts], width)

    if codes.size < DECODE_PART_ROWS:
        return cast_ids(part(0, 1), typ)
    return cast_ids(pa.chunked_array(run_parts(lambda p: part(p, PARTS)), values.type), typ)


def cast_ids(ids: pa.Array | pa.ChunkedArray, typ: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """Ids in the Arrow type ``typ`` (dictionary types through a dictionary encoding)."""
    if pa.types.is_dictionary(typ) and not pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_encode()
    return ids.cast(typ) if ids.type != typ else ids
