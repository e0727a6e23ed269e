"""Seeded synthetic directory data for SPEC section 3 (bundle resolution).

``generate_bundles(size, seed)`` returns the eleven section-3 input tables for several tenants of
unequal size (tenant ``t`` gets a share proportional to 1 / (t + 1)). The data is valid per SPEC
and shaped like a real directory:

- people: a few without an account, ~3% disabled, a business role from a few dozen, a leaf of a
  country > city > site (> floor) location tree, and attributes ``department``, ``country``,
  ``employee_type``, ``cost_center`` (int64), ``is_manager`` (bool); all with a few nulls;
- groups nested five levels deep with diamonds, back-edges (cycles, one self-membership), empty
  groups, skewed sizes, members not in ``people`` and duplicate rows; roles mostly of managers;
- collection filters over the attributes (one selects nobody and escapes a quote); pools per SKU
  (one without bundles); bundles with tight, loose or unlimited capacity, disabled plans, revoke
  thresholds, a few pairs sharing a license group; rules of every (rule, actor_type) pair,
  located and unlocated business roles, unknown and empty actors;
- license groups whose current members drift from the rules (members missing, leavers' accounts
  present), one the removal guard must stop, one no bundle maps to; SKUs with and without
  enabled units; two conflicting SKU pairs.

Everything is vectorised NumPy on one ``np.random.default_rng(seed)``. Rows hold per-tenant
local indices; ids are readable strings (``p-0000042``, numbered per tenant) or int64 (one range
per kind, so persons, groups, roles, business roles and collections never collide); accounts are
GUIDs or int64; SKU ids are part numbers (strings) under both id types. Current license group
members start from what the assign rules select (groups through their tree descendants) and drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from licensecore.bench.datagen import _ARROW_TYPES, _column, _guids, _split
from licensecore.server.schema import ACCOUNT, BUNDLE_INPUTS, PRINCIPAL, SKU, Column


@dataclass(frozen=True)
class BundleSize:
    """Totals over all tenants (``memberships``: group_members rows, approximately)."""

    tenants: int
    people: int
    groups: int
    memberships: int
    bundles: int


BUNDLE_SIZES: dict[str, BundleSize] = {
    "S": BundleSize(2, 2_000, 100, 8_000, 20),
    "M": BundleSize(3, 20_000, 1_000, 100_000, 100),
    "L": BundleSize(4, 200_000, 10_000, 2_000_000, 500),
    "XL": BundleSize(6, 1_000_000, 50_000, 10_000_000, 2_000),
}

# Actor types (and principal kinds) in the order of the schema enum; member_type shares codes.
PERSON, GROUP, ROLE, BUSINESS_ROLE, COLLECTION = range(5)
ASSIGN, EXCLUDE, ELIGIBLE, EXCLUDE_ELIGIBLE = range(4)
# Id blocks per kind (string prefixes); int64 ids of block j are (j + 1) * 10**8 + local index.
_PREFIXES = {"principal": ("p", "g", "r", "br", "c"), "location": ("loc",), "pool": ("pool",),
             "bundle": ("b",), "license_group": ("lg",), "account": ("",)}
_COUNTRIES = ("DE", "AT", "CH", "FR", "GB", "NL", "SE", "ES", "IT", "US", "CA", "BR", "IN", "JP",
              "AU")
_DEPARTMENTS = ("Sales", "Engineering", "Operations", "Support", "Marketing", "Finance", "IT",
                "Research", "HR", "Legal")
_SKUS = ("ENTERPRISEPACK", "STANDARDPACK", "SPE_E3", "SPE_E5", "EMS", "POWER_BI_PRO",
         "VISIOCLIENT", "PROJECTPROFESSIONAL", "FLOW_FREE")
_PRICES = np.array([23.0, 12.5, 36.0, 57.0, 10.5, 10.0, 15.0, 30.0])  # per pool SKU
_POOL_SKUS = 8  # FLOW_FREE is only in `skus`, PROJECTPROFESSIONAL never
_CONFLICTS = {"sku_a": np.array([0, 2]), "sku_b": np.array([1, 3])}  # EP/SP, E3/E5
_PLANS = ("SWAY", "YAMMER_ENTERPRISE", "TEAMS1", "FORMS_PLAN_E3", "KAIZALA_O365_P3",
          "MCOSTANDARD", "SHAREPOINTWAC", "BPOS_S_TODO_2")
_FILTERS = (
    "department == 'O''Brien & Partners' and is_manager == true",  # selects nobody
    "department == '{d}' and employee_type != 'intern'",
    "country in ('{c}', '{c2}')",
    "cost_center >= {hi}",
    "is_manager == true",
    "location_id is not null and employee_type == 'employee'",
    "not (employee_type == 'contractor') and country == '{c}'",
    "(department == '{d}' or department == '{d2}') and is_manager == false",
    "employee_type in ('contractor', 'intern') and cost_center is not null",
    "country is null or business_role_id is null",
    "cost_center < {lo} and department != '{d}'",
)
ATTRIBUTES = (Column("department", "string", None), Column("country", "string", None),
              Column("employee_type", "string", None), Column("cost_center", "int64", None),
              Column("is_manager", "bool", None))
_LOOKUPS = {"department": _DEPARTMENTS, "country": _COUNTRIES,
            "employee_type": ("employee", "contractor", "intern")}
_SPECS = {name: cols + (ATTRIBUTES if name == "people" else ())
          for name, cols in BUNDLE_INPUTS.items()}
_EXTRA = np.array([4, 1, 1, 1, 0])  # unknown ids per principal kind beyond the real ones
# Principal kind of each principal column: a constant or the column holding it.
_PRINCIPAL_KIND = {"person_id": PERSON, "business_role_id": BUSINESS_ROLE, "group_id": GROUP,
                   "role_id": ROLE, "collection_id": COLLECTION, "member_id": "member_type",
                   "actor_id": "actor_type"}


def _csr(keys: np.ndarray, n: int,
         values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, counts, values) of the rows of ``keys`` grouped by key (keys < 0 dropped);
    ``values`` default to the row numbers."""
    order = np.argsort(keys, kind="stable")
    order = order[keys[order] >= 0]
    counts = np.bincount(keys[order], minlength=n)
    return np.cumsum(counts) - counts, counts, order if values is None else values[order]


