"""The restricted workload shapes the peers compute, and the equality check.

Consumption (SPEC section 1), restricted shape made by ``restricted_workload``:

- no core licenses: licenses with ``metric = core`` are dropped, with their links and allocations;
- no virtual machines: ``devices.host_id`` is dropped (all null) and every ``vm_rights`` is ``none``;
- one license per application: of an application's remaining candidates only the first (priority
  ascending, then license_id ascending) keeps its ``license_applications`` row, so Rule 1 has no
  choice and no spill-over (every pair goes to its application's only license);
- everything else stays as generated: device and user licenses with ``multiple_use`` (0, 1, 5),
  finite and unlimited entitlements, inactive and retired users (their devices consume alone),
  devices without a user, allocations of every type with overrides and exemptions,
  ``allocations_consume``, licenses left without any linked application.

The peers produce ``consumption`` (tenant_id, license_id, consumer_type, consumer_id, consumption)
and ``license_summary`` (tenant_id, license_id, consumed, shortfall, consumers, evidence); these are
compared with licensecore's columns of the same names. Not compared: ``devices``, ``reason``,
``allocation``, ``over_utilized``, ``unlicensed``, ``chargeback``.

Bundles (SPEC section 3), restricted shape made by ``restricted_bundle_workload``:

- only ``assign`` and ``exclude`` rules on ``person``, ``group`` and ``role`` actors (business roles,
  collections and eligibility rules are dropped, and with them ``locations`` and ``collections``);
- pools are unlimited (``capacity`` null), so no grant is ``over_pool_capacity``; bundle
  capacities stay as generated;
- ``skus`` and ``sku_conflicts`` are dropped (they do not change assignees or fulfillment).

The peer produces ``bundle_assignees`` (tenant_id, bundle_id, person_id, account_id, status) and
``fulfillment`` (tenant_id, license_group_id, op, account_id, bundle_id), compared with
licensecore's; the removal guard's ``status`` of fulfillment rows is not compared.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

CONSUMPTION_OUTPUT_COLUMNS = {
    "consumption": ("tenant_id", "license_id", "consumer_type", "consumer_id", "consumption"),
    "license_summary": ("tenant_id", "license_id", "consumed", "shortfall", "consumers", "evidence"),
}
BUNDLE_OUTPUT_COLUMNS = {
    "bundle_assignees": ("tenant_id", "bundle_id", "person_id", "account_id", "status"),
    "fulfillment": ("tenant_id", "license_group_id", "op", "account_id", "bundle_id"),
}


def restricted_workload(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """A ``bench.datagen.generate`` dataset in the restricted consumption shape (module doc)."""
    licenses = tables["licenses"].filter(pc.field("metric") != "core")
    licenses = licenses.set_column(licenses.schema.get_field_index("vm_rights"), "vm_rights",
                                   pa.array(["none"] * licenses.num_rows, pa.string()))
    keep = licenses.select(["tenant_id", "license_id"])
    links = (tables["license_applications"].select(["tenant_id", "license_id", "application_id"])
             .group_by(["tenant_id", "license_id", "application_id"]).aggregate([]))
    links = links.join(licenses.select(["tenant_id", "license_id", "priority"]),
                       ["tenant_id", "license_id"], join_type="inner")
    links = links.sort_by([("tenant_id", "ascending"), ("application_id", "ascending"),
                           ("priority", "ascending"), ("license_id", "ascending")])
    tenant, app = links["tenant_id"].combine_chunks(), links["application_id"].combine_chunks()
    first = pc.or_(pc.not_equal(tenant[1:], tenant[:-1]), pc.not_equal(app[1:], app[:-1]))
    first = pa.concat_arrays([pa.array([True]), first]) if len(links) else pa.array([], pa.bool_())
    links = links.filter(first).select(["tenant_id", "license_id", "application_id"])
    allocations = tables["allocations"].join(keep, ["tenant_id", "license_id"], join_type="left semi")
    devices = tables["devices"]
    if "host_id" in devices.column_names:
        devices = devices.drop_columns(["host_id"])
    return {"users": tables["users"], "devices": devices, "installations": tables["installations"],
            "licenses": licenses, "license_applications": links, "allocations": allocations}


def restricted_bundle_workload(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """A ``bench.datagen_bundles.generate_bundles`` dataset in the restricted shape (module doc)."""
    rules = tables["bundle_rules"].filter(
        pc.field("rule").isin(["assign", "exclude"])
        & pc.field("actor_type").isin(["person", "group", "role"]))
    rules = rules.drop_columns([c for c in ("location_id",) if c in rules.column_names])
    pools = tables["pools"]
    pools = pools.set_column(pools.schema.get_field_index("capacity"), "capacity",
                             pa.nulls(pools.num_rows, pa.int64()))
    people = tables["people"].select(["tenant_id", "person_id", "account_id", "enabled"])
    return {"people": people, "group_members": tables["group_members"],
            "role_members": tables["role_members"], "pools": pools, "bundles": tables["bundles"],
            "bundle_rules": rules, "license_group_members": tables["license_group_members"]}


def _canonical(table: pa.Table, columns: tuple[str, ...], schema: pa.Schema) -> pa.Table:
    table = table.select(list(columns)).cast(schema)
    return table.sort_by([(c, "ascending") for c in columns]).combine_chunks()


def assert_same(engine: str, want: Mapping[str, pa.Table], got: Mapping[str, pa.Table],
                columns: Mapping[str, tuple[str, ...]]) -> None:
    """Raise ``AssertionError`` unless ``got`` equals ``want`` on ``columns`` (rows sorted)."""
    for name, cols in columns.items():
        schema = want[name].select(list(cols)).schema
        w, g = _canonical(want[name], cols, schema), _canonical(got[name], cols, schema)
        if not w.equals(g):
            detail = f"{g.num_rows} rows, want {w.num_rows}"
            if w.num_rows == g.num_rows:
                for i in range(w.num_rows):
                    if w.slice(i, 1).to_pylist() != g.slice(i, 1).to_pylist():
                        detail = (f"first difference at sorted row {i}: got "
                                  f"{g.slice(i, 1).to_pylist()[0]}, want {w.slice(i, 1).to_pylist()[0]}")
                        break
            raise AssertionError(f"{engine} disagrees with licensecore on {name}: {detail}")
