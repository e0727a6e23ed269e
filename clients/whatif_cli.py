"""``licensecore whatif`` (SPEC sections 4 and 7): what-if scenarios for consumption."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from licensecore.clients.auth_cli import add_tls_ca_argument
from licensecore.clients.credentials import from_environment
from licensecore.clients.report import format_table
from licensecore.clients.tableio import read_tables, write_tables
from licensecore.server.schema import CONSUMPTION_INPUTS

TOP = 5  # licenses shown per scenario


def add_whatif_command(subparsers) -> None:
    """Add the ``whatif`` subcommand to the ``licensecore`` parser's subparsers."""
    whatif = subparsers.add_parser("whatif", help="what-if scenarios for consumption (SPEC section 4)")
    whatif.add_argument("--input", required=True, metavar="DIR", help="<table>.parquet|csv|arrow files")
    whatif.add_argument("--scenarios", required=True, metavar="FILE", help="scenarios JSON (SPEC 4)")
    whatif.add_argument("--output", required=True, metavar="DIR", help="where scenario_summary.parquet goes")
    whatif.add_argument("--server", metavar="HOST:PORT", help="compute on this server, not in-process")
    add_tls_ca_argument(whatif)
    whatif.set_defaults(run=_whatif)


def _whatif(args: argparse.Namespace) -> int:
    from licensecore.server.whatif import load_scenarios

    tables = read_tables(args.input, CONSUMPTION_INPUTS)
    scenarios = load_scenarios(args.scenarios)
    summary = _compute(tables, scenarios, args.server, args.tls_ca)
    write_tables({"scenario_summary": summary}, args.output)
    print(whatif_summary(summary))
    return 0


def _compute(
    tables: Mapping[str, pa.Table], scenarios: Sequence, server: str | None, tls_ca: str | None = None
) -> pa.Table:
    if server:
        from licensecore.clients.client import LicenseCoreClient

        with LicenseCoreClient(server, **from_environment(tls_ca)) as client:
            return client.what_if(tables, scenarios)
    from licensecore.server.whatif import what_if

    return what_if(tables, scenarios)


def whatif_summary(summary: pa.Table) -> str:
    """One row per scenario (totals and deltas), then per scenario the licenses that change most."""
    totals = summary.group_by("scenario").aggregate([
        ("consumed", "sum"), ("shortfall", "sum"), ("shortfall_cost", "sum"),
        ("delta_consumed", "sum"), ("delta_cost", "sum"),
    ]).sort_by("scenario")
    header = ("scenario", "consumed", "shortfall", "shortfall cost", "Δ consumed", "Δ cost")
    rows = [(r["scenario"], r["consumed_sum"], r["shortfall_sum"], r["shortfall_cost_sum"],
             r["delta_consumed_sum"], r["delta_cost_sum"]) for r in totals.to_pylist()]
    lines = [format_table(header, rows)]
    changed = summary.filter(pc.or_(pc.not_equal(summary["delta_consumed"], 0.0),
                                    pc.not_equal(summary["delta_cost"], 0.0)))
    for name in totals.column("scenario").to_pylist():
        mine = changed.filter(pc.equal(changed["scenario"], name)).to_pylist()
        if not mine:
            continue
        mine.sort(key=lambda r: (-abs(r["delta_cost"]), -abs(r["delta_consumed"])))
        lines += ["", f"{name}: {len(mine):,} license(s) change"
                  + (f", the {TOP} largest:" if len(mine) > TOP else ":")]
        lines.append(format_table(
            ("tenant", "license", "consumed", "shortfall cost", "Δ consumed", "Δ cost"),
            [(r["tenant_id"], str(r["license_id"]), r["consumed"], r["shortfall_cost"],
              r["delta_consumed"], r["delta_cost"]) for r in mine[:TOP]]))
    return "\n".join(lines)
