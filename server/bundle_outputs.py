"""Run the bundle kernels over an encoded request and decode the eight tables of SPEC 3.3."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from licensecore.kernels import bundles as kb
from licensecore.kernels.sorting import csr_offsets

from .encode import decode
from .parallel import run_all
from .schema import (
    ACCOUNT, ACTOR_TYPES, BUNDLE, BUNDLE_OUTPUTS, BUNDLE_STATUSES, LICENSE_GROUP, POOL, PRINCIPAL, SKU,
)


def _filled(values: pa.ChunkedArray, null: int) -> np.ndarray:
    return np.asarray(values.fill_null(null).to_numpy(), np.int64)


def assemble(r, max_remove_fraction: float, guard_min_members: int) -> dict[str, pa.Table]:
    """The output tables of the encoded request ``r`` (a ``bundles._Resolution``)."""
    n_person, n_bundle, n_group = len(r.persons), len(r.bundles), len(r.groups)
    n_account = max(len(r.accounts), 1)
    assigned, excluded, res_off, res_person, eli_off, eli_person = kb.bundle_sets(
        r.rule_offsets, r.rule_kind, r.rule_actor, r.actor_offsets, r.actor_persons, n_person)
    bundle_capacity = _filled(r.bundles_t.column("capacity"), -1)
    pool_capacity = _filled(r.pools_t.column("capacity"), -1)
    pool_bundles = np.lexsort((np.arange(n_bundle), r.bundle_pool))
    status = kb.grant_seats(
        res_off, res_person, bundle_capacity, r.bundle_group, r.current_offsets, r.current_accounts,
        r.person_enabled, r.person_account, n_account, pool_bundles, pool_capacity, r.bundle_pool)
    group_bundles = np.lexsort((np.arange(n_bundle), r.bundle_group))
    group_bundle_off = csr_offsets(r.bundle_group[group_bundles], n_group)
    op_group, op_remove, op_account, op_bundle, n_current = kb.fulfillment_plan(
        group_bundle_off, group_bundles, res_off, res_person, status, r.person_account,
        r.current_offsets, r.current_accounts, n_account)

    # The removal guard, per license group, over all its removes together.
    removes = np.bincount(op_group[op_remove == 1], minlength=n_group)
    threshold = np.full(n_group, np.iinfo(np.int64).max)
    revoke = _filled(r.bundles_t.column("revoke_threshold"), -1)
    has = revoke >= 0
    np.minimum.at(threshold, r.bundle_group[has], revoke[has])
    guarded = (removes > threshold) | (
        (n_current >= guard_min_members) & (removes > max_remove_fraction * n_current))
    op_needs = (op_remove == 1) & guarded[op_group]

    res_bundle = np.repeat(np.arange(n_bundle), np.diff(res_off))
    granted = status == kb.GRANTED
    over = (status == kb.OVER_BUNDLE) | (status == kb.OVER_POOL)
    d = _Decoder(r)
    all_b = np.arange(n_bundle)
    eli_bundle = np.repeat(all_b, np.diff(eli_off))
    # The id columns of the two big tables (millions of strings), decoded side by side.
    (a_person, a_account, a_tenant, a_bundle, e_person, e_tenant, e_bundle) = run_all(
        lambda: d.ids(r.principal, r.persons, res_person, PRINCIPAL),
        lambda: d.ids(r.account, r.accounts, r.person_account[res_person], ACCOUNT),
        lambda: d.tenant(r.bundles, res_bundle),
        lambda: d.ids(r.bundle, r.bundles, res_bundle, BUNDLE),
        lambda: d.ids(r.principal, r.persons, eli_person, PRINCIPAL),
        lambda: d.tenant(r.bundles, eli_bundle),
        lambda: d.ids(r.bundle, r.bundles, eli_bundle, BUNDLE),
    )
    tables = {
        "bundle_assignees": {
            "tenant_id": a_tenant,
            "bundle_id": a_bundle,
            "person_id": a_person,
            "account_id": a_account,
            "status": pa.array(BUNDLE_STATUSES).take(pa.array(status)),
        },
        "fulfillment": {
            "tenant_id": d.tenant(r.groups, op_group),
            "license_group_id": d.ids(r.group, r.groups, op_group, LICENSE_GROUP),
            "op": pa.array(["add", "remove"]).take(pa.array(op_remove)),
            "account_id": d.ids(r.account, r.accounts, op_account, ACCOUNT),
            "bundle_id": d.ids(r.bundle, r.bundles, op_bundle, BUNDLE),
            "status": pa.array(["ready", "needs_approval"]).take(pa.array(op_needs.astype(np.int64))),
        },
    }
    count = lambda mask, groups, n: np.bincount(groups[mask], minlength=n).astype(np.int64)  # noqa: E731
    b_granted = count(granted, res_bundle, n_bundle)
    b_over = count(over, res_bundle, n_bundle)
    tables["bundle_summary"] = {
        "tenant_id": d.tenant(r.bundles, all_b),
        "bundle_id": d.ids(r.bundle, r.bundles, all_b, BUNDLE),
        "pool_id": d.ids(r.pool, r.pools, r.bundle_pool, POOL),
        "assigned": assigned,
        "excluded": excluded,
        "resultant": np.diff(res_off),
        "granted": b_granted,
        "over_capacity": b_over,
        "adds": count((op_remove == 0) & (op_bundle >= 0), np.maximum(op_bundle, 0), n_bundle),
        "removes": removes[r.bundle_group].astype(np.int64),
    }
    tables["pool_summary"] = _pool_summary(r, d, bundle_capacity, pool_capacity, b_granted, b_over)
    tables["sku_summary"] = _sku_summary(r, d, res_bundle, res_person, granted)
    tables["eligibility"] = {"tenant_id": e_tenant, "bundle_id": e_bundle, "person_id": e_person}
    tables["conflicts"] = _conflicts(r, d, res_bundle, res_person, granted)
    tables["warnings"] = _warnings(r)
    return {name: pa.table({c: tables[name][c] for c, _, _ in BUNDLE_OUTPUTS[name]})
            for name in BUNDLE_OUTPUTS}


class _Decoder:
    """Codes back to ids of the input's types, and tenants."""

    def __init__(self, r) -> None:
        self.r = r

    def tenant(self, space, codes: np.ndarray) -> pa.Array:
        return self.r.tenants.values.take(pa.array(space.tenant_of(codes) if len(codes) else codes))

    def ids(self, dictionary, space, codes: np.ndarray, kind: str) -> pa.Array:
        safe = np.maximum(codes, 0)
        ids = np.where(codes >= 0, space.id_of(safe) if len(space) else -1, -1)
        return decode(dictionary.values, ids, self.r.id_types[kind])

    def strings(self, dictionary, space, codes: np.ndarray) -> pa.Array:
        return dictionary.values.take(pa.array(space.id_of(codes))).cast(pa.string())


