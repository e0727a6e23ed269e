"""``licensecore batch``: consumption for many tenants on Dask distributed (see ``batch``)."""

from __future__ import annotations

import argparse
import sys


def add_batch_command(subparsers) -> argparse.ArgumentParser:
    """Add ``batch`` to the ``licensecore`` sub-commands; returns its parser."""
    batch = subparsers.add_parser(
        "batch", help="consumption (SPEC section 1) for many tenants on Dask distributed")
    batch.add_argument("--input", required=True, metavar="DIR",
                       help="one folder per tenant: <tenant>/ or hive tenant_id=<tenant>/, "
                            "each with <table>.parquet|csv|arrow")
    batch.add_argument("--output", required=True, metavar="DIR",
                       help="where OUTPUT/<tenant>/<table>.parquet and _SUCCESS go")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="use this running Dask cluster (tcp://HOST:PORT) instead of a local one")
    batch.add_argument("--workers", type=_positive, metavar="N",
                       help="worker processes of the local cluster (2)")
    batch.add_argument("--resume", action="store_true",
                       help="skip the tenants whose output folder has _SUCCESS")
    batch.set_defaults(run=_batch)
    return batch


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return value


def _batch(args: argparse.Namespace) -> int:
    """0 when every tenant is done (or skipped), 1 when any failed; bad input raises InputError."""
    from licensecore.clients.batch import run_batch

    report = run_batch(args.input, args.output, scheduler=args.scheduler, workers=args.workers,
                       resume=args.resume, progress=True)
    print(report.summary())
    if report.failed:
        print(f"licensecore: {len(report.failed)} tenant(s) failed: "
              f"{', '.join(sorted(report.failed))}", file=sys.stderr)
        return 1
    return 0
