"""Dense integer codes for ids, made once at the edge.

One hash pass per id kind (``dictionary_encode`` over every column of that kind at once), then the
dictionary is ranked so that code order is id order: byte order for UTF-8 strings (sorted by
``kernels.strings`` on 8-byte prefixes), numeric order for int64. Keys are (tenant, id): ``tenant_code * len(dictionary) + id_code``, so entity codes
sort tenant first.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from licensecore.kernels.strings import sort_order


class Dictionary:
    """Sorted distinct values of several columns, and each column's codes into them."""

    def __init__(self, columns: list[pa.ChunkedArray]) -> None:
        chunks = [chunk for col in columns for chunk in col.chunks]
        typ = columns[0].type if columns else pa.string()
        encoded = pa.chunked_array(chunks, type=typ).dictionary_encode()
        if encoded.num_chunks:
            values = encoded.chunk(0).dictionary
        else:
            values = pa.array([], type=typ)
        order = _sort_indices(values)
        rank = np.empty(len(values) + 1, np.int64)  # rank[-1] = -1 keeps nulls -1
        rank[order] = np.arange(len(values))
        rank[-1] = -1
        self.values: pa.Array = values.take(pa.array(order))
        parts = [np.asarray(c.indices.fill_null(-1).to_numpy(), np.int64) for c in encoded.chunks]
        codes = rank[np.concatenate(parts)] if parts else np.empty(0, np.int64)
        # Split by row counts: dictionary_encode may drop empty chunks.
        bounds = np.cumsum([len(col) for col in columns])[:-1]
        self.codes: list[np.ndarray] = np.split(codes, bounds)

    def __len__(self) -> int:
        return len(self.values)


def _sort_indices(values: pa.Array) -> np.ndarray:
    """``pc.array_sort_indices(values)`` (values without nulls); strings by ``kernels.strings``."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        _, offset_buf, data_buf = values.buffers()
        width = np.int64 if pa.types.is_large_string(values.type) else np.int32
        offsets = np.frombuffer(offset_buf, width)[values.offset:values.offset + len(values) + 1]
        data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
        return sort_order(offsets, data)
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

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Entity code of each key; -1 for a null key or one that is not an entity."""
        if self._table is not None:
            if not self._table.size:
                return np.full(keys.shape, -1, np.int64)
            inside = (keys >= 0) & (keys < self._table.size)
            return np.where(inside, self._table[np.where(inside, keys, 0)], -1)
        pos = np.minimum(np.searchsorted(self.keys, keys), max(self.keys.size - 1, 0))
        found = keys >= 0
        found &= self.keys[pos] == keys if self.keys.size else False
        return np.where(found, pos, -1)

    def tenant_of(self, codes: np.ndarray) -> np.ndarray:
        return self.keys[codes] // self.width

    def id_of(self, codes: np.ndarray) -> np.ndarray:
        return self.keys[codes] % self.width


def composite(tenant: np.ndarray, ids: np.ndarray, width: int) -> np.ndarray:
    """(tenant, id) keys; -1 where the id is null."""
    return np.where(ids >= 0, tenant * max(width, 1) + ids, -1)


def decode(values: pa.Array, codes: np.ndarray, typ: pa.DataType) -> pa.Array:
    """Ids for codes (-1: null), in the Arrow type the input used."""
    return cast_ids(values.take(pa.array(codes, mask=codes < 0)), typ)


def cast_ids(ids: pa.Array | pa.ChunkedArray, typ: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """Ids in the Arrow type ``typ`` (dictionary types through a dictionary encoding)."""
    if pa.types.is_dictionary(typ) and not pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_encode()
    return ids.cast(typ) if ids.type != typ else ids
