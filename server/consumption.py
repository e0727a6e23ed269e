"""Section 1 of SPEC.md (consumption): Arrow tables in, Arrow tables out.

Work in progress: the adaptor around the kernels is being written.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa


def compute_consumption(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """Compute `consumption`, `license_summary`, `unlicensed` and `chargeback` (SPEC 1.6)."""
    raise NotImplementedError("consumption engine not written yet")


def warm_up() -> None:
    """Compile every kernel on a tiny input so that the first real request pays no JIT."""
    compute_consumption({})
