"""(tenant, id) keys and their codes, one pass over the rows each.

The adaptor's NumPy spelling of these (``np.where`` over temporaries) took four to eight passes
over every installation row; these take one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import JIT


@njit(**JIT)
def composite_keys(tenant: np.ndarray, ids: np.ndarray, width: int) -> np.ndarray:
    """``tenant * width + id`` per row; -1 where the id is null (-1)."""
    out = np.empty(ids.size, np.int64)
    for i in range(ids.size):
        out[i] = tenant[i] * width + ids[i] if ids[i] >= 0 else -1
    return out


@njit(**JIT)
def table_lookup(keys: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[key]`` per key inside the table; -1 for a null key (-1) or one past its end."""
    out = np.empty(keys.size, np.int64)
    for i in range(keys.size):
        k = keys[i]
        out[i] = table[k] if 0 <= k < table.size else -1
    return out


@njit(**JIT)
def any_unresolved(keys: np.ndarray, codes: np.ndarray, allowed: np.ndarray, check_allowed: bool) -> bool:
    """Whether a non-null key has no code, or (``check_allowed``) a code that is not ``allowed``."""
    for i in range(keys.size):
        if keys[i] >= 0 and (codes[i] < 0 or (check_allowed and not allowed[codes[i]])):
            return True
    return False
