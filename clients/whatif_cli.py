"""``licensecore whatif`` (SPEC sections 4 and 7): what-if scenarios for consumption and bundles."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from licensecore.clients.auth_cli import add_tls_ca_argument
from licensecore.clients.credentials import from_environment
from licensecore.clients.report import format_table
from licensecore.clients.tableio import read_tables, write_tables
from licensecore.server.schema import BUNDLE_INPUTS, CONSUMPTION_INPUTS

TOP = 5  # licenses or pools shown per scenario


def add_whatif_command(subparsers) -> None:
    """Add the ``whatif`` subcommand to the ``licensecore`` parser's subparsers."""
    whatif = subparsers.add_parser("whatif", help="what-if scenarios for consumption and bundles (SPEC section 4)")
    whatif.add_argument("--input", required=True, metavar="DIR", help="<table>.parquet|csv|arrow files")
    whatif.add_argument("--scenarios", required=True, metavar="FILE", help="scenarios JSON (SPEC 4)")
    whatif.add_argument("--output", required=True, metavar="DIR",
                        help="where scenario_summary, pool_scenario_summary and bundle_scenario_summary go")
    whatif.add_argument("--server", metavar="HOST:PORT", help="compute on this server, not in-process")
    add_tls_ca_argument(whatif)
    whatif.set_defaults(run=_whatif)


def _whatif(args: argparse.Namespace) -> int:
    from licensecore.server.whatif import load_scenarios

    tables = read_tables(args.input, (*CONSUMPTION_INPUTS, *BUNDLE_INPUTS))
    scenarios = load_scenarios(args.scenarios)
    outputs = _compute(tables, scenarios, args.server, args.tls_ca)
    write_tables(outputs, args.output)
    print(whatif_summary(outputs))
    return 0


def _compute(
    tables: Mapping[str, pa.Table], scenarios: Sequence, server: str | None, tls_ca: str | None = None
) -> dict[str, pa.Table]:
    if server:
        from licensecore.clients.client import LicenseCoreClient

        with LicenseCoreClient(server, **from_environment(tls_ca)) as client:
            return client.what_if(tables, scenarios)
    from licensecore.server.whatif import what_if

    return what_if(tables, scenarios)


def whatif_summary(outputs: Mapping[str, pa.Table]) -> str:
    """Per scenario the totals and deltas of licenses and of pools (for the tables with rows),
    then per scenario the licenses and pools that change most."""
    parts = []
    licenses = outputs["scenario_summary"]
    if licenses.num_rows:
        parts.append(_section(
            licenses, ["consumed", "shortfall", "shortfall_cost", "delta_consumed", "delta_cost"],
            ("scenario", "consumed", "shortfall", "shortfall cost", "Δ consumed", "Δ cost"),
            ("delta_cost", "delta_consumed"), "license", "license_id",
            ("tenant", "license", "consumed", "shortfall cost", "Δ consumed", "Δ cost"),
            ("consumed", "shortfall_cost", "delta_consumed", "delta_cost")))
    pools = outputs["pool_scenario_summary"]
    if pools.num_rows:
        parts.append(_section(
            pools, ["granted", "over_capacity", "annual_cost", "delta_granted", "delta_annual_cost"],
            ("scenario", "granted", "over capacity", "annual cost", "Δ granted", "Δ annual cost"),
            ("delta_annual_cost", "delta_granted"), "pool", "pool_id",
            ("tenant", "pool", "capacity", "granted", "Δ granted", "Δ annual cost"),
            ("capacity", "granted", "delta_granted", "delta_annual_cost")))
    return "\n\n".join(parts) if parts else "no licenses and no pools: nothing to compare"


def _section(summary: pa.Table, sums: list[str], header: tuple, deltas: tuple[str, str], noun: str,
             key: str, detail_header: tuple, detail: tuple) -> str:
    """Totals per scenario, then per scenario the rows with a non-zero delta, largest first."""
    totals = summary.group_by("scenario").aggregate([(c, "sum") for c in sums]).sort_by("scenario")
    rows = [(r["scenario"], *(r[f"{c}_sum"] for c in sums)) for r in totals.to_pylist()]
    lines = [format_table(header, rows)]
    changed = summary.filter(pc.or_(pc.not_equal(summary[deltas[0]], 0), pc.not_equal(summary[deltas[1]], 0)))
    for name in totals.column("scenario").to_pylist():
        mine = changed.filter(pc.equal(changed["scenario"], name)).to_pylist()
        if not mine:
            continue
        mine.sort(key=lambda r: (-abs(r[deltas[0]]), -abs(r[deltas[1]])))
        lines += ["", f"{name}: {len(mine):,} {noun}(s) change"
                  + (f", the {TOP} largest:" if len(mine) > TOP else ":")]
        lines.append(format_table(detail_header, [
            (r["tenant_id"], str(r[key]), *("unlimited" if r[c] is None else r[c] for c in detail))
            for r in mine[:TOP]]))
    return "\n".join(lines)
