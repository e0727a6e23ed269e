"""The ``licensecore bench`` command: the benchmark runner of ``licensecore.bench.run``.

Wired into ``clients/cli.py`` with ``add_bench_command(sub)`` next to the other subcommands.
"""

from __future__ import annotations

import argparse


def add_bench_command(subparsers) -> argparse.ArgumentParser:
    """Add ``bench --size S|M|L|XL [--task ...] [--repeat N] [--json PATH] [--plot PATH]``."""
    from licensecore.bench.run import add_arguments

    parser = subparsers.add_parser(
        "bench", help="time licensecore against DuckDB, Polars and the reference (bench/README.md)")
    add_arguments(parser)
    parser.set_defaults(run=_bench)
    return parser


def _bench(args: argparse.Namespace) -> int:
    from licensecore.bench.run import run

    run(args.size, args.task, args.repeat, args.seed, args.json, args.plot, args.from_json)
    return 0
