"""Replacement rows of a what-if scenario (SPEC section 4): validation and matching on their keys.

Shared by the licenses part (``whatif``) and the bundles and pools part (``whatif_bundles``).
A replacement table has the key columns (required) and any subset of the table's other columns,
each without a default: a null cell keeps the base value.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .encode import Dictionary, KeySpace, composite
from .errors import InputError
from .schema import Column
from .tables import first_row, is_string_like, normalize_tables


def replacement_columns(columns: tuple[Column, ...], keys: tuple[str, ...]) -> tuple[Column, ...]:
    """The columns of a table's replacement rows: the keys as they are, the rest without default."""
    return tuple(c if c.name in keys else dataclasses.replace(c, default=None) for c in columns)


def normalized_rows(
    label: str, table: str, rows: pa.Table, columns: tuple[Column, ...], id_types: dict[str, pa.DataType]
) -> pa.Table:
    """Validated, normalised replacement rows; raises ``InputError`` naming ``label``.

    Id columns must be of the kind (string or int64) the input tables use for that id kind.
    """
    known = {c.name for c in columns}
    unknown = [c for c in rows.column_names if c not in known]
    if unknown:
        raise InputError(label, unknown[0], -1, None, rows.num_rows,
                         f"unknown column (expected columns of {table})")
    for c in columns:
        if c.id_kind is None or c.name not in rows.column_names:
            continue
        t, base = rows.schema.field(c.name).type, id_types[c.id_kind]
        if not pa.types.is_null(t) and is_string_like(t) != is_string_like(base):
            raise InputError(label, c.name, -1, None, rows.num_rows,
                             f"wrong type {t}: these ids are {base} in the input tables")
    return normalize_tables({label: rows}, {label: columns})[0][label]


def codes_of(
    tenants: pa.Array, tenant: pa.ChunkedArray, ids: pa.ChunkedArray, dictionary: Dictionary, space: KeySpace
) -> np.ndarray:
    """Entity code of each (tenant, id) row in ``space``; -1 for a null id or an unknown key."""
    t = np.asarray(pc.index_in(tenant, value_set=tenants).fill_null(-1).to_numpy(), np.int64)
    i = np.asarray(pc.index_in(ids.cast(dictionary.values.type), value_set=dictionary.values)
                   .fill_null(-1).to_numpy(), np.int64)
    return space.lookup(np.where((t >= 0) & (i >= 0), composite(t, i, len(dictionary)), -1))


def key_codes(
    label: str, rows: pa.Table, column: str, tenants: pa.Array, dictionary: Dictionary, space: KeySpace,
    table: str,
) -> np.ndarray:
    """Codes of the rows' keys (tenant_id, ``column``): every key must exist in the base ``table``
    and appear once; raises ``InputError`` naming the first bad row and its value."""
    code = codes_of(tenants, rows.column("tenant_id"), rows.column(column), dictionary, space)
    first_row(label, column, code < 0, rows.column(column),
              f"no such {table[:-1]} (tenant_id, {column}) in {table}")
    order = np.argsort(code, kind="stable")
    repeat = np.zeros(code.size, np.bool_)
    repeat[order[1:]] = code[order][1:] == code[order][:-1]
    first_row(label, column, repeat, rows.column(column), f"duplicate replacement row for (tenant_id, {column})")
    return code


def valid(values: pa.ChunkedArray) -> np.ndarray:
    """The non-null cells of a replacement column (the cells that replace a base value)."""
    return np.asarray(values.is_valid().to_numpy(zero_copy_only=False), np.bool_)
