"""Short human-readable summaries printed by the command line."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def consumption_summary(outputs: dict[str, pa.Table]) -> str:
    """Per tenant and in total: licenses, consumers, consumed, shortfall, shortfall and charged cost."""
    summary = outputs["license_summary"]
    by_tenant = summary.group_by("tenant_id").aggregate([
        ("license_id", "count"), ("consumers", "sum"), ("consumed", "sum"),
        ("shortfall", "sum"), ("shortfall_cost", "sum"),
    ])
    cost = outputs["chargeback"].group_by("tenant_id").aggregate([("cost", "sum")])
    cost_of = dict(zip(cost.column("tenant_id").to_pylist(), cost.column("cost_sum").to_pylist()))
    by_tenant = by_tenant.sort_by("tenant_id")
    header = ("tenant", "licenses", "consumers", "consumed", "shortfall", "shortfall cost", "cost")
    rows = []
    for r in by_tenant.to_pylist():
        rows.append((r["tenant_id"], r["license_id_count"], r["consumers_sum"], r["consumed_sum"],
                     r["shortfall_sum"], r["shortfall_cost_sum"], cost_of.get(r["tenant_id"], 0.0)))
    total = ("TOTAL", summary.num_rows, _sum(summary, "consumers"), _sum(summary, "consumed"),
             _sum(summary, "shortfall"), _sum(summary, "shortfall_cost"),
             _sum(outputs["chargeback"], "cost"))
    return format_table(header, rows + [total])


def _sum(table: pa.Table, column: str) -> float:
    total = pc.sum(table.column(column)).as_py()
    return 0 if total is None else total


def format_table(header: tuple[str, ...], rows: list[tuple]) -> str:
    """Right-aligned columns (left for the first), numbers with thousands separators."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [list(header)] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, r in enumerate(cells):
        first = r[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(r[1:], widths[1:])]
        lines.append("  ".join([first, *rest]))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def bundles_summary(outputs: dict[str, pa.Table]) -> str:
    """Pools per tenant (granted, capacity, monthly cost), the fulfillment plan, conflicts."""
    pools = outputs["pool_summary"]
    by_tenant = pools.group_by("tenant_id").aggregate([
        ("pool_id", "count"), ("capacity", "sum"), ("capacity", "count", pc.CountOptions("only_null")),
        ("granted", "sum"), ("over_capacity", "sum"), ("monthly_cost", "sum"),
    ]).sort_by("tenant_id")
    header = ("tenant", "pools", "capacity", "granted", "over capacity", "monthly cost")
    rows = []
    for r in by_tenant.to_pylist():
        unlimited = r["capacity_count"] > 0
        rows.append((r["tenant_id"], r["pool_id_count"], "unlimited" if unlimited else r["capacity_sum"] or 0,
                     r["granted_sum"], r["over_capacity_sum"], r["monthly_cost_sum"]))
    rows.append(("TOTAL", pools.num_rows, "", _sum(pools, "granted"), _sum(pools, "over_capacity"),
                 _sum(pools, "monthly_cost")))
    plan = outputs["fulfillment"]
    counts = {(r["op"], r["status"]): r["count_all"] for r in
              plan.group_by(["op", "status"]).aggregate([([], "count_all")]).to_pylist()}
    conflicts = outputs["conflicts"]
    kinds = {r["kind"]: r["count_all"] for r in
             conflicts.group_by("kind").aggregate([([], "count_all")]).to_pylist()}
    lines = [
        format_table(header, rows),
        "",
        f"fulfillment: {counts.get(('add', 'ready'), 0):,} adds ready, "
        f"{counts.get(('remove', 'ready'), 0):,} removes ready, "
        f"{counts.get(('remove', 'needs_approval'), 0):,} removes awaiting approval",
        f"conflicts: {kinds.get('duplicate_sku', 0):,} duplicate_sku, "
        f"{kinds.get('exclusive_skus', 0):,} exclusive_skus; warnings: {outputs['warnings'].num_rows:,}",
    ]
    return "\n".join(lines)


def reconciliation_summary(outputs: dict[str, pa.Table]) -> str:
    """Per SKU: directory seats, computed, difference; then the detail reasons and reclaimable seats."""
    rec = outputs["reconciliation"]
    rows = [(r["tenant_id"], r["sku_id"], r["directory_seats"], r["computed"], r["difference"])
            for r in rec.to_pylist()]
    header = ("tenant", "sku", "directory seats", "computed", "difference")
    reasons = outputs["reconciliation_detail"].group_by("reason").aggregate([([], "count_all")])
    reclaim = outputs["reclaim"]
    by_reason = reclaim.group_by("reason").aggregate([([], "count_all"), ("monthly_cost", "sum")])
    return "\n".join([
        format_table(header, rows),
        "",
        "detail rows by reason: " + (", ".join(
            f"{r['reason']} {r['count_all']:,}" for r in reasons.sort_by("reason").to_pylist()) or "none"),
        "reclaimable seats: " + (", ".join(
            f"{r['reason']} {r['count_all']:,} ({r['monthly_cost_sum'] or 0:,.2f}/month)"
            for r in by_reason.sort_by("reason").to_pylist()) or "none"),
    ])
