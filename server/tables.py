"""Validation and normalisation of input tables against the specs in ``schema``.

Every check is vectorised (pyarrow compute or NumPy); the first problem found is raised as an
``InputError`` naming table, column, first offending row, value and the number of rows affected.
Normalised tables have every spec column, in spec order, defaults filled, canonical types
(tenant and string columns ``string``, ids ``string`` or ``int64``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from licensecore import compact

from .errors import InputError
from .schema import Column

_INTEGER_TYPES = {
    "int32": pa.int32(),
    "int64": pa.int64(),
}


def is_string_like(t: pa.DataType) -> bool:
    """Strings in any Arrow flavour: string, large_string, string_view, dictionary<string>."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def first_row(table: str, column: str, mask: np.ndarray, values: pa.ChunkedArray, problem: str):
    """Raise an InputError for the first True row of ``mask`` (if any)."""
    rows = np.flatnonzero(mask)
    if rows.size:
        row = int(rows[0])
        value = values[row].as_py()
        if values.type == compact.GUID_TYPE and value is not None:  # a kept GUID column's 16 bytes
            value = str(uuid.UUID(bytes=value))
        raise InputError(table, column, row, value, int(rows.size), problem)


def normalize_tables(
    tables: Mapping[str, pa.Table], specs: Mapping[str, tuple[Column, ...]],
    keep_dictionaries: bool = False,
) -> tuple[dict[str, pa.Table], dict[str, pa.DataType]]:
    """Validate and normalise every table of ``specs``; absent tables are empty.

    Returns the normalised tables and, per id kind, the Arrow type the input used for it (the
    type output id columns take; a column tagged compact by ``licensecore.compact`` declares the
    type it stands for). Other GUID columns are printed as text; with ``keep_dictionaries``, id and
    tenant columns of dictionary type stay dictionaries (of the canonical value type), and GUID id
    columns stay ``compact.GUID_TYPE``, for an encoder that codes their few values once instead of
    every row and reads GUIDs without parsing them (``encode.Dictionary``).
    """
    id_types: dict[str, tuple[pa.DataType, str]] = {}
    out: dict[str, pa.Table] = {}
    for name, columns in specs.items():
        table = tables.get(name)
        if table is None:
            table = pa.table({c.name: pa.array([], type=pa.null()) for c in columns if c.required})
        out[name] = _normalize_table(name, table, columns, id_types, keep_dictionaries)
    kinds = {c.id_kind for cols in specs.values() for c in cols if c.id_kind}
    result_types = {k: id_types[k][0] if k in id_types else pa.string() for k in kinds}
    # An id kind that no given table fixed defaults to string: make its empty columns match.
    for name, columns in specs.items():
        for c in columns:
            if c.id_kind and value_type(out[name].schema.field(c.name).type) != _canonical(result_types[c.id_kind]):
                i = out[name].schema.get_field_index(c.name)
                col = out[name].column(i).cast(_canonical(result_types[c.id_kind]))
                out[name] = out[name].set_column(i, c.name, col)
    return out, result_types


def value_type(t: pa.DataType) -> pa.DataType:
    """The type a normalised column's values stand for: a dictionary type's value type, string for
    a kept GUID column (``compact.GUID_TYPE``), any other type itself."""
    if t == compact.GUID_TYPE:
        return pa.string()
    return t.value_type if pa.types.is_dictionary(t) else t


def _canonical(id_type: pa.DataType) -> pa.DataType:
    return pa.int64() if pa.types.is_integer(id_type) else pa.string()


def _normalize_table(
    name: str, table: pa.Table, columns: tuple[Column, ...], id_types: dict, keep_dictionaries: bool
) -> pa.Table:
    arrays = []
    for col in columns:
        if col.name not in table.column_names:
            if col.required:
                raise InputError(name, col.name, -1, None, table.num_rows, "missing required column")
            values = pa.chunked_array([pa.nulls(table.num_rows, _target_type(col, id_types))])
        else:
            field = table.schema.field(col.name)
            declared, values = compact.declared_type(field), table.column(col.name)
            if compact.is_guid_column(field) and not (keep_dictionaries and col.kind == "id"):
                values = compact.expanded(values, field)
            values = _cast(name, col, values, declared, id_types, keep_dictionaries)
        null = values.is_null().to_numpy(zero_copy_only=False)
        if col.required:
            first_row(name, col.name, null, values, "null in a required column")
        elif col.default is not None and null.any():
            values = values.fill_null(pa.scalar(col.default, values.type))
        if col.values:
            bad = ~pc.is_in(values, value_set=pa.array(col.values)).to_numpy(zero_copy_only=False)
            first_row(name, col.name, bad & ~null, values,
                      f"unknown value (expected one of {', '.join(col.values)})")
        if col.minimum is not None:
            below = pc.less(values, col.minimum).fill_null(False).to_numpy(zero_copy_only=False)
            first_row(name, col.name, below, values, f"negative value (must be >= {col.minimum:g})")
        arrays.append(values)
    return pa.table(arrays, names=[c.name for c in columns])


