"""Key and reference checks over encoded (tenant, id) keys, shared by every adaptor."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from licensecore.kernels.keys import any_unresolved

from .encode import KeySpace
from .tables import first_row


def unique_keys(
    table: str, column: str, keys: np.ndarray, values: pa.ChunkedArray, width: int,
    problem: str = "duplicate key",
) -> KeySpace:
    """The key space of a key column; the first row repeating an earlier row's key is an error."""
    space = KeySpace(keys, width)
    if len(space) < np.count_nonzero(keys >= 0):
        distinct_codes(table, column, space.lookup(keys), values, problem)
    return space


def distinct_codes(
    table: str, column: str, codes: np.ndarray, values: pa.ChunkedArray,
    problem: str = "duplicate key",
) -> None:
    """The first row whose code (-1: null, ignored) repeats an earlier row's is an error.

    For a key column whose entities are coded in a key space shared with other tables.
    """
    present = codes[codes >= 0]
    if present.size and np.bincount(present).max() > 1:
        order = np.argsort(codes, kind="stable")
        repeat = np.zeros(codes.size, np.bool_)
        repeat[order[1:]] = (codes[order][1:] == codes[order][:-1]) & (codes[order][1:] >= 0)
        first_row(table, column, repeat, values, problem)


def resolve(
    table: str, column: str, values: pa.ChunkedArray, space: KeySpace, keys: np.ndarray,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Codes of a reference column; a non-null id naming no (allowed) entity is an error."""
    code = space.lookup(keys)
    check_allowed = allowed is not None
    if any_unresolved(keys, code, allowed if check_allowed else np.empty(0, np.bool_), check_allowed):
        bad = (keys >= 0) & (code < 0)
        if check_allowed:
            bad |= (code >= 0) & ~allowed[np.maximum(code, 0)]
        first_row(table, column, bad, values, "reference does not resolve within its tenant")
    return code