def _pool_summary(r, d, bundle_capacity, pool_capacity, b_granted, b_over) -> dict:
    n_pool = len(r.pools)
    cap_sum = np.bincount(r.bundle_pool, weights=np.maximum(bundle_capacity, 0), minlength=n_pool)
    unlimited = np.bincount(r.bundle_pool, weights=bundle_capacity < 0, minlength=n_pool) > 0
    granted = np.bincount(r.bundle_pool, weights=b_granted, minlength=n_pool).astype(np.int64)
    price = np.asarray(r.pools_t.column("unit_price").to_numpy(), np.float64)
    monthly = granted * price
    limited = pool_capacity >= 0
    all_p = np.arange(n_pool)
    return {
        "tenant_id": d.tenant(r.pools, all_p),
        "pool_id": d.ids(r.pool, r.pools, all_p, POOL),
        "sku_id": d.ids(r.sku, r.skus, r.pool_sku, SKU),
        "capacity": r.pools_t.column("capacity"),
        "bundle_capacity": pa.array(cap_sum.astype(np.int64), mask=unlimited),
        "granted": granted,
        "over_capacity": np.bincount(r.bundle_pool, weights=b_over, minlength=n_pool).astype(np.int64),
        "monthly_cost": monthly,
        "annual_cost": 12 * monthly,
        "overcommitted": limited & (unlimited | (cap_sum > pool_capacity)),
    }


def _sku_summary(r, d, res_bundle, res_person, granted) -> dict:
    n_sku = len(r.skus)
    present = np.zeros(n_sku, np.bool_)
    present[r.pool_sku] = True
    present[r.sku_rows] = True
    codes = np.flatnonzero(present)
    enabled = np.full(n_sku, -1, np.int64)
    enabled[r.sku_rows] = _filled(r.t["skus"].column("enabled_units"), -1)
    grant_sku = r.pool_sku[r.bundle_pool[res_bundle[granted]]]
    grant_account = r.person_account[res_person[granted]]
    seat_keys = np.unique(grant_sku * max(len(r.accounts), 1) + grant_account)
    seats = np.bincount(seat_keys // max(len(r.accounts), 1), minlength=n_sku).astype(np.int64)
    unknown = enabled[codes] < 0
    return {
        "tenant_id": d.tenant(r.skus, codes),
        "sku_id": d.ids(r.sku, r.skus, codes, SKU),
        "enabled_units": pa.array(enabled[codes], mask=unknown),
        "seats": seats[codes],
        "shortfall": pa.array(np.maximum(0, seats[codes] - enabled[codes]), mask=unknown),
    }


def _conflicts(r, d, res_bundle, res_person, granted) -> dict:
    order = np.lexsort((res_bundle[granted], res_person[granted]))
    person, bundle = res_person[granted][order], res_bundle[granted][order]
    bundle_sku = r.pool_sku[r.bundle_pool]
    row_person, row_kind, sku_off, skus, bun_off, bundles = kb.sku_conflicts(
        person, bundle, bundle_sku, r.conflict_keys, max(len(r.skus), 1))
    return {
        "tenant_id": d.tenant(r.persons, row_person),
        "person_id": d.ids(r.principal, r.persons, row_person, PRINCIPAL),
        "kind": pa.array(["duplicate_sku", "exclusive_skus"]).take(pa.array(row_kind)),
        "sku_ids": pa.ListArray.from_arrays(pa.array(sku_off, pa.int32()), d.strings(r.sku, r.skus, skus)),
        "bundle_ids": pa.ListArray.from_arrays(
            pa.array(bun_off, pa.int32()), d.strings(r.bundle, r.bundles, bundles)),
    }


def _warnings(r) -> pa.Table:
    empty = np.diff(r.actor_offsets) == 0
    key = np.unique(np.stack([r.actor_key[empty], r.actor_type[empty]], axis=1), axis=0)
    width = max(len(r.principal), 1)
    tenant = r.tenants.values.take(pa.array(key[:, 0] // width))
    ids = r.principal.values.take(pa.array(key[:, 0] % width)).cast(pa.string())
    types = pa.array(ACTOR_TYPES).take(pa.array(key[:, 1]))
    table = pa.table({
        "tenant_id": tenant,
        "table": pa.array(["bundle_rules"] * len(key), pa.string()),
        "kind": pc.binary_join_element_wise("empty_", types, ""),
        "id": ids,
        "message": pc.binary_join_element_wise(types, ids, "resolves to nobody", " "),
    })
    return table.sort_by([("tenant_id", "ascending"), ("table", "ascending"), ("kind", "ascending"),
                          ("id", "ascending")])