def _is_string_dictionary(values: pa.ChunkedArray) -> bool:
    """A dictionary column of strings whose dictionaries hold no null (a row is null by its index)."""
    return pa.types.is_dictionary(values.type) and is_string_like(values.type) and not any(
        chunk.dictionary.null_count for chunk in values.chunks)


def _target_type(col: Column, id_types: dict) -> pa.DataType:
    if col.kind == "id":
        return _canonical(id_types[col.id_kind][0]) if col.id_kind in id_types else pa.string()
    return {
        "tenant": pa.string(),
        "string": pa.string(),
        "enum": pa.string(),
        "bool": pa.bool_(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "string_list": pa.list_(pa.string()),
    }.get(col.kind) or _INTEGER_TYPES[col.kind]


def _cast(name: str, col: Column, values: pa.ChunkedArray, declared: pa.DataType, id_types: dict,
          keep_dictionaries: bool) -> pa.ChunkedArray:
    """Check the column's Arrow type and cast it to the canonical one (see ``normalize_tables`` for
    ``declared`` and ``keep_dictionaries``)."""
    t = values.type
    if pa.types.is_null(t):
        return pa.chunked_array([pa.nulls(len(values), _target_type(col, id_types))])
    ok: bool
    if col.kind == "id":
        ok = is_string_like(declared) or pa.types.is_int64(declared)
        if ok:
            seen = id_types.get(col.id_kind)
            if seen is None:
                id_types[col.id_kind] = (declared, f"{name}.{col.name}")
            elif is_string_like(seen[0]) != is_string_like(declared):
                raise InputError(
                    name, col.name, -1, None, len(values),
                    f"wrong type {declared}: ids of this kind are {seen[0]} in {seen[1]}",
                )
    elif col.kind in ("tenant", "string", "enum"):
        ok = is_string_like(t)
    elif col.kind == "bool":
        ok = pa.types.is_boolean(t)
    elif col.kind in _INTEGER_TYPES:
        ok = pa.types.is_integer(t)
    elif col.kind == "float64":
        ok = pa.types.is_integer(t) or pa.types.is_floating(t)
    elif col.kind == "string_list":
        ok = (pa.types.is_list(t) or pa.types.is_large_list(t)) and (
            is_string_like(t.value_type) or pa.types.is_null(t.value_type))
    else:  # timestamp
        ok = pa.types.is_timestamp(t)
    if not ok:
        expected = "string or int64" if col.kind == "id" else col.kind
        raise InputError(name, col.name, -1, None, len(values), f"wrong type {t} (expected {expected})")
    target = _target_type(col, {col.id_kind: (declared, "")} if col.kind == "id" else id_types)
    if keep_dictionaries and col.kind in ("id", "tenant") and _is_string_dictionary(values):
        target = pa.dictionary(t.index_type, target)
    elif t == compact.GUID_TYPE:  # a GUID id column kept for the encoder (see ``normalize_tables``)
        target = t
    if col.kind == "timestamp":
        target = pa.timestamp(t.unit, tz=t.tz or "UTC")
    if pa.types.is_integer(target) and values.type != target:
        info = np.iinfo(target.to_pandas_dtype())
        outside = pc.or_(pc.less(values, info.min), pc.greater(values, info.max))
        first_row(name, col.name, outside.fill_null(False).to_numpy(zero_copy_only=False), values,
                  f"out of range for {target}")
    if pa.types.is_floating(target):
        values = values.cast(target)
        not_finite = pc.invert(pc.is_finite(values)).fill_null(False)
        first_row(name, col.name, not_finite.to_numpy(zero_copy_only=False), values,
                  "not a finite number")
    return values if values.type == target else values.cast(target)
