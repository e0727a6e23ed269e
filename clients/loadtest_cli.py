"""The ``licensecore loadtest`` command: the load test of ``licensecore.clients.loadtest``.

Wired into ``clients/cli.py`` with ``add_loadtest_command(sub)`` next to the other subcommands.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from licensecore.clients.auth_cli import add_tls_ca_argument


def add_loadtest_command(subparsers) -> argparse.ArgumentParser:
    """Add ``loadtest [--server HOST:PORT] [--clients N] [--calls N] [--size S|M|L|XL] [--seed N]``."""
    from licensecore.bench.datagen import SIZES

    parser = subparsers.add_parser(
        "loadtest", help="concurrent clients mixing uploads, computations and bad requests; "
                         "checks every answer and prints p50/p99 latencies")
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="the server to load (default: an in-process server on loopback)")
    add_tls_ca_argument(parser)
    parser.add_argument("--clients", type=_positive, default=32, metavar="N",
                        help="concurrent clients, one channel each (32)")
    parser.add_argument("--calls", type=_positive, default=640, metavar="N",
                        help="calls in all, shared evenly by the clients (640)")
    parser.add_argument("--size", choices=list(SIZES), default="S",
                        help="generated dataset each good call sends or computes (S)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=_loadtest)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _loadtest(args: argparse.Namespace) -> int:
    from licensecore.clients.credentials import from_environment
    from licensecore.clients.loadtest import embedded_server, run_load, workload

    started = time.perf_counter()
    load = workload(args.size, args.seed)
    rows = sum(t.num_rows for t in load.tables.values())
    print(f"dataset size {args.size} (seed {args.seed}): {rows:,} input rows; in-process result "
          f"in {time.perf_counter() - started:.2f} s")
    if args.server:
        server, options = contextlib.nullcontext(args.server), from_environment(args.tls_ca)
    else:
        server, options = embedded_server(), {}
    with server as target:
        print(f"loading {target} with {args.clients} clients, {args.calls} calls", flush=True)
        report = run_load(target, load, clients=args.clients, calls=args.calls, client_options=options)
    print(report.summary())
    return 0 if report.ok else 1
