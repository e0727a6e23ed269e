"""What-if benchmark: one consumption computation against the base plus N scenarios.

    python -m licensecore.bench.whatif_bench --size L --scenarios 32

Each scenario replaces a few random licenses of one tenant (multiple_use, entitlements, priority,
allocations_consume, unit_cost), like a license manager trying fixes one at a time. Both timings
are in-process, kernels compiled beforehand, best of ``--repeat`` runs; the target is a ratio of at
most 4 for 32 scenarios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from licensecore.bench.datagen import SIZES, generate
from licensecore.server.consumption import compute_consumption, warm_up
from licensecore.server.whatif import Scenario, what_if


def scenarios_for(tables: dict[str, pa.Table], n: int, seed: int = 0, per_scenario: int = 3) -> list[Scenario]:
    """``n`` scenarios of ``per_scenario`` replacement rows each, over licenses of one tenant."""
    rng = np.random.default_rng(seed)
    lics = tables["licenses"]
    tenant = np.asarray(lics["tenant_id"].to_pylist())
    tenants = np.unique(tenant)
    out = []
    for i in range(n):
        rows = np.flatnonzero(tenant == tenants[rng.integers(tenants.size)])
        pick = rng.choice(rows, size=min(per_scenario, rows.size), replace=False)
        k = pick.size
        repl = lics.select(["tenant_id", "license_id"]).take(pa.array(pick))
        for column, typ, values in (
            ("multiple_use", pa.int32(), rng.integers(0, 6, k)),
            ("entitlements", pa.int64(), rng.integers(0, 500, k)),
            ("priority", pa.int32(), rng.integers(-2, 3, k)),
            ("allocations_consume", pa.bool_(), rng.random(k) < 0.5),
            ("unit_cost", pa.float64(), rng.integers(0, 400, k) / 4),
        ):
            keep = rng.random(k) < 0.5  # null: keep the base value
            repl = repl.append_column(column, pa.array(values, typ, mask=keep))
        out.append(Scenario(f"s{i:03d}", repl))
    return out


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
    parser.add_argument("--scenarios", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    warm_up()
    tables = generate(args.size, args.seed)
    scenarios = scenarios_for(tables, args.scenarios, args.seed)
    what_if(tables, scenarios[:1])  # compiles nothing new; warms caches
    one = _best(lambda: compute_consumption(tables), args.repeat)
    many = _best(lambda: what_if(tables, scenarios), args.repeat)
    print(f"size {args.size}: one computation {one:.3f} s; base + {args.scenarios} scenarios "
          f"{many:.3f} s; ratio {many / one:.2f}x (target <= 4x)")


if __name__ == "__main__":
    main()
