"""Key and reference checks over encoded (tenant, id) keys, shared by every adaptor."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .encode import KeySpace
from .tables import first_row


def unique_keys(
    table: str, column: str, keys: np.ndarray, values: pa.ChunkedArray, width: int,
    problem: str = "duplicate key",
) -> KeySpace:
    """The key space of a key column; the first row repeating an earlier row's key is an error."""
    space = KeySpace(keys, width)
    if len(space) < np.count_nonzero(keys >= 0):
        order = np.argsort(keys, kind="stable")
        repeat = np.zeros(keys.size, np.bool_)
        repeat[order[1:]] = keys[order][1:] == keys[order][:-1]
        first_row(table, column, repeat, values, problem)
    return space


def resolve(
    table: str, column: str, values: pa.ChunkedArray, space: KeySpace, keys: np.ndarray,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Codes of a reference column; a non-null id naming no (allowed) entity is an error."""
    code = space.lookup(keys)
    bad = (keys >= 0) & (code < 0)
    if allowed is not None:
        bad |= (code >= 0) & ~allowed[np.maximum(code, 0)]
    first_row(table, column, bad, values, "reference does not resolve within its tenant")
    return code