def _gather(csr: tuple[np.ndarray, np.ndarray, np.ndarray],
            keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in ``keys``, value) for every value under each key; offsets wrap around."""
    starts, counts, values = csr
    c = counts[keys]
    within = np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
    pos = (np.repeat(starts[keys], c) + within) % max(1, len(values))
    return np.repeat(np.arange(len(keys)), c), values[pos]


def _locations(rng: np.random.Generator, n_people: int) -> dict[str, np.ndarray]:
    """Countries > 1-5 cities > 1-4 sites (> 30% with 1-3 floors); per node parent and ancestors."""
    n_c = min(len(_COUNTRIES), 3 + n_people // 40_000)
    cities = rng.integers(1, 6, n_c)
    sites = rng.integers(1, 5, cities.sum())
    floors = np.where(rng.random(sites.sum()) < 0.3, rng.integers(1, 4, sites.sum()), 0)
    sizes = np.cumsum([0, n_c, cities.sum(), sites.sum()])
    children = (cities, sites, floors)
    parent = np.concatenate([np.full(n_c, -1)] + [start + np.repeat(np.arange(len(k)), k)
                                                  for start, k in zip(sizes, children)])
    depth = np.repeat(np.arange(4), np.diff(np.append(sizes, len(parent))))
    country, city = np.arange(len(parent)), np.arange(len(parent))
    for _ in range(3):
        country = np.where(parent[country] >= 0, parent[country], country)
        city = np.where(depth[city] > 1, parent[city], city)
    leaf = (np.bincount(parent[parent >= 0], minlength=len(parent)) == 0) & (depth >= 2)
    codes = np.concatenate([[0, 1], 2 + rng.permutation(len(_COUNTRIES) - 2)])[:n_c]
    return {"parent": parent, "country": country, "city": np.where(depth > 0, city, -1),
            "leaves": np.flatnonzero(leaf), "codes": codes, "limits": np.flatnonzero(depth < 2)}


def _people(rng: np.random.Generator, n: int, n_br: int, loc: dict) -> dict[str, np.ndarray]:
    """People: location leaves and business roles with skewed popularity, attributes with nulls."""
    w = rng.pareto(1.0, len(loc["leaves"])) + 1
    location = loc["leaves"][rng.choice(len(w), n, p=w / w.sum())]
    location[rng.random(n) < 0.02] = -1
    country = np.where(location >= 0, loc["codes"][loc["country"][location]], -1)
    country[rng.random(n) < 0.01] = -1
    w = rng.pareto(1.0, n_br) + 1
    role = rng.choice(n_br, n, p=w / w.sum())
    role[rng.random(n) < 0.04] = -1
    dept = rng.choice(len(_DEPARTMENTS), n, p=np.linspace(2, 1, len(_DEPARTMENTS)) / 15)
    dept[rng.random(n) < 0.02] = -1
    cost = np.where(dept >= 0, 1000 + 500 * dept + rng.integers(0, 100, n), -1)
    cost[rng.random(n) < 0.02] = -1
    enabled = (rng.random(n) >= 0.03).astype(np.int8)
    enabled[rng.random(n) < 0.005] = -1
    kind = np.where(rng.random(n) < 0.01, -1, rng.choice(3, n, p=[0.85, 0.12, 0.03]))
    manager = np.where(rng.random(n) < 0.01, -1, rng.random(n) < 0.08)
    return {"person_id": np.arange(n), "account_id": np.where(rng.random(n) < 0.975, np.arange(n),
                                                              -1),
            "enabled": enabled, "business_role_id": role, "location_id": location,
            "department": dept, "country": country, "employee_type": kind, "cost_center": cost,
            "is_manager": manager}


def _groups(rng: np.random.Generator, n_people: int, n_groups: int,
            n_edges: int) -> tuple[dict[str, np.ndarray], list, np.ndarray, np.ndarray]:
    """Nested groups (levels 0-4), back-edges, empty leaves; members are contiguous blocks of a
    permutation of the people, so a group never lists a person twice by chance.

    Returns group_members (local ids, member kind in ``member_type``), the CSRs of the tree
    descendants (self included) and of the direct person members by group, the non-empty
    groups and those of them not on a cycle.
    """
    level = np.searchsorted([0.1, 0.3, 0.6, 0.85], np.arange(n_groups) / n_groups, "right")
    level = level[rng.permutation(n_groups)]
    leaves = np.flatnonzero(level == 4)
    empty = np.zeros(n_groups, bool)
    empty[rng.choice(leaves, max(1, min(len(leaves) - 1, n_groups // 25)), replace=False)] = True
    parent = np.full(n_groups, -1)
    for k in range(1, 5):
        kids, cands = np.flatnonzero(level == k), np.flatnonzero((level == k - 1) & ~empty)
        parent[kids] = cands[rng.integers(0, len(cands), len(kids))]
    chain = [np.arange(n_groups)]  # chain[k][g]: the tree ancestor k levels above g (-1: none)
    for _ in range(4):
        chain.append(np.where(chain[-1] >= 0, parent[chain[-1]], -1))
    chain = np.stack(chain)
    # Diamonds: 10% of the leaves get a second parent (the ancestors of both contain them).
    two = leaves[rng.random(len(leaves)) < 0.1]
    second = np.flatnonzero(level == 3)
    second = second[rng.integers(0, len(second), len(two))]
    tree = np.concatenate([chain, chain[:, second]], axis=1)
    below = np.concatenate([np.arange(n_groups), two])
    # Back-edges: a group gets one of its ancestors (or, once, itself) as a member.
    back = rng.choice(np.flatnonzero((level >= 1) & (level <= 3)), max(2, n_groups // 100))
    up = rng.integers(1, level[back] + 1)
    up[0] = 0
    ancestor = chain[up, back]
    nested = np.flatnonzero(parent >= 0)
    g_group = np.concatenate([parent[nested], second, back])
    g_member = np.concatenate([nested, two, ancestor])
    full = np.flatnonzero(~empty)
    # Groups on a cycle path resolve to more than their subtree.
    cyclic = chain[:, back][np.arange(5)[:, None] < up]
    w = rng.pareto(1.2, len(full)) + 1
    sizes = np.zeros(n_groups, np.int64)
    target = max(len(full), n_edges - len(g_group))
    sizes[full] = np.clip(np.round(w / w.sum() * target), 1, n_people)
    starts = rng.integers(0, n_people, n_groups)
    csr = (starts, sizes, rng.permutation(n_people))
    p_group, p_member = _gather(csr, np.arange(n_groups))
    ghosts = rng.choice(full, 3)  # members that are not in `people` (leavers)
    group = np.concatenate([g_group, p_group, ghosts])
    member = np.concatenate([g_member, p_member, n_people + np.arange(3)])
    kind = np.repeat([GROUP, PERSON], [len(g_group), len(group) - len(g_group)])
    dup = rng.integers(0, len(group), max(1, len(group) // 2000))
    return ({"group_id": np.append(group, group[dup]), "member_type": np.append(kind, kind[dup]),
             "member_id": np.append(member, member[dup])},
            [_csr(tree.ravel(), n_groups, np.tile(below, 5)), csr], full,
            np.setdiff1d(full, cyclic))


def _collections(rng: np.random.Generator, n: int, countries: np.ndarray) -> list[str]:
    """Filters: every template once, then random ones, with this tenant's values filled in."""
    which = np.concatenate([np.arange(len(_FILTERS)), rng.integers(1, len(_FILTERS),
                                                                   n - len(_FILTERS))])
    d = rng.integers(0, len(_DEPARTMENTS), n)
    d = np.stack([d, (d + rng.integers(1, len(_DEPARTMENTS), n)) % len(_DEPARTMENTS)], 1)
    c = rng.integers(0, len(countries), n)
    c = countries[np.stack([c, (c + rng.integers(1, len(countries), n)) % len(countries)], 1)]
    hi, lo = rng.choice([4000, 5000], n), rng.choice([1500, 2000], n)
    return [_FILTERS[w].format(d=_DEPARTMENTS[a], d2=_DEPARTMENTS[b], c=_COUNTRIES[x],
                               c2=_COUNTRIES[y], hi=h, lo=low)
            for w, (a, b), (x, y), h, low in zip(which, d, c, hi, lo)]


