"""A many-tenant dataset for ``licensecore batch``: one folder per tenant, power-law sizes.

``write_tenants(out_dir, n_tenants, seed, total_installations=..., layout=...)`` writes
``n_tenants`` independent tenants whose installation counts follow a Zipf law (tenant of rank
``r`` gets a share proportional to ``1 / r``: a few big tenants, a long tail of small ones). The
ranks are shuffled, so tenant names say nothing about size. Each tenant is one call of
``bench.datagen.generate(Size(tenants=1, ...), seed_i)`` with its other row counts scaled from
its installations like the ``S``/``M``/``L`` sizes (users 1/10, devices 16/100, applications and
licenses sub-linear), and its ``tenant_id`` set to the tenant's name ``tenant-NNN``.

Layouts: ``hive`` writes ``tenant_id=<t>/<table>.parquet`` without a ``tenant_id`` column (the
folder carries it, as in a hive-partitioned dataset); ``folders`` writes ``<t>/<table>.parquet``
with the column.

Command line::

    python -m licensecore.bench.datagen_tenants --tenants 200 --out DIR \
        [--seed 0] [--installations 2000000] [--layout hive|folders]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from licensecore.bench.datagen import Size, generate, write_dir

LAYOUTS = ("hive", "folders")
MIN_INSTALLATIONS = 40


def tenant_sizes(n_tenants: int, total_installations: int, seed: int = 0) -> list[Size]:
    """One single-tenant ``Size`` per tenant; installations follow 1/rank, ranks shuffled."""
    if n_tenants < 1:
        raise ValueError("n_tenants must be at least 1")
    w = 1.0 / np.arange(1, n_tenants + 1)
    inst = np.maximum(MIN_INSTALLATIONS, np.floor(total_installations * w / w.sum())).astype(int)
    inst = np.random.default_rng(seed).permutation(inst)
    return [_size(int(n)) for n in inst]


def _size(installations: int) -> Size:
    scale = installations / 10_000  # relative to size S
    return Size(
        tenants=1,
        users=max(5, installations // 10),
        devices=max(8, installations * 16 // 100),
        installations=installations,
        applications=max(10, round(900 * scale ** 0.25)),
        licenses=max(4, round(240 * scale ** 0.29)),
    )


def tenant_tables(size: Size, seed: int, tenant: str) -> dict[str, pa.Table]:
    """The six section-1 tables of one tenant, with ``tenant_id`` = ``tenant``."""
    tables = generate(size, seed)
    out = {}
    for name, table in tables.items():
        i = table.schema.get_field_index("tenant_id")
        column = pa.array([tenant] * table.num_rows, pa.string())
        out[name] = table.set_column(i, "tenant_id", column)
    return out


def write_tenants(out_dir: str | Path, n_tenants: int = 200, seed: int = 0, *,
                  total_installations: int = 200_000, layout: str = "hive") -> dict[str, int]:
    """Write the dataset; returns the input rows written per tenant name."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rows = {}
    for i, size in enumerate(tenant_sizes(n_tenants, total_installations, seed)):
        tenant = f"tenant-{i:03d}"
        tables = tenant_tables(size, seed * 1_000_003 + i, tenant)
        if layout == "hive":
            tables = {name: t.drop_columns(["tenant_id"]) for name, t in tables.items()}
            folder = root / f"tenant_id={tenant}"
        else:
            folder = root / tenant
        write_dir(tables, folder)
        rows[tenant] = sum(t.num_rows for t in tables.values())
    return rows


def main(argv: list[str] | None = None) -> None:
    """Command line: write a many-tenant dataset."""
    parser = argparse.ArgumentParser(prog="python -m licensecore.bench.datagen_tenants",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--installations", type=int, default=200_000,
                        help="installations over all tenants (before the per-tenant floor)")
    parser.add_argument("--layout", default="hive", choices=LAYOUTS)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = write_tenants(args.out, args.tenants, args.seed,
                         total_installations=args.installations, layout=args.layout)
    sizes = sorted(rows.values(), reverse=True)
    print(f"wrote {len(rows)} tenants, {sum(sizes):,d} input rows "
          f"(largest {sizes[0]:,d}, median {sizes[len(sizes) // 2]:,d}, smallest {sizes[-1]:,d}) "
          f"to {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
