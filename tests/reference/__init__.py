"""Slow, obviously-correct references of SPEC.md, and the engine behind the same interface.

Every implementation here takes the input tables and returns each output table as a list of row
dicts, so tests can be parametrized over them and compare outputs with ``==``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from .consumption import reference_consumption

Rows = dict[str, list[dict[str, Any]]]


def engine_consumption(tables: Mapping[str, pa.Table]) -> Rows:
    """The engine's `compute_consumption`, each output table converted with ``to_pylist()``."""
    from licensecore.server.consumption import compute_consumption

    return {name: table.to_pylist() for name, table in compute_consumption(tables).items()}


CONSUMPTION_IMPLEMENTATIONS: dict[str, Callable[[Mapping[str, pa.Table]], Rows]] = {
    "reference": reference_consumption,
    "engine": engine_consumption,
}


def assert_same_outputs(want: Rows, got: Rows) -> None:
    """Assert two outputs are equal table by table, naming the first differing row."""
    assert sorted(got) == sorted(want), f"output tables {sorted(got)} != {sorted(want)}"
    for name in want:
        for index, (w, g) in enumerate(zip(want[name], got[name])):
            assert g == w, f"{name} row {index}: got {g}, want {w}"
        assert len(got[name]) == len(want[name]), (
            f"{name}: got {len(got[name])} rows, want {len(want[name])}"
        )


__all__ = [
    "CONSUMPTION_IMPLEMENTATIONS",
    "assert_same_outputs",
    "engine_consumption",
    "reference_consumption",
]
