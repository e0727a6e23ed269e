"""SPEC section 4 for bundle resolution: scenarios that replace rows of `bundles` and `pools`.

Each scenario gives two tables, ``pool_scenario_summary`` and ``bundle_scenario_summary``: the
figures of `pool_summary` and `bundle_summary` (SPEC 3.3) that capacity planning compares, with
deltas against the base (docs/decisions.md, "What-if scenarios for bundles and pools").

Done once for all scenarios: validation of the section 3 inputs, id encoding, group closure,
actor expansion, collection filters and the bundle sets (assigned, excluded, resultant). None of
these reads a column of `bundles` or `pools` other than their keys, and a scenario cannot change a
key, so bundle, pool and person codes stay what they are in the base.

Recomputed for each scenario that has bundle or pool rows: the two capacity passes, the
fulfillment plan's adds and removes, and the figures, over every bundle. These are exactly the
steps of a full resolution that read `pool_id`, `license_group_id` and `capacity` of `bundles`
and `capacity` and `unit_price` of `pools`; they run on the shared resultant sets with the
scenario's arrays, as a full resolution of the modified tables would. A license group that only
a scenario names has no current members (every group with members is in the base's key space),
so it gets a fresh code with an empty member list. The passes are linear in the resultant rows
(milliseconds at size M), so they are not restricted to the pools a scenario reaches.
`revoke_threshold` and `disabled_plans` may be replaced but move no figure returned here (they
only change fulfillment statuses and plans).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from licensecore.kernels import bundles as kb
from licensecore.kernels.sorting import csr_offsets

from .bundles import _people_attributes, _Resolution
from .encode import cast_ids, decode
from .schema import BUNDLE, BUNDLE_INPUTS, POOL, SKU
from .tables import first_row, normalize_tables
from .whatif_rows import codes_of, key_codes, normalized_rows, replacement_columns, valid

POOL_TABLE = "pool_scenario_summary"
BUNDLE_TABLE = "bundle_scenario_summary"
KEYS = {"bundles": ("tenant_id", "bundle_id"), "pools": ("tenant_id", "pool_id")}
REPLACEMENT_COLUMNS = {name: replacement_columns(BUNDLE_INPUTS[name], keys) for name, keys in KEYS.items()}


@dataclass(frozen=True)
class _Arrays:
    """The bundle and pool columns a scenario may change, in bundle / pool code order
    (capacities -1: unlimited)."""

    bundle_pool: np.ndarray
    bundle_group: np.ndarray
    bundle_capacity: np.ndarray
    pool_capacity: np.ndarray
    unit_price: np.ndarray
    pool_sku: pa.Array  # canonical ids (string or int64)
    n_group: int  # license groups: the base's, then those only this scenario names


@dataclass(frozen=True)
class _Figures:
    """The figures of one scenario (per bundle and per pool)."""

    arrays: _Arrays
    bundle_granted: np.ndarray
    bundle_over: np.ndarray
    bundle_adds: np.ndarray
    bundle_removes: np.ndarray
    pool_bundle_capacity: pa.Array
    pool_granted: np.ndarray
    pool_over: np.ndarray
    annual_cost: np.ndarray
    overcommitted: np.ndarray


def _filled(values: pa.ChunkedArray, null: int) -> np.ndarray:
    return np.asarray(values.fill_null(null).to_numpy(), np.int64)


class BundleScenarios:
    """The section 3 inputs encoded once, the shared resultant sets and the base figures."""

    def __init__(self, tables: Mapping[str, pa.Table]) -> None:
        t, self.id_types = normalize_tables(tables, BUNDLE_INPUTS)
        r = self.r = _Resolution(t, _people_attributes(tables.get("people"), t["people"]), self.id_types)
        _, _, self.res_off, self.res_person, _, _ = kb.bundle_sets(
            r.rule_offsets, r.rule_kind, r.rule_actor, r.actor_offsets, r.actor_persons, len(r.persons))
        self.base = self.figures(_Arrays(
            bundle_pool=r.bundle_pool, bundle_group=r.bundle_group,
            bundle_capacity=_filled(r.bundles_t.column("capacity"), -1),
            pool_capacity=_filled(r.pools_t.column("capacity"), -1),
            unit_price=np.asarray(r.pools_t.column("unit_price").to_numpy(), np.float64),
            pool_sku=r.pools_t.column("sku_id").combine_chunks(), n_group=len(r.groups)))
        all_b, all_p = np.arange(len(r.bundles)), np.arange(len(r.pools))
        self.bundle_key = (self._tenants(r.bundles, all_b),
                           decode(r.bundle.values, r.bundles.id_of(all_b), self.id_types[BUNDLE]))
        self.pool_key = (self._tenants(r.pools, all_p),
                         decode(r.pool.values, r.pools.id_of(all_p), self.id_types[POOL]))

    def _tenants(self, space, codes: np.ndarray) -> pa.Array:
        return self.r.tenants.values.take(pa.array(space.tenant_of(codes) if codes.size else codes))

    def apply(self, name: str, bundles: pa.Table, pools: pa.Table) -> _Arrays | None:
        """The scenario's arrays (None: it replaces no bundle or pool row); raises ``InputError``
        naming ``scenario[<name>].bundles`` or ``.pools``, the column, the row and the value."""
        bundle_rows, pool_rows = self._rows(name, "bundles", bundles), self._rows(name, "pools", pools)
        if not bundle_rows[1].num_rows and not pool_rows[1].num_rows:
            return None
        return self._apply_pools(*pool_rows, self._apply_bundles(*bundle_rows))

    def _apply_bundles(self, label: str, rows: pa.Table) -> _Arrays:
        r, a = self.r, self.base.arrays
        code = key_codes(label, rows, "bundle_id", r.tenants.values, r.bundle, r.bundles, "bundles")
        pool = codes_of(r.tenants.values, rows.column("tenant_id"), rows.column("pool_id"), r.pool, r.pools)
        given = valid(rows.column("pool_id"))
        first_row(label, "pool_id", given & (pool < 0), rows.column("pool_id"),
                  "reference does not resolve within its tenant (no such pool in pools)")
        bundle_pool = a.bundle_pool.copy()
        bundle_pool[code[given]] = pool[given]
        bundle_group, n_group = self._groups(rows, code)
        return replace(a, bundle_pool=bundle_pool, bundle_group=bundle_group, n_group=n_group,
                       bundle_capacity=_replaced(a.bundle_capacity, code, rows.column("capacity")))

    def _apply_pools(self, label: str, rows: pa.Table, a: _Arrays) -> _Arrays:
        r = self.r
        code = key_codes(label, rows, "pool_id", r.tenants.values, r.pool, r.pools, "pools")
        sku = rows.column("sku_id")
        has_sku = valid(sku)
        pool_sku = a.pool_sku
        if has_sku.any():  # replacements in ascending pool code, as replace_with_mask takes them
            mask = np.zeros(len(r.pools), np.bool_)
            mask[code[has_sku]] = True
            new = sku.filter(pa.array(has_sku)).combine_chunks().take(pa.array(np.argsort(code[has_sku])))
            pool_sku = pc.replace_with_mask(a.pool_sku, pa.array(mask), new)
        price = rows.column("unit_price")
        unit_price = a.unit_price.copy()
        unit_price[code[valid(price)]] = np.asarray(price.drop_null().to_numpy(), np.float64)
        return replace(a, pool_capacity=_replaced(a.pool_capacity, code, rows.column("capacity")),
                       unit_price=unit_price, pool_sku=pool_sku)

    def _rows(self, name: str, table: str, rows: pa.Table) -> tuple[str, pa.Table]:
        label = f"scenario[{name}].{table}"
        return label, normalized_rows(label, table, rows, REPLACEMENT_COLUMNS[table], self.id_types)

    def _groups(self, rows: pa.Table, code: np.ndarray) -> tuple[np.ndarray, int]:
        """Bundle license groups with the rows' changes; groups new to the base get fresh codes."""
        r, a = self.r, self.base.arrays
        column = rows.column("license_group_id")
        group = codes_of(r.tenants.values, rows.column("tenant_id"), column, r.group, r.groups)
        given = valid(column)
        fresh: dict[tuple[str, object], int] = {}
        tenants, ids = rows.column("tenant_id").to_pylist(), column.to_pylist()
        for i in np.flatnonzero(given & (group < 0)):
            group[i] = fresh.setdefault((tenants[i], ids[i]), a.n_group + len(fresh))
        bundle_group = a.bundle_group.copy()
        bundle_group[code[given]] = group[given]
        return bundle_group, a.n_group + len(fresh)

    def figures(self, a: _Arrays) -> _Figures:
        """The capacity passes and the fulfillment counts with the arrays ``a`` (SPEC 3.2)."""
        r = self.r
        n_bundle, n_pool = a.bundle_capacity.size, a.pool_capacity.size
        n_account = max(len(r.accounts), 1)
        current_offsets = np.concatenate(
            [r.current_offsets, np.full(a.n_group - len(r.groups), r.current_offsets[-1])])
        status = kb.grant_seats(
            self.res_off, self.res_person, a.bundle_capacity, a.bundle_group, current_offsets,
            r.current_accounts, r.person_enabled, r.person_account, n_account,
            np.lexsort((np.arange(n_bundle), a.bundle_pool)), a.pool_capacity, a.bundle_pool)
        group_bundles = np.lexsort((np.arange(n_bundle), a.bundle_group))
        op_group, op_remove, _, op_bundle, _ = kb.fulfillment_plan(
            csr_offsets(a.bundle_group[group_bundles], a.n_group), group_bundles, self.res_off,
            self.res_person, status, r.person_account, current_offsets, r.current_accounts, n_account)
        res_bundle = np.repeat(np.arange(n_bundle), np.diff(self.res_off))
        granted = np.bincount(res_bundle[status == kb.GRANTED], minlength=n_bundle)
        over = np.bincount(res_bundle[(status == kb.OVER_BUNDLE) | (status == kb.OVER_POOL)], minlength=n_bundle)
        adds = np.bincount(op_bundle[(op_remove == 0) & (op_bundle >= 0)], minlength=n_bundle)
        removes = np.bincount(op_group[op_remove == 1], minlength=a.n_group)[a.bundle_group]
        # pool_summary of SPEC 3.3, as resolve_bundles computes it
        cap_sum = np.bincount(a.bundle_pool, weights=np.maximum(a.bundle_capacity, 0), minlength=n_pool)
        unlimited = np.bincount(a.bundle_pool, weights=a.bundle_capacity < 0, minlength=n_pool) > 0
        pool_granted = np.bincount(a.bundle_pool, weights=granted, minlength=n_pool).astype(np.int64)
        monthly = pool_granted * a.unit_price
        return _Figures(
            a, granted.astype(np.int64), over.astype(np.int64), adds.astype(np.int64),
            removes.astype(np.int64), pa.array(cap_sum.astype(np.int64), mask=unlimited), pool_granted,
            np.bincount(a.bundle_pool, weights=over, minlength=n_pool).astype(np.int64), 12 * monthly,
            (a.pool_capacity >= 0) & (unlimited | (cap_sum > a.pool_capacity)))

    def tables(self, name: str, arrays: _Arrays | None) -> dict[str, pa.Table]:
        """The scenario's rows of both tables (the base figures when ``arrays`` is None)."""
        f, base = (self.base if arrays is None else self.figures(arrays)), self.base
        a, r = f.arrays, self.r
        n_pool, n_bundle = a.pool_capacity.size, a.bundle_capacity.size
        pools = pa.table({
            "scenario": pa.array([name] * n_pool, pa.string()),
            "tenant_id": self.pool_key[0],
            "pool_id": self.pool_key[1],
            "sku_id": cast_ids(a.pool_sku, self.id_types[SKU]),
            "capacity": pa.array(a.pool_capacity, mask=a.pool_capacity < 0),
            "bundle_capacity": f.pool_bundle_capacity,
            "granted": f.pool_granted,
            "over_capacity": f.pool_over,
            "annual_cost": pa.array(f.annual_cost, pa.float64()),
            "overcommitted": f.overcommitted,
            "delta_granted": f.pool_granted - base.pool_granted,
            "delta_annual_cost": pa.array(f.annual_cost - base.annual_cost, pa.float64()),
        })
        bundles = pa.table({
            "scenario": pa.array([name] * n_bundle, pa.string()),
            "tenant_id": self.bundle_key[0],
            "bundle_id": self.bundle_key[1],
            "pool_id": decode(r.pool.values, r.pools.id_of(a.bundle_pool), self.id_types[POOL]),
            "capacity": pa.array(a.bundle_capacity, mask=a.bundle_capacity < 0),
            "granted": f.bundle_granted,
            "over_capacity": f.bundle_over,
            "adds": f.bundle_adds,
            "removes": f.bundle_removes,
            "delta_granted": f.bundle_granted - base.bundle_granted,
        })
        return {POOL_TABLE: pools, BUNDLE_TABLE: bundles}


def _replaced(base: np.ndarray, code: np.ndarray, values: pa.ChunkedArray) -> np.ndarray:
    """``base`` with the non-null cells of an int64 replacement column put in at ``code``."""
    out = base.copy()
    out[code[valid(values)]] = np.asarray(values.drop_null().to_numpy(), np.int64)
    return out

