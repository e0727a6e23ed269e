"""The ``licensecore`` command line (SPEC section 7).

Exit status: 0 success; 2 bad input (table, column, row and value named; nothing written);
1 any other failure. Messages go to stderr without a traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import resource
import sys
import time
import traceback
from collections.abc import Mapping, Sequence

import pyarrow as pa

from licensecore.clients.auth_cli import (
    add_serve_security_arguments,
    add_tls_ca_argument,
    add_token_command,
    serve_security,
)
from licensecore.clients.batch_cli import add_batch_command
from licensecore.clients.bench_cli import add_bench_command
from licensecore.clients.credentials import from_environment
from licensecore.clients.errors import InputRejected, LicenseCoreServerError
from licensecore.clients.graph.cli import add_graph_commands
from licensecore.clients.limits_cli import add_serve_limit_arguments, serve_limits
from licensecore.clients.loadtest_cli import add_loadtest_command
from licensecore.clients.report import (
    bundles_summary,
    consumption_summary,
    format_table,
    reconciliation_summary,
)
from licensecore.clients.tableio import read_tables, write_tables
from licensecore.clients.whatif_cli import add_whatif_command
from licensecore.server.errors import InputError
from licensecore.server.memory import keep_freed_memory
from licensecore.server.schema import BUNDLE_INPUTS, CONSUMPTION_INPUTS, RECONCILIATION_INPUTS

SIZES = ("S", "M", "L", "XL")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = _parser().parse_args(argv)
    keep_freed_memory()
    try:
        return args.run(args)
    except InputError as exc:
        return _fail(args, f"bad input: {exc}", 2)
    except InputRejected as exc:
        return _fail(args, f"bad input: {exc.message}", 2)
    except LicenseCoreServerError as exc:
        return _fail(args, f"server refused the call: {exc.code.name}: {exc.message}", 1)
    except KeyboardInterrupt:
        return _fail(args, "interrupted", 1)
    except Exception as exc:  # noqa: BLE001 - the contract: a message, no traceback
        return _fail(args, f"error: {type(exc).__name__}: {exc}", 1)


def _fail(args: argparse.Namespace, message: str, status: int) -> int:
    if args.debug:
        traceback.print_exc()
    print(f"licensecore: {message}", file=sys.stderr)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="licensecore", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=50051)
    add_serve_security_arguments(serve)
    add_serve_limit_arguments(serve)
    serve.set_defaults(run=_serve)

    consume = sub.add_parser("consume", help="license consumption (SPEC section 1)")
    _io_arguments(consume)
    consume.set_defaults(run=_consume)

    bundles = sub.add_parser("bundles", help="bundle resolution and fulfillment plan (SPEC section 3)")
    _io_arguments(bundles)
    bundles.add_argument("--max-remove-fraction", type=float, metavar="F",
                         help="removes beyond this fraction of a group need approval (0.5)")
    bundles.add_argument("--guard-min-members", type=int, metavar="N",
                         help="the fraction guard applies from this group size (10)")
    bundles.set_defaults(run=_bundles)

    reconcile = sub.add_parser("reconcile", help="directory reconciliation (SPEC section 2)")
    _io_arguments(reconcile)
    reconcile.add_argument("--inactive-days", type=int, metavar="N",
                           help="a seat unused for longer is reclaimable as inactive (90)")
    reconcile.add_argument("--as-of", type=_timestamp, metavar="ISO8601",
                           help="reference time for --inactive-days (now, UTC)")
    reconcile.set_defaults(run=_reconcile)

    add_batch_command(sub)
    add_whatif_command(sub)
    add_graph_commands(sub)
    add_token_command(sub)

    demo = sub.add_parser("demo", help="generate a synthetic enterprise, compute it, summarise")
    demo.add_argument("--size", choices=SIZES, default="M")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--server", metavar="HOST:PORT", help="compute on this server, not in-process")
    add_tls_ca_argument(demo)
    demo.add_argument("--output", metavar="DIR", help="also write the output tables here")
    demo.set_defaults(run=_demo)

    add_bench_command(sub)
    add_loadtest_command(sub)
    return parser


def _io_arguments(parser: argparse.ArgumentParser) -> None:
    """--input, --output and --server, shared by the commands that compute a directory."""
    parser.add_argument("--input", required=True, metavar="DIR", help="<table>.parquet|csv|arrow files")
    parser.add_argument("--output", required=True, metavar="DIR", help="where <table>.parquet go")
    parser.add_argument("--server", metavar="HOST:PORT", help="compute on this server, not in-process")
    add_tls_ca_argument(parser)


def _serve(args: argparse.Namespace) -> int:
    from licensecore.server.app import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.host, args.port, **serve_security(args), **serve_limits(args))
    return 0


def _compute(
    tables: Mapping[str, pa.Table], server: str | None, tls_ca: str | None = None
) -> dict[str, pa.Table]:
    if server:
        from licensecore.clients.client import LicenseCoreClient

        with LicenseCoreClient(server, **from_environment(tls_ca)) as client:
            return client.compute_consumption(tables)
    from licensecore.server.consumption import compute_consumption

    return compute_consumption(tables)


def _consume(args: argparse.Namespace) -> int:
    tables = read_tables(args.input, CONSUMPTION_INPUTS)
    outputs = _compute(tables, args.server, args.tls_ca)
    write_tables(outputs, args.output)
    print(consumption_summary(outputs))
    return 0


def _resolve(
    tables: Mapping[str, pa.Table], server: str | None, tls_ca: str | None = None, **options
) -> dict[str, pa.Table]:
    options = {k: v for k, v in options.items() if v is not None}
    if server:
        from licensecore.clients.client import LicenseCoreClient

        with LicenseCoreClient(server, **from_environment(tls_ca)) as client:
            return client.resolve_bundles(tables, **options)
    from licensecore.server.bundles import resolve_bundles

    return resolve_bundles(tables, **options)


def _bundles(args: argparse.Namespace) -> int:
    tables = read_tables(args.input, BUNDLE_INPUTS)
    outputs = _resolve(tables, args.server, args.tls_ca, max_remove_fraction=args.max_remove_fraction,
                       guard_min_members=args.guard_min_members)
    write_tables(outputs, args.output)
    print(bundles_summary(outputs))
    return 0


def _timestamp(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _reconcile(args: argparse.Namespace) -> int:
    tables = read_tables(args.input, {**CONSUMPTION_INPUTS, **RECONCILIATION_INPUTS})
    options = {k: v for k, v in (("inactive_days", args.inactive_days), ("as_of", args.as_of))
               if v is not None}
    if args.server:
        from licensecore.clients.client import LicenseCoreClient

        with LicenseCoreClient(args.server, **from_environment(args.tls_ca)) as client:
            outputs = client.reconcile(tables, **options)
    else:
        from licensecore.server.reconciliation import reconcile

        outputs = reconcile(tables, **options)
    write_tables(outputs, args.output)
    print(reconciliation_summary(outputs))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from licensecore.bench.datagen import generate
    from licensecore.bench.datagen_bundles import generate_bundles

    if not args.server:
        from licensecore.server import bundles, consumption

        started = time.perf_counter()
        consumption.warm_up()
        bundles.warm_up()
        print(f"kernels ready in {time.perf_counter() - started:.2f} s (compiled once, then cached)")
    where = f"on {args.server}" if args.server else "in-process"
    for task, make, run, summarise in (
        ("consumption", generate, _compute, consumption_summary),
        ("bundle resolution", generate_bundles, _resolve, bundles_summary),
    ):
        started = time.perf_counter()
        tables = make(args.size, args.seed)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        outputs = run(tables, args.server, args.tls_ca)
        computed = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = [(name, t.num_rows, t.nbytes / 2**20) for name, t in tables.items()]
        total_rows = sum(r[1] for r in rows)
        rows.append(("TOTAL", total_rows, sum(r[2] for r in rows)))
        print(f"\n== {task}: size {args.size}, seed {args.seed}, generated in {generated:.2f} s")
        print(format_table(("input table", "rows", "MiB"), rows))
        print(f"\n{task} computed {where} in {computed:.2f} s "
              f"({total_rows / computed:,.0f} input rows/s); peak RSS so far {peak_mib:,.0f} MiB")
        print(", ".join(f"{name} {t.num_rows:,}" for name, t in outputs.items()))
        print()
        print(summarise(outputs))
        if args.output:
            write_tables(outputs, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
