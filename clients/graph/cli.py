"""``licensecore graph pull`` and ``licensecore graph apply`` (SPEC section 7).

The handlers take the argparse namespace and return the exit status; a bad plan or URL raises
``InputError`` (exit 2 from the main command line), a refused permission
``GraphPermissionError`` and any other Graph failure the SDK's ``APIError`` (exit 1). The SDK is
imported by the handlers only, so the other commands start without it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from licensecore.clients.graph.journal import Change, Journal
from licensecore.clients.graph.plan import Plan, read_plan
from licensecore.clients.report import format_table

SHOWN_FAILURES = 20


def add_graph_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``graph`` command (``pull``, ``apply``) to the main parser's subparsers."""
    graph = subparsers.add_parser("graph", help="Microsoft Graph sync: pull a tenant, apply a plan")
    actions = graph.add_subparsers(required=True, metavar="ACTION")
    url_help = "Graph base URL (LICENSECORE_GRAPH_URL, else https://graph.microsoft.com/v1.0)"

    pull_cmd = actions.add_parser("pull", help="write the tenant's input tables as parquet")
    pull_cmd.add_argument("--tenant", required=True, metavar="ID", help="tenant_id of every row")
    pull_cmd.add_argument("--output", required=True, metavar="DIR", help="where <table>.parquet go")
    pull_cmd.add_argument("--graph-url", metavar="URL", help=url_help)
    pull_cmd.add_argument("--full", action="store_true", help="ignore the stored delta links")
    pull_cmd.set_defaults(run=run_pull)

    apply_cmd = actions.add_parser("apply", help="perform a fulfillment table in Entra groups")
    apply_cmd.add_argument("--plan", required=True, metavar="FILE", help="fulfillment.parquet")
    apply_cmd.add_argument("--dry-run", action="store_true", help="print the plan, send nothing")
    apply_cmd.add_argument("--include-needs-approval", action="store_true",
                           help="also perform the changes whose status is needs_approval")
    apply_cmd.add_argument("--journal", metavar="PATH",
                           help="SQLite journal of applied changes (FILE.journal.sqlite)")
    apply_cmd.add_argument("--graph-url", metavar="URL", help=url_help)
    apply_cmd.set_defaults(run=run_apply)


def run_pull(args: argparse.Namespace) -> int:
    """``graph pull``: write the tables, print what was written."""
    from licensecore.clients.graph.auth import credential_from_env, graph_client, resolve_graph_url
    from licensecore.clients.graph.pull import pull

    base_url = resolve_graph_url(args.graph_url)
    credential = credential_from_env()

    async def go():
        async with graph_client(credential, base_url) as client:
            return await pull(client, args.tenant, args.output, base_url, full=args.full)

    try:
        result = asyncio.run(go())
    finally:
        credential.close()
    for note in result.notes:
        print(f"licensecore: note: {note}", file=sys.stderr)
    kind = "incremental" if result.incremental else "full"
    print(f"{kind} pull of tenant {args.tenant} from {base_url} into {args.output}"
          + (f": {result.changed_users:,} users changed, {result.removed_users:,} removed"
             if result.incremental else ""))
    print(format_table(("table", "rows"), [(n, t.num_rows) for n, t in result.tables.items()]))
    return 0


def run_apply(args: argparse.Namespace) -> int:
    """``graph apply``: perform the plan; exit status 1 when a change failed."""
    from licensecore.clients.graph.apply import apply_changes
    from licensecore.clients.graph.auth import credential_from_env, graph_client, resolve_graph_url

    plan = read_plan(args.plan)
    journal_path = Path(args.journal or f"{args.plan}.journal.sqlite")
    selected = plan.select(args.include_needs_approval)
    held = len(plan.changes) - len(selected)
    if args.dry_run:
        _print_dry_run(plan, selected, held, journal_path)
        return 0
    base_url = resolve_graph_url(args.graph_url)
    credential = credential_from_env()

    async def go(journal: Journal):
        async with graph_client(credential, base_url) as client:
            return await apply_changes(client, base_url, selected, journal)

    try:
        with Journal(journal_path, plan.plan_id) as journal:
            summary = asyncio.run(go(journal))
    finally:
        credential.close()
    for change, detail in list(summary.failed.items())[:SHOWN_FAILURES]:
        print(f"licensecore: failed: {change.op} {change.account_id} "
              f"{'to' if change.op == 'add' else 'from'} {change.license_group_id}: {detail}",
              file=sys.stderr)
    print(f"applied {summary.applied:,}, already in place {summary.unchanged:,}, "
          f"skipped {held + summary.earlier:,} (needs approval {held:,}, "
          f"done in an earlier run {summary.earlier:,}), "
          f"failed {len(summary.failed):,}; {summary.requests:,} $batch requests, "
          f"{summary.retried:,} sub-requests retried; journal {journal_path}")
    return 1 if summary.failed else 0


def _print_dry_run(plan: Plan, selected: list[Change], held: int, journal_path: Path) -> None:
    """Every change that would be sent (those not done in the journal), and the totals."""
    from licensecore.clients.graph.apply import batch_count

    done = Journal.done_in(journal_path, plan.plan_id)
    todo = [c for c in selected if c not in done]
    bundle = dict(zip(plan.changes, plan.bundles))
    print("dry run: nothing is sent")
    print(format_table(("op", "license_group_id", "account_id", "bundle_id"),
                       [(c.op, c.license_group_id, c.account_id, bundle[c] or "") for c in todo]))
    earlier = len(selected) - len(todo)
    print(f"would apply {len(todo):,} changes in {batch_count(todo):,} $batch requests; "
          f"skipped {held + earlier:,} (needs approval {held:,}, done in an earlier run {earlier:,})")