def _actors(rng: np.random.Generator, kind: np.ndarray, sizes: np.ndarray,
            groups: np.ndarray) -> np.ndarray:
    """A random existing local id of ``kind`` per row (groups: one of ``groups``)."""
    idx = (rng.random(len(kind)) * sizes[kind]).astype(np.int64)
    pick = groups[(rng.random(len(kind)) * len(groups)).astype(np.int64)]
    return np.where(kind == GROUP, pick, idx)


def _rules(rng: np.random.Generator, n_b: int, sizes: np.ndarray, groups: tuple,
           loc: dict) -> dict[str, np.ndarray]:
    """Rules: each bundle's primary assign rule (the first ``n_b`` rows), every (rule, actor_type)
    pair, random rules, unknown or empty actors and a duplicate row. The last bundle (the guard
    bundle) only assigns role 0; all other rules go to the other bundles. ``groups``: the
    non-empty groups, those not on a cycle (for primary rules) and an empty one."""
    full, acyclic, empty_group = groups
    primary = rng.choice([GROUP, BUSINESS_ROLE, ROLE], n_b, p=[0.7, 0.2, 0.1])
    primary[-1] = ROLE
    cover_rule = np.repeat(np.arange(4), 5)
    kind = np.concatenate([primary, np.tile(np.arange(5), 4),
                           rng.choice(5, n_b, p=[0.3, 0.35, 0.1, 0.1, 0.15])])
    actor = _actors(rng, kind, sizes, full)
    actor[:n_b] = _actors(rng, primary, sizes, acyclic)
    actor[n_b - 1] = 0
    # Unknown person, group, role and business role; an empty group; the nobody collection.
    bad_kind = np.array([PERSON, GROUP, ROLE, BUSINESS_ROLE, GROUP, COLLECTION])
    kind = np.concatenate([kind, bad_kind])
    actor = np.concatenate([actor, sizes[bad_kind[:4]], [empty_group, 0]])
    rule = np.concatenate([np.full(n_b, ASSIGN), cover_rule,
                           rng.choice(4, n_b, p=[0.25, 0.35, 0.25, 0.15]),
                           [ASSIGN, EXCLUDE, ELIGIBLE, ASSIGN, ASSIGN, ASSIGN]])
    bundle = np.concatenate([np.arange(n_b), rng.integers(0, n_b - 1, len(rule) - n_b)])
    limited = rng.random(len(rule)) < 0.5
    limited[n_b:n_b + 20] = cover_rule % 2 == 0
    limited[-len(bad_kind):] = False
    location = np.where((kind == BUSINESS_ROLE) & limited,
                        rng.choice(loc["limits"], len(rule)), -1)
    dup = rng.integers(0, len(rule))
    out = {"bundle_id": bundle, "rule": rule, "actor_type": kind, "actor_id": actor,
           "location_id": location}
    return {k: np.append(v, v[dup]) for k, v in out.items()}


