"""Section 3 of SPEC.md (bundle resolution): Arrow tables in, Arrow tables out.

The thin adaptor around ``licensecore.kernels.membership`` and ``licensecore.kernels.bundles``:
validate, encode ids into dense codes, build CSR relations, run the kernels, decode the outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from licensecore.kernels.membership import BUSINESS_ROLE, location_intervals, resolve_actors
from licensecore.kernels.sorting import csr_offsets, distinct_sorted_pairs

from . import filters
from .bundle_outputs import assemble
from .encode import Dictionary, KeySpace, composite
from .errors import InputError
from .schema import ACTOR_TYPES, BUNDLE_INPUTS, RULES
from .checks import resolve, unique_keys
from .tables import first_row, normalize_tables

def resolve_bundles(
    tables: Mapping[str, pa.Table], *, max_remove_fraction: float = 0.5, guard_min_members: int = 10
) -> dict[str, pa.Table]:
    """The eight outputs of SPEC 3.3. Raises ``InputError`` for bad input or options."""
    if not (isinstance(max_remove_fraction, (int, float)) and math.isfinite(max_remove_fraction)
            and max_remove_fraction >= 0):
        raise InputError("options", "max_remove_fraction", -1, max_remove_fraction, 1,
                         "must be a finite number >= 0")
    if not (isinstance(guard_min_members, int) and guard_min_members >= 0):
        raise InputError("options", "guard_min_members", -1, guard_min_members, 1,
                         "must be an integer >= 0")
    t, id_types = normalize_tables(tables, BUNDLE_INPUTS)
    extra = _people_attributes(tables.get("people"), t["people"])
    return _Resolution(t, extra, id_types).outputs(max_remove_fraction, guard_min_members)


def _people_attributes(given: pa.Table | None, people: pa.Table) -> pa.Table:
    """Normalised people plus its extra columns (attributes for collection filters)."""
    if given is None:
        return people
    for name in given.column_names:
        if name not in people.column_names:
            people = people.append_column(name, given.column(name))
    return people


def _np(values, dtype) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=dtype)


class _Resolution:
    """Dense codes, CSR relations and kernel results for one request."""

    def __init__(self, t: dict[str, pa.Table], people: pa.Table, id_types: dict) -> None:
        self.t, self.id_types = t, id_types
        names = list(BUNDLE_INPUTS)
        self.tenants = Dictionary([t[n].column("tenant_id") for n in names])
        tenant = dict(zip(names, self.tenants.codes))

        def keys(dictionary: Dictionary, cols: list[tuple[str, str]]) -> list[np.ndarray]:
            return [composite(tenant[n], codes, len(dictionary))
                    for (n, _), codes in zip(cols, dictionary.codes)]

        def dictionary(cols: list[tuple[str, str]]) -> tuple[Dictionary, list[np.ndarray]]:
            d = Dictionary([t[n].column(c) for n, c in cols])
            return d, keys(d, cols)

        gm, rules = t["group_members"], t["bundle_rules"]
        self.principal, (person_k, brole_k, group_k, member_k, role_k, role_person_k, coll_k, actor_k) = \
            dictionary([("people", "person_id"), ("people", "business_role_id"),
                        ("group_members", "group_id"), ("group_members", "member_id"),
                        ("role_members", "role_id"), ("role_members", "person_id"),
                        ("collections", "collection_id"), ("bundle_rules", "actor_id")])
        self.persons = unique_keys("people", "person_id", person_k, t["people"].column("person_id"),
                                   len(self.principal))
        n_person = len(self.persons)
        person_rows = np.argsort(self.persons.lookup(person_k))
        self.people = people.take(pa.array(person_rows))
        self.account, (account_k, current_account_k) = dictionary(
            [("people", "account_id"), ("license_group_members", "account_id")])
        self.accounts = KeySpace(np.concatenate([account_k, current_account_k]), len(self.account))
        self.person_account = self.accounts.lookup(account_k[person_rows])
        self.person_enabled = _np(self.people.column("enabled"), np.bool_)

        self.location, (loc_k, parent_k, person_loc_k, rule_loc_k) = dictionary(
            [("locations", "location_id"), ("locations", "parent_id"), ("people", "location_id"),
             ("bundle_rules", "location_id")])
        known_locations = unique_keys("locations", "location_id", loc_k,
                                      t["locations"].column("location_id"), len(self.location))
        resolve("locations", "parent_id", t["locations"].column("parent_id"), known_locations, parent_k)
        locations = KeySpace(np.concatenate([loc_k, person_loc_k, rule_loc_k]), len(self.location))
        parent = np.full(len(locations), -1, np.int64)
        parent[locations.lookup(loc_k)] = locations.lookup(parent_k)
        self.loc_enter, self.loc_leave, in_cycle = location_intervals(parent)
        first_row("locations", "parent_id", in_cycle[locations.lookup(loc_k)],
                  t["locations"].column("parent_id"), "cycle in locations (the row is on or under it)")
        self.person_location = locations.lookup(person_loc_k[person_rows])

        # Groups: CSR of nested groups and of member people (people missing from `people` drop).
        is_group = _np(pc.equal(gm.column("member_type"), "group"), np.bool_)
        groups = KeySpace(np.concatenate([group_k, member_k[is_group]]), len(self.principal))
        g_code, m_group, m_person = groups.lookup(group_k), groups.lookup(member_k), self.persons.lookup(member_k)
        self.group_offsets, self.group_groups = _csr(g_code[is_group], m_group[is_group], len(groups))
        keep = ~is_group & (m_person >= 0)
        self.group_person_offsets, self.group_persons = _csr(g_code[keep], m_person[keep], len(groups))
        roles = KeySpace(role_k, len(self.principal))
        rp = self.persons.lookup(role_person_k)
        self.role_offsets, self.role_persons = _csr(roles.lookup(role_k)[rp >= 0], rp[rp >= 0], len(roles))
        person_brole_k = brole_k[person_rows]
        broles = KeySpace(person_brole_k, len(self.principal))
        pb = broles.lookup(person_brole_k)
        self.brole_offsets, self.brole_persons = _csr(pb[pb >= 0], np.flatnonzero(pb >= 0), len(broles))
        collections = unique_keys("collections", "collection_id", coll_k,
                                  t["collections"].column("collection_id"), len(self.principal))
        self.collection_offsets, self.collection_persons = self._collections(coll_k, collections)

        # Actors: the distinct (type, id, location for business roles) of the rules.
        self.bundle, (bundle_k, rule_bundle_k) = dictionary([("bundles", "bundle_id"), ("bundle_rules", "bundle_id")])
        self.bundles = unique_keys("bundles", "bundle_id", bundle_k, t["bundles"].column("bundle_id"),
                                   len(self.bundle))
        rule_bundle = resolve("bundle_rules", "bundle_id", rules.column("bundle_id"), self.bundles,
                              rule_bundle_k)
        rule_kind = _np(pc.index_in(rules.column("rule"), value_set=pa.array(RULES)), np.int64)
        actor_type = _np(pc.index_in(rules.column("actor_type"), value_set=pa.array(ACTOR_TYPES)), np.int64)
        actor_loc = np.where(actor_type == BUSINESS_ROLE, locations.lookup(rule_loc_k), -1)
        identity = np.stack([actor_type, actor_k, actor_loc], axis=1)
        actors, rule_actor = np.unique(identity, axis=0, return_inverse=True)
        rule_actor = rule_actor.ravel()
        spaces = (self.persons, groups, roles, broles, collections)
        a_type, a_key, a_loc = actors[:, 0], actors[:, 1], actors[:, 2]
        a_code = np.full(a_type.size, -1, np.int64)
        for kind, space in enumerate(spaces):
            sel = a_type == kind
            a_code[sel] = space.lookup(a_key[sel])
        self.actor_type, self.actor_key = a_type, a_key
        self.actor_offsets, self.actor_persons = resolve_actors(
            a_type, a_code, a_loc, self.group_offsets, self.group_groups, self.group_person_offsets,
            self.group_persons, self.role_offsets, self.role_persons, self.brole_offsets,
            self.brole_persons, self.collection_offsets, self.collection_persons,
            self.person_location, self.loc_enter, self.loc_leave, n_person,
        )
        order = np.lexsort((rule_actor, rule_kind, rule_bundle))
        pairs = np.stack([rule_bundle[order], rule_kind[order], rule_actor[order]], axis=1)
        pairs = pairs[np.r_[True, np.any(pairs[1:] != pairs[:-1], axis=1)]] if pairs.size else pairs
        self.rule_offsets = csr_offsets(pairs[:, 0], len(self.bundles))
        self.rule_kind, self.rule_actor = pairs[:, 1].copy(), pairs[:, 2].copy()

        # Pools, license groups, skus.
        pools_t, bundles_t = t["pools"], t["bundles"]
        self.pool, (pool_k, bundle_pool_k) = dictionary([("pools", "pool_id"), ("bundles", "pool_id")])
        self.pools = unique_keys("pools", "pool_id", pool_k, pools_t.column("pool_id"), len(self.pool))
        bundle_rows = np.argsort(self.bundles.lookup(bundle_k))
        self.bundles_t = bundles_t.take(pa.array(bundle_rows))
        self.bundle_pool = resolve("bundles", "pool_id", bundles_t.column("pool_id"), self.pools,
                                   bundle_pool_k)[bundle_rows]
        self.pool_rows = np.argsort(self.pools.lookup(pool_k))
        self.pools_t = pools_t.take(pa.array(self.pool_rows))
        self.group, (bundle_group_k, current_group_k) = dictionary(
            [("bundles", "license_group_id"), ("license_group_members", "license_group_id")])
        self.groups = KeySpace(np.concatenate([bundle_group_k, current_group_k]), len(self.group))
        self.bundle_group = self.groups.lookup(bundle_group_k)[bundle_rows]
        self.current_offsets, self.current_accounts = _csr(
            self.groups.lookup(current_group_k), self.accounts.lookup(current_account_k), len(self.groups))
        self.sku, (pool_sku_k, sku_k, sku_a_k, sku_b_k) = dictionary(
            [("pools", "sku_id"), ("skus", "sku_id"), ("sku_conflicts", "sku_a"), ("sku_conflicts", "sku_b")])
        unique_keys("skus", "sku_id", sku_k, t["skus"].column("sku_id"), len(self.sku))
        self.skus = KeySpace(np.concatenate([pool_sku_k, sku_k, sku_a_k, sku_b_k]), len(self.sku))
        self.pool_sku = self.skus.lookup(pool_sku_k)[self.pool_rows]
        self.sku_rows = self.skus.lookup(sku_k)
        a, b = self.skus.lookup(sku_a_k), self.skus.lookup(sku_b_k)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        self.conflict_keys = np.unique(lo[lo != hi] * max(len(self.skus), 1) + hi[lo != hi])

    def _collections(self, coll_k: np.ndarray, collections: KeySpace) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate every collection's filter over the people of its tenant."""
        table = self.t["collections"]
        texts = table.column("filter").to_pylist()
        columns = {f.name: f.type for f in self.people.schema}
        person_tenant = self.persons.tenant_of(np.arange(len(self.persons)))
        starts = np.searchsorted(person_tenant, np.arange(len(self.tenants) + 1))
        code_of_row = collections.lookup(coll_k)
        tenant_of_row = self.tenants.codes[list(BUNDLE_INPUTS).index("collections")]
        members: list[np.ndarray] = [np.empty(0, np.int64)] * len(collections)
        for row, text in enumerate(texts):
            try:
                compiled = filters.compile_filter(text, columns)
            except filters.FilterError as exc:
                raise InputError("collections", "filter", row, text, 1,
                                 f"collection {table.column('collection_id')[row].as_py()!r}: {exc}") from None
            lo, hi = starts[tenant_of_row[row]], starts[tenant_of_row[row] + 1]
            mask = filters.evaluate(compiled, self.people.slice(lo, hi - lo))
            members[code_of_row[row]] = lo + np.flatnonzero(mask)
        counts = np.array([m.size for m in members], np.int64)
        offsets = np.zeros(len(collections) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        values = np.concatenate(members) if members else np.empty(0, np.int64)
        return offsets, values.astype(np.int64)

    def outputs(self, max_remove_fraction: float, guard_min_members: int) -> dict[str, pa.Table]:
        return assemble(self, max_remove_fraction, guard_min_members)


def _csr(group: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (group, value) pairs as CSR with ascending values per group."""
    g, v = distinct_sorted_pairs(group.astype(np.int64), values.astype(np.int64), max(n_groups, 1),
                                 int(values.max()) + 1 if values.size else 1)
    return csr_offsets(g, n_groups), v


def warm_up() -> None:
    """Compile every bundle kernel on a tiny input so that the first real request pays no JIT."""
    def table(**cols) -> pa.Table:
        n = len(next(iter(cols.values())))
        return pa.table({"tenant_id": ["t"] * n, **cols})

    resolve_bundles({
        "people": table(person_id=["p", "q"], account_id=["a", "b"], business_role_id=["r", "r"],
                        location_id=["l", None], dept=["x", None]),
        "locations": table(location_id=["l"], parent_id=pa.array([None], pa.string())),
        "group_members": table(group_id=["g", "g"], member_type=["person", "group"], member_id=["p", "g"]),
        "role_members": table(role_id=["m"], person_id=["q"]),
        "collections": table(collection_id=["c"], filter=["dept == 'x'"]),
        "pools": table(pool_id=["o", "o2"], sku_id=["s", "s2"], capacity=pa.array([1, None], pa.int64())),
        "bundles": table(bundle_id=["b", "b2"], pool_id=["o", "o2"], license_group_id=["lg", "lg"]),
        "bundle_rules": table(
            bundle_id=["b", "b", "b", "b2", "b2", "b"],
            rule=["assign", "exclude", "eligible", "assign", "exclude_eligible", "assign"],
            actor_type=["group", "role", "business_role", "collection", "person", "person"],
            actor_id=["g", "m", "r", "c", "p", "q"], location_id=[None, None, "l", None, None, None]),
        "license_group_members": table(license_group_id=["lg"], account_id=["b"]),
        "skus": table(sku_id=["s"], enabled_units=pa.array([1], pa.int64())),
        "sku_conflicts": table(sku_a=["s"], sku_b=["s2"]),
    })
