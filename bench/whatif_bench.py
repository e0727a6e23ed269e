"""What-if benchmark: one computation against the base plus N scenarios.

    python -m licensecore.bench.whatif_bench --size L --scenarios 32 [--task consumption|bundles]

``consumption``: each scenario replaces a few random licenses of one tenant (multiple_use,
entitlements, priority, allocations_consume, unit_cost), like a license manager trying fixes one
at a time; one computation is ``compute_consumption``. ``bundles``: each scenario replaces a few
bundles (capacity) and pools (capacity, unit_price) of one tenant; one computation is
``resolve_bundles``. Both timings are in-process, kernels compiled beforehand, best of
``--repeat`` runs; the target is a ratio of at most 4 for 32 scenarios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from licensecore.bench.datagen import SIZES, generate
from licensecore.bench.datagen_bundles import generate_bundles
from licensecore.server import bundles, consumption
from licensecore.server.whatif import Scenario, what_if


def _rows(rng: np.random.Generator, table: pa.Table, key: str, per_scenario: int, changes) -> pa.Table:
    """Replacement rows for ``per_scenario`` random rows of one tenant of ``table``; each changed
    column is null (keep the base value) half of the time."""
    tenant = np.asarray(table["tenant_id"].to_pylist())
    rows = np.flatnonzero(tenant == rng.choice(np.unique(tenant)))
    pick = rng.choice(rows, size=min(per_scenario, rows.size), replace=False)
    repl = table.select(["tenant_id", key]).take(pa.array(pick))
    for column, typ, values in changes(pick.size):
        keep = rng.random(pick.size) < 0.5
        repl = repl.append_column(column, pa.array(values, typ, mask=keep))
    return repl


def scenarios_for(tables: dict[str, pa.Table], n: int, seed: int = 0, per_scenario: int = 3) -> list[Scenario]:
    """``n`` scenarios of ``per_scenario`` replacement rows each, over licenses of one tenant."""
    rng = np.random.default_rng(seed)

    def changes(k: int) -> tuple:
        return (
            ("multiple_use", pa.int32(), rng.integers(0, 6, k)),
            ("entitlements", pa.int64(), rng.integers(0, 500, k)),
            ("priority", pa.int32(), rng.integers(-2, 3, k)),
            ("allocations_consume", pa.bool_(), rng.random(k) < 0.5),
            ("unit_cost", pa.float64(), rng.integers(0, 400, k) / 4),
        )

    return [Scenario(f"s{i:03d}", _rows(rng, tables["licenses"], "license_id", per_scenario, changes))
            for i in range(n)]


def bundle_scenarios_for(tables: dict[str, pa.Table], n: int, seed: int = 0, per_scenario: int = 3) -> list[Scenario]:
    """``n`` scenarios, each changing ``per_scenario`` bundles (capacity) and pools (capacity,
    unit_price) of one tenant."""
    rng = np.random.default_rng(seed)

    def bundle_changes(k: int) -> tuple:
        return (("capacity", pa.int64(), rng.integers(0, 2_000, k)),)

    def pool_changes(k: int) -> tuple:
        return (("capacity", pa.int64(), rng.integers(0, 5_000, k)),
                ("unit_price", pa.float64(), rng.integers(0, 400, k) / 8))

    return [Scenario(f"s{i:03d}", bundles=_rows(rng, tables["bundles"], "bundle_id", per_scenario, bundle_changes),
                     pools=_rows(rng, tables["pools"], "pool_id", per_scenario, pool_changes))
            for i in range(n)]


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="L")
    parser.add_argument("--task", choices=("consumption", "bundles"), default="consumption")
    parser.add_argument("--scenarios", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    consumption.warm_up()
    bundles.warm_up()
    if args.task == "bundles":
        tables = generate_bundles(args.size, args.seed)
        scenarios = bundle_scenarios_for(tables, args.scenarios, args.seed)
        compute = bundles.resolve_bundles
    else:
        tables = generate(args.size, args.seed)
        scenarios = scenarios_for(tables, args.scenarios, args.seed)
        compute = consumption.compute_consumption
    what_if(tables, scenarios[:1])  # compiles nothing new; warms caches
    one = _best(lambda: compute(tables), args.repeat)
    many = _best(lambda: what_if(tables, scenarios), args.repeat)
    print(f"{args.task}, size {args.size}: one computation {one:.3f} s; base + {args.scenarios} "
          f"scenarios {many:.3f} s; ratio {many / one:.2f}x (target <= 4x)")


if __name__ == "__main__":
    main()