def _bundles(rng: np.random.Generator, n: dict[str, int], people: dict, csrs: dict,
             groups: tuple, loc: dict) -> dict[str, dict]:
    """Pools, bundles, rules, current license group members (with drift), SKUs and conflicts."""
    n_b, n_pool, n_p = n["bundles"], n["pools"], n["people"]
    sizes = np.array([n_p, n["groups"], n["roles"], n["business_roles"], n["collections"]])
    rules = _rules(rng, n_b, sizes, groups, loc)
    # Members of the assign rules (but collections and tree cycles) approximate what each
    # bundle resolves to.
    kind, actor, limit = (rules[k] for k in ("actor_type", "actor_id", "location_id"))
    rows, person = [], []
    for k, chain in csrs.items():
        row = np.flatnonzero((kind == k) & (rules["rule"] == ASSIGN) & (actor < sizes[k]))
        key = actor[row]
        for csr in chain:
            at, key = _gather(csr, key)
            row = row[at]
        rows.append(row)
        person.append(key)
    row, person = np.concatenate(rows), np.concatenate(person)
    where = people["location_id"][person]
    keep = (limit[row] < 0) | ((where >= 0) & ((loc["country"][where] == limit[row])
                                               | (loc["city"][where] == limit[row])))
    pair = np.unique(rules["bundle_id"][row[keep]] * n_p + person[keep])
    row, person = pair // n_p, pair % n_p
    size = np.bincount(row, minlength=n_b)
    # License groups: one per bundle, a few odd bundles share their predecessor's.
    share = (np.arange(n_b) % 2 == 1) & (rng.random(n_b) < 0.1)
    share[1] = n_b > 3
    share[-1] = False
    lg = np.cumsum(~share) - 1
    n_lg = int(lg[-1]) + 1
    # Current members: the approximation minus 8%, plus leavers, plus the guard's big set.
    account = people["account_id"][person]
    keep = (account >= 0) & (rng.random(len(account)) >= 0.08)
    leave = row[rng.random(len(row)) < 0.03]
    everyone = np.flatnonzero(people["account_id"] >= 0)
    big = rng.choice(everyone, min(len(everyone), max(20, n_p // 4)), replace=False)
    cur_lg = np.concatenate([lg[row[keep]], lg[leave], np.full(len(big), lg[-1]),
                             np.full(5, n_lg)])
    cur_acc = np.concatenate([account[keep], n_p + rng.integers(0, n["leavers"], len(leave)),
                              big, rng.choice(everyone, 5)])
    n_acc = n_p + n["leavers"]
    pairs = np.unique(cur_lg * n_acc + cur_acc)
    pairs = np.append(pairs, pairs[rng.integers(0, len(pairs), max(1, len(pairs) // 1000))])
    # Capacities: bundles unlimited, tight or loose; pools around their bundles' total.
    r = rng.random(n_b)
    cap = np.where(r < 0.4, -1, size * np.where(r < 0.65, rng.uniform(0.5, 0.95, n_b),
                                                rng.uniform(1.05, 1.5, n_b)) + 1).astype(np.int64)
    cap[0], cap[-1] = int(size[0] * 0.8), -1
    pool = np.concatenate([np.arange(min(n_b, n_pool - 1)),
                           rng.integers(0, n_pool - 1, max(0, n_b - n_pool + 1))])
    pool_sku = np.concatenate([np.arange(min(n_pool, _POOL_SKUS)),
                               rng.integers(0, _POOL_SKUS, max(0, n_pool - _POOL_SKUS))])
    demand = np.bincount(pool, weights=np.where(cap >= 0, cap, size), minlength=n_pool)
    pool_cap = (demand * rng.uniform(0.7, 1.2, n_pool)).astype(np.int64)
    pool_cap[demand == 0] = rng.integers(5, 50, (demand == 0).sum())
    pool_cap[rng.random(n_pool) < 0.25] = -1
    pool_cap[0] = int(demand[0] * 0.85)
    price = np.round(_PRICES[pool_sku] * rng.choice([1, 0.875, 0.75], n_pool) * 8) / 8
    price[rng.random(n_pool) < 0.05] = np.nan
    threshold = np.where(rng.random(n_b) < 0.25, rng.choice([0, 5, 20, 100], n_b), -1)
    threshold[-1] = -1
    n_plans = np.where(rng.random(n_b) < 0.5, rng.integers(1, 4, n_b), 0)
    plans = pa.ListArray.from_arrays(
        pa.array(np.cumsum(np.append(0, n_plans)), pa.int32()),
        pa.array(_PLANS).take(rng.integers(0, len(_PLANS), n_plans.sum())),
        mask=pa.array(n_plans == 0))
    skus = np.append(np.arange(7), len(_SKUS) - 1)
    units = (np.bincount(pool_sku[pool], weights=size, minlength=len(_SKUS))[skus]
             * rng.uniform(0.8, 1.2, len(skus)) + rng.integers(0, 20, len(skus))).astype(np.int64)
    units[rng.random(len(skus)) < 0.2] = -1
    return {
        "pools": {"pool_id": np.arange(n_pool), "sku_id": pool_sku, "capacity": pool_cap,
                  "unit_price": price},
        "bundles": {"bundle_id": np.arange(n_b), "pool_id": pool, "license_group_id": lg,
                    "capacity": cap, "disabled_plans": plans, "revoke_threshold": threshold},
        "bundle_rules": rules,
        "license_group_members": {"license_group_id": pairs // n_acc, "account_id": pairs % n_acc},
        "skus": {"sku_id": skus, "enabled_units": units},
        "sku_conflicts": _CONFLICTS}


def _tenant(rng: np.random.Generator, n: dict[str, int]) -> dict[str, dict]:
    """One tenant's tables; id columns hold local indices per kind (-1: null)."""
    loc = _locations(rng, n["people"])
    people = _people(rng, n["people"], n["business_roles"], loc)
    members, group_csrs, full, acyclic = _groups(rng, n["people"], n["groups"],
                                                 n["memberships"])
    managers = np.flatnonzero(people["is_manager"] == 1)
    managers = managers if len(managers) else np.arange(n["people"])
    role = np.repeat(np.arange(n["roles"]), rng.integers(2, 40, n["roles"]))
    person = np.where(rng.random(len(role)) < 0.8, rng.choice(managers, len(role)),
                      rng.integers(0, n["people"], len(role)))
    csrs = {PERSON: [], GROUP: group_csrs, ROLE: [_csr(role, n["roles"], person)],
            BUSINESS_ROLE: [_csr(people["business_role_id"], n["business_roles"])]}
    groups = (full, acyclic, int(np.setdiff1d(np.arange(n["groups"]), full)[0]))
    return {"people": people, "group_members": members,
            "locations": {"location_id": np.arange(len(loc["parent"])), "parent_id": loc["parent"]},
            "role_members": {"role_id": np.append(role, role[0]),
                             "person_id": np.append(person, person[0])},
            "collections": {"collection_id": np.arange(n["collections"]),
                            "filter": pa.array(_collections(rng, n["collections"], loc["codes"]))},
            **_bundles(rng, n, people, csrs, groups, loc)}


def _readable(prefix: str, n: int) -> pa.Array:
    """``n`` ids '<prefix>-0000000', '<prefix>-0000001', ... built as one fixed-width buffer."""
    head = np.frombuffer(f"{prefix}-".encode(), np.uint8)
    width = len(head) + 7
    text = np.empty((n, width), np.uint8)
    text[:, :len(head)] = head
    text[:, len(head):] = np.arange(n)[:, None] // 10 ** np.arange(6, -1, -1) % 10 + ord("0")
    offsets = np.arange(0, width * n + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


def _id_arrays(rng: np.random.Generator, sizes: dict[str, list],
               id_type: str) -> dict[str, pa.Array]:
    """Id values per kind (block per principal kind); accounts are GUIDs when ``string``."""
    ids, block = {"sku": pa.array(_SKUS)}, 0
    for kind, prefixes in _PREFIXES.items():
        if id_type == "int64":
            ids[kind] = pa.array(np.concatenate([(block + i + 1) * 10**8 + np.arange(k)
                                                 for i, k in enumerate(sizes[kind])]))
        elif kind == "account":
            ids[kind] = _guids(rng, int(sizes[kind][0]))
        else:
            ids[kind] = pa.concat_arrays([_readable(p, int(k))
                                          for p, k in zip(prefixes, sizes[kind])])
        block += len(prefixes)
    return ids


def _arrow(col: Column, chunks: list, ids: dict[str, pa.Array], tenants: pa.Array) -> pa.Array:
    """One column's per-tenant chunks to Arrow; negative ints and NaN are nulls."""
    if isinstance(chunks[0], pa.Array):
        return pa.concat_arrays(chunks)
    return _column(col, np.concatenate(chunks), ids, tenants, _LOOKUPS)


def bundle_schema(id_type: str = "string") -> dict[str, pa.Schema]:
    """Arrow schemas of the generated tables (SKU ids are strings under both id types)."""
    id_arrow = pa.string() if id_type == "string" else pa.int64()
    return {name: pa.schema([(c.name, (pa.string() if c.id_kind == SKU else id_arrow)
                              if c.kind == "id" else _ARROW_TYPES[c.kind])
                             for c in _SPECS[name]])
            for name in BUNDLE_INPUTS}


def generate_bundles(size: str | BundleSize = "S", seed: int = 0, *,
                     id_type: str = "string") -> dict[str, pa.Table]:
    """The eleven section-3 input tables for ``size`` (a ``BUNDLE_SIZES`` name or a size)."""
    if id_type not in ("string", "int64"):
        raise ValueError(f"id_type must be 'string' or 'int64', not {id_type!r}")
    spec = BUNDLE_SIZES[size] if isinstance(size, str) else size
    fields = ("people", "groups", "memberships", "bundles")
    split = {f: _split(getattr(spec, f), spec.tenants) for f in fields}
    if split["people"].min() < 50 or split["groups"].min() < 10 or split["bundles"].min() < 4:
        raise ValueError(f"{spec} is too small: every tenant needs 50 people, 10 groups and "
                         "4 bundles")
    rng = np.random.default_rng(seed)
    per = [{f: int(split[f][t]) for f in fields} for t in range(spec.tenants)]
    for n in per:  # derived counts
        n |= {"roles": max(3, n["people"] // 200), "leavers": max(10, n["people"] // 50),
              "business_roles": int(np.clip(n["people"] // 40, 6, 48)),
              "collections": len(_FILTERS) + n["bundles"] // 5, "pools": n["bundles"] // 3 + 2}
    # Principal ids: one block per kind (persons, groups, roles, business roles, collections),
    # large enough for every tenant and its unknown ids.
    blocks = np.max([[n[k] for k in ("people", "groups", "roles", "business_roles",
                                     "collections")] for n in per], axis=0) + _EXTRA
    offset = np.cumsum(blocks) - blocks
    parts: dict[str, dict[str, list]] = {name: {} for name in BUNDLE_INPUTS}
    sizes, accounts = {"principal": blocks.tolist()}, 0
    for t, n in enumerate(per):
        for name, table in _tenant(rng, n).items():
            rows = len(next(iter(table.values())))
            cols = {"tenant_id": np.full(rows, t, np.int16), **table}
            for col in _SPECS[name]:
                v = cols[col.name]
                if col.id_kind == PRINCIPAL:  # into the block of its kind
                    kind = _PRINCIPAL_KIND[col.name]
                    v = np.where(v >= 0, v + offset[cols.get(kind, kind)], -1)
                elif col.id_kind == ACCOUNT:
                    v = np.where(v >= 0, v + accounts, -1)
                elif col.kind == "id" and col.id_kind != SKU:
                    sizes[col.id_kind] = [max(sizes.get(col.id_kind, [0])[0], v.max() + 1)]
                parts[name].setdefault(col.name, []).append(v)
        accounts += n["people"] + n["leavers"]
    ids = _id_arrays(rng, sizes | {"account": [accounts]}, id_type)
    tenants = pa.array([f"tenant-{t:02d}" for t in range(spec.tenants)])
    schemas = bundle_schema(id_type)
    return {name: pa.Table.from_arrays([_arrow(c, parts[name].pop(c.name), ids, tenants)
                                        for c in _SPECS[name]], schema=schemas[name])
            for name in BUNDLE_INPUTS}
