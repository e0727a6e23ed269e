"""``licensecore serve`` options for the data directory and the server limits."""

from __future__ import annotations

import argparse
from pathlib import Path

import platformdirs

from licensecore.server.limits import Limits, parse_bytes


def default_data_dir() -> Path:
    """Where ``serve`` keeps uploaded datasets unless told otherwise."""
    return Path(platformdirs.user_data_dir("licensecore")) / "datasets"


def _byte_count(text: str) -> int:
    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_serve_limit_arguments(serve: argparse.ArgumentParser) -> None:
    """--data-dir, --max-rows, --max-request-bytes, --max-concurrent, --memory-budget."""
    defaults = Limits()
    serve.add_argument("--data-dir", type=Path, default=default_data_dir(), metavar="DIR",
                       help="where uploaded datasets are kept across restarts (%(default)s)")
    serve.add_argument("--max-rows", type=int, default=defaults.max_rows, metavar="N",
                       help="rows of one table (%(default)s)")
    serve.add_argument("--max-request-bytes", type=_byte_count, default=defaults.max_request_bytes,
                       metavar="BYTES", help="all messages of one request stream, e.g. 4GiB (%(default)s)")
    serve.add_argument("--max-concurrent", type=int, default=defaults.max_concurrent, metavar="N",
                       help="computations running at once; more wait up to "
                            f"{defaults.slot_wait_seconds:g} s, then are refused (%(default)s)")
    serve.add_argument("--memory-budget", type=_byte_count, default=defaults.memory_budget_bytes,
                       metavar="BYTES", help="uploaded datasets kept in memory, least recently used "
                                             "evicted first, e.g. 2GiB (%(default)s)")


def serve_limits(args: argparse.Namespace) -> dict[str, object]:
    """The ``data_dir`` and ``limits`` keyword arguments of ``serve``."""
    limits = Limits(max_rows=args.max_rows, max_request_bytes=args.max_request_bytes,
                    max_concurrent=args.max_concurrent, memory_budget_bytes=args.memory_budget)
    return {"data_dir": args.data_dir, "limits": limits}
