"""Seeded synthetic directory data for SPEC section 3 (bundle resolution).

``generate_bundles(size, seed)`` returns the eleven section-3 input tables (``people``,
``locations``, ``group_members``, ``role_members``, ``collections``, ``pools``, ``bundles``,
``bundle_rules``, ``license_group_members``, ``skus``, ``sku_conflicts``) for several tenants of
unequal size (tenant ``t`` gets a share proportional to 1 / (t + 1)). The data is valid per SPEC and
shaped like a real directory:

- people with accounts (a few without, ~3% disabled, a few ``enabled`` nulls), a business role
  from a few dozen, a leaf of a country > city > site (> floor) location tree (a few null), and
  attribute columns ``department``, ``country``, ``employee_type``, ``cost_center`` (int64) and
  ``is_manager`` (bool) with some nulls;
- groups nested five levels deep with a few back-edges (cycles, one self-membership), empty
  groups, skewed sizes, a few members that are not in ``people`` and a few duplicate rows;
  management roles drawn mostly from managers;
- collections with filters over the attribute columns (one selects nobody and escapes a quote);
- pools per SKU, one without bundles; bundles with tight, loose or unlimited capacity, disabled
  plans and revoke thresholds, a few pairs sharing a license group; rules of every (rule,
  actor_type) pair, business roles with and without a location, and unknown or empty actors;
- license groups whose current members drift from the rules (people dropped, leavers' accounts
  added), one whose current members the rules would mostly remove (the removal guard triggers)
  and one no bundle maps to; SKUs with and without enabled units and two conflicting pairs.

Everything is vectorised NumPy on one ``np.random.default_rng(seed)``. Rows hold per-tenant
local indices; ids are readable strings (``p-0000042``, per tenant) or int64 (one range per kind,
so persons, groups, roles, business roles and collections never collide), accounts are GUIDs or
int64. SKU ids are part numbers (strings) under both id types.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from licensecore.bench.datagen import _guids, _split
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
    "S": BundleSize(2, 2_000, 100, 20_000, 20),
    "M": BundleSize(3, 20_000, 1_000, 200_000, 100),
    "L": BundleSize(4, 200_000, 10_000, 2_000_000, 500),
    "XL": BundleSize(6, 1_000_000, 50_000, 10_000_000, 2_000),
}

# Actor types (and principal kinds) in the order of the schema enum; member_type shares codes.
PERSON, GROUP, ROLE, BUSINESS_ROLE, COLLECTION = range(5)
ASSIGN, EXCLUDE, ELIGIBLE, EXCLUDE_ELIGIBLE = range(4)
_PREFIXES = {"principal": ("p", "g", "r", "br", "c"), "location": ("loc",), "pool": ("pool",),
             "bundle": ("b",), "license_group": ("lg",)}
_INT_BASE = {"principal": 100_000_000, "location": 600_000_000, "pool": 700_000_000,
             "bundle": 800_000_000, "license_group": 900_000_000, "account": 1_000_000_000}
_COUNTRIES = ("DE", "AT", "CH", "FR", "GB", "NL", "SE", "ES", "IT", "US", "CA", "BR", "IN", "JP",
              "AU")
_DEPARTMENTS = ("Sales", "Engineering", "Operations", "Support", "Marketing", "Finance", "IT",
                "Research", "HR", "Legal")
_EMPLOYEE_TYPES = ("employee", "contractor", "intern")
_SKUS = ("ENTERPRISEPACK", "STANDARDPACK", "SPE_E3", "SPE_E5", "EMS", "POWER_BI_PRO",
         "VISIOCLIENT", "PROJECTPROFESSIONAL", "FLOW_FREE")
_PRICES = np.array([23.0, 12.5, 36.0, 57.0, 10.5, 10.0, 15.0, 30.0, 0.0])
_POOL_SKUS = 8  # FLOW_FREE is only in `skus`; PROJECTPROFESSIONAL only in pools
_CONFLICTS = ((0, 1), (2, 3))
_PLANS = ("SWAY", "YAMMER_ENTERPRISE", "TEAMS1", "FORMS_PLAN_E3", "KAIZALA_O365_P3",
          "MCOSTANDARD", "SHAREPOINTWAC", "BPOS_S_TODO_2")
_FILTERS = (
    "department == 'O''Brien & Partners' and is_manager == true",  # selects nobody
    "department == '{d}' and employee_type != 'intern'",
    "country in ('{c}', '{c2}')",
    "cost_center >= {n}",
    "is_manager == true",
    "location_id is not null and employee_type == 'employee'",
    "not (employee_type == 'contractor') and country == '{c}'",
    "(department == '{d}' or department == '{d2}') and is_manager == false",
    "employee_type in ('contractor', 'intern') and cost_center is not null",
    "country is null or business_role_id is null",
    "cost_center < {n} and department != '{d}'",
)
ATTRIBUTES = (Column("department", "string", None), Column("country", "string", None),
              Column("employee_type", "string", None), Column("cost_center", "int64", None),
              Column("is_manager", "bool", None))
_LOOKUPS = {"department": _DEPARTMENTS, "country": _COUNTRIES, "employee_type": _EMPLOYEE_TYPES}
_ARROW = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
          "string_list": pa.list_(pa.string())}
_EXTRA = np.array([4, 1, 1, 1, 0])  # unknown ids per principal kind beyond the real ones
# Principal kind of each principal column: a constant or the column holding it.
_PRINCIPAL_KIND = {"person_id": PERSON, "business_role_id": BUSINESS_ROLE, "group_id": GROUP,
                   "role_id": ROLE, "collection_id": COLLECTION, "member_id": "member_type",
                   "actor_id": "actor_type"}


def _counts(n_people: int, n_bundles: int) -> dict[str, int]:
    """Derived per-tenant counts: roles, business roles, collections, pools, leaver accounts."""
    return {"roles": max(3, n_people // 200), "business_roles": int(np.clip(n_people // 40, 6, 48)),
            "collections": len(_FILTERS) + n_bundles // 5, "pools": max(3, n_bundles // 3 + 2),
            "leavers": max(10, n_people // 50)}


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
    parent = np.concatenate([np.full(n_c, -1)] + [
        start + np.repeat(np.arange(len(k)), k) for start, k in zip(sizes, (cities, sites, floors))])
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
    return {"person_id": np.arange(n), "account_id": np.where(rng.random(n) < 0.975, np.arange(n), -1),
            "enabled": enabled, "business_role_id": role, "location_id": location,
            "department": dept, "country": country,
            "employee_type": np.where(rng.random(n) < 0.01, -1,
                                      rng.choice(3, n, p=[0.85, 0.12, 0.03])),
            "cost_center": cost, "is_manager": np.where(rng.random(n) < 0.01, -1,
                                                        rng.random(n) < 0.08).astype(np.int8)}


def _groups(rng: np.random.Generator, n_people: int, n_groups: int,
            n_edges: int) -> tuple[dict[str, np.ndarray], tuple, np.ndarray]:
    """Nested groups (levels 0-4), back-edges, empty leaves; members are contiguous blocks of a
    permutation of the people, so a group never lists a person twice by chance.

    Returns group_members (local ids, member kind in ``member_type``), the person CSR by group,
    and the non-empty groups.
    """
    level = np.searchsorted([0.1, 0.3, 0.6, 0.85], np.arange(n_groups) / n_groups, "right")
    level = level[rng.permutation(n_groups)]
    leaves = np.flatnonzero(level == 4)
    empty = np.zeros(n_groups, bool)
    empty[rng.choice(leaves, max(1, min(len(leaves) - 1, n_groups // 25)), replace=False)] = True
    parent = np.full(n_groups, -1)
    extra_child, extra_parent = [], []
    for k in range(1, 5):
        kids, cands = np.flatnonzero(level == k), np.flatnonzero((level == k - 1) & ~empty)
        parent[kids] = cands[rng.integers(0, len(cands), len(kids))]
        two = kids[rng.random(len(kids)) < 0.1]
        extra_child.append(two)
        extra_parent.append(cands[rng.integers(0, len(cands), len(two))])
    # Back-edges: a group gets one of its ancestors (or, once, itself) as a member.
    back = rng.choice(np.flatnonzero((level >= 1) & (level <= 3)), max(2, n_groups // 100))
    up = rng.integers(1, level[back] + 1)
    up[0] = 0
    ancestor = back.copy()
    for step in range(4):
        ancestor = np.where(up > step, parent[ancestor], ancestor)
    nested = np.flatnonzero(parent >= 0)
    g_group = np.concatenate([parent[nested], *extra_parent, back])
    g_member = np.concatenate([nested, *extra_child, ancestor])
    full = np.flatnonzero(~empty)
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
    kind = np.concatenate([np.full(len(g_group), GROUP), np.full(len(group) - len(g_group), PERSON)])
    dup = rng.integers(0, len(group), max(1, len(group) // 2000))
    return ({"group_id": np.append(group, group[dup]), "member_type": np.append(kind, kind[dup]),
             "member_id": np.append(member, member[dup])}, csr, full)


def _collections(rng: np.random.Generator, n: int, countries: np.ndarray) -> list[str]:
    """Filters: every template once, then random ones, with this tenant's values filled in."""
    which = np.concatenate([np.arange(len(_FILTERS)), rng.integers(1, len(_FILTERS),
                                                                   n - len(_FILTERS))])
    d = rng.choice(len(_DEPARTMENTS), (n, 2), replace=True)
    c = rng.choice(countries, (n, 2))
    num = rng.choice([2000, 3000, 4000, 5000], n)
    return [_FILTERS[w].format(d=_DEPARTMENTS[a], d2=_DEPARTMENTS[b], c=_COUNTRIES[x],
                               c2=_COUNTRIES[y], n=k)
            for w, (a, b), (x, y), k in zip(which, d, c, num)]


def _actors(rng: np.random.Generator, kind: np.ndarray, sizes: np.ndarray,
            full_groups: np.ndarray) -> np.ndarray:
    """A random existing local id of ``kind`` per row (groups: non-empty ones)."""
    idx = (rng.random(len(kind)) * sizes[kind]).astype(np.int64)
    return np.where(kind == GROUP, full_groups[np.minimum(idx, len(full_groups) - 1)], idx)


def _rules(rng: np.random.Generator, n_b: int, sizes: np.ndarray, full: np.ndarray,
           empty_group: int, loc: dict) -> dict[str, np.ndarray]:
    """Rules: each bundle's primary assign rule (the first ``n_b`` rows), every (rule, actor_type)
    pair, random rules, unknown or empty actors and a duplicate row. The last bundle (the guard
    bundle) only assigns role 0; all other rules go to the other bundles."""
    n_more = 2 * n_b
    primary = rng.choice([GROUP, BUSINESS_ROLE, ROLE], n_b, p=[0.7, 0.2, 0.1])
    primary[-1] = ROLE
    cover_rule = np.repeat(np.arange(4), 5)
    kind = np.concatenate([primary, np.tile(np.arange(5), 4),
                           rng.choice(5, n_more, p=[0.15, 0.35, 0.1, 0.15, 0.25])])
    actor = _actors(rng, kind, sizes, full)
    actor[n_b - 1] = 0
    # Unknown person, group, role and business role; an empty group; the nobody collection.
    bad_kind = np.array([PERSON, GROUP, ROLE, BUSINESS_ROLE, GROUP, COLLECTION])
    kind = np.concatenate([kind, bad_kind])
    actor = np.concatenate([actor, sizes[bad_kind[:4]], [empty_group, 0]])
    rule = np.concatenate([np.full(n_b, ASSIGN), cover_rule,
                           rng.choice(4, n_more, p=[0.3, 0.3, 0.25, 0.15]),
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


def _bundles(rng: np.random.Generator, n: dict[str, int], people: dict, csrs: list,
             full: np.ndarray, empty_group: int, loc: dict) -> dict[str, dict]:
    """Pools, bundles, rules, current license group members (with drift), SKUs and conflicts."""
    n_b, n_pool, n_p = n["bundles"], n["pools"], n["people"]
    sizes = np.array([n_p, n["groups"], n["roles"], n["business_roles"], n["collections"]])
    rules = _rules(rng, n_b, sizes, full, empty_group, loc)
    # Members of each primary actor approximate what the bundle resolves to.
    kind, actor, limit = (rules[k][:n_b] for k in ("actor_type", "actor_id", "location_id"))
    rows, person = [], []
    for k, csr in zip((GROUP, ROLE, BUSINESS_ROLE), csrs):
        b = np.flatnonzero(kind == k)
        at, who = _gather(csr, actor[b])
        rows.append(b[at])
        person.append(who)
    row, person = np.concatenate(rows), np.concatenate(person)
    where = people["location_id"][person]
    keep = (limit[row] < 0) | ((where >= 0) & ((loc["country"][where] == limit[row])
                                               | (loc["city"][where] == limit[row])))
    row, person = row[keep], person[keep]
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
                                                rng.uniform(1.05, 1.5, n_b)) + (r >= 0.65))
    cap = cap.astype(np.int64)
    cap[0], cap[-1] = int(size[0] * 0.6), -1
    pool = np.concatenate([np.arange(min(n_b, n_pool - 1)),
                           rng.integers(0, n_pool - 1, max(0, n_b - n_pool + 1))])
    pool_sku = np.concatenate([np.arange(min(n_pool, _POOL_SKUS)),
                               rng.integers(0, _POOL_SKUS, max(0, n_pool - _POOL_SKUS))])
    demand = np.bincount(pool, weights=np.where(cap >= 0, cap, size), minlength=n_pool)
    pool_cap = (demand * rng.uniform(0.7, 1.2, n_pool)).astype(np.int64)
    pool_cap[demand == 0] = rng.integers(5, 50, (demand == 0).sum())
    pool_cap[rng.random(n_pool) < 0.25] = -1
    pool_cap[0] = int(demand[0] * 0.5)
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
    units = np.bincount(pool_sku[pool], weights=size, minlength=len(_SKUS))[skus]
    units = (units * rng.uniform(0.8, 1.2, len(skus))).astype(np.int64) + rng.integers(0, 20, len(skus))
    units[rng.random(len(skus)) < 0.2] = -1
    return {
        "pools": {"pool_id": np.arange(n_pool), "sku_id": pool_sku, "capacity": pool_cap,
                  "unit_price": price},
        "bundles": {"bundle_id": np.arange(n_b), "pool_id": pool, "license_group_id": lg,
                    "capacity": cap, "disabled_plans": plans, "revoke_threshold": threshold},
        "bundle_rules": rules,
        "license_group_members": {"license_group_id": pairs // n_acc, "account_id": pairs % n_acc},
        "skus": {"sku_id": skus, "enabled_units": units},
        "sku_conflicts": {"sku_a": np.array([a for a, _ in _CONFLICTS]),
                          "sku_b": np.array([b for _, b in _CONFLICTS])},
    }


def _tenant(rng: np.random.Generator, n: dict[str, int]) -> dict[str, dict]:
    """One tenant's tables; id columns hold local indices per kind (-1: null)."""
    loc = _locations(rng, n["people"])
    people = _people(rng, n["people"], n["business_roles"], loc)
    members, group_csr, full = _groups(rng, n["people"], n["groups"], n["memberships"])
    managers = np.flatnonzero(people["is_manager"] == 1)
    if not len(managers):
        managers = np.arange(n["people"])
    role = np.repeat(np.arange(n["roles"]), rng.integers(2, 40, n["roles"]))
    person = np.where(rng.random(len(role)) < 0.8, rng.choice(managers, len(role)),
                      rng.integers(0, n["people"], len(role)))
    csrs = [group_csr, _csr(role, n["roles"], person),
            _csr(people["business_role_id"], n["business_roles"])]
    empty_group = int(np.setdiff1d(np.arange(n["groups"]), full)[0])
    return {"people": people,
            "locations": {"location_id": np.arange(len(loc["parent"])), "parent_id": loc["parent"]},
            "group_members": members,
            "role_members": {"role_id": np.append(role, role[0]),
                             "person_id": np.append(person, person[0])},
            "collections": {"collection_id": np.arange(n["collections"]),
                            "filter": pa.array(_collections(rng, n["collections"], loc["codes"]))},
            **_bundles(rng, n, people, csrs, full, empty_group, loc)}


def _readable(prefix: str, n: int) -> pa.Array:
    """``n`` ids '<prefix>-0000000', '<prefix>-0000001', ... built as one fixed-width buffer."""
    head = np.frombuffer(f"{prefix}-".encode(), np.uint8)
    width = len(head) + 7
    text = np.empty((n, width), np.uint8)
    text[:, :len(head)] = head
    text[:, len(head):] = np.arange(n)[:, None] // 10 ** np.arange(6, -1, -1) % 10 + ord("0")
    offsets = np.arange(0, width * n + 1, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


def _id_arrays(rng: np.random.Generator, sizes: dict[str, np.ndarray],
               id_type: str) -> dict[str, pa.Array]:
    """Id values per kind (block per principal kind); accounts are GUIDs when ``string``."""
    ids = {"sku": pa.array(_SKUS)}
    for kind, blocks in sizes.items():
        if kind == "account" and id_type == "string":
            ids[kind] = _guids(rng, int(blocks[0]))
        elif id_type == "string":
            ids[kind] = pa.concat_arrays([_readable(p, int(k)) for p, k in
                                          zip(_PREFIXES[kind], blocks)])
        else:
            ids[kind] = pa.array(np.concatenate([_INT_BASE[kind] * (i + 1) + np.arange(k)
                                                 for i, k in enumerate(blocks)]))
    return ids


def _arrow(col: Column, chunks: list, ids: dict[str, pa.Array], tenants: pa.Array) -> pa.Array:
    """One column's per-tenant chunks to Arrow; negative ints and NaN are nulls."""
    if isinstance(chunks[0], pa.Array):
        return pa.concat_arrays(chunks)
    v = np.concatenate(chunks)
    null = np.isnan(v) if v.dtype.kind == "f" else v < 0
    mask = null if null.any() else None
    if col.kind == "tenant":
        return tenants.take(v)
    if col.kind == "id":
        return ids[col.id_kind].take(pa.array(v, mask=mask))
    if col.kind in ("enum", "string"):
        return pa.array(col.values or _LOOKUPS[col.name]).take(pa.array(v, mask=mask))
    if col.kind == "bool":
        return pa.array(v == 1, mask=mask)
    return pa.array(v, _ARROW[col.kind], mask=mask)


def _columns(name: str) -> tuple[Column, ...]:
    return BUNDLE_INPUTS[name] + (ATTRIBUTES if name == "people" else ())


def bundle_schema(id_type: str = "string") -> dict[str, pa.Schema]:
    """Arrow schemas of the generated tables (SKU ids are strings under both id types)."""
    id_arrow = pa.string() if id_type == "string" else pa.int64()
    return {name: pa.schema([(c.name, (pa.string() if c.id_kind == SKU else id_arrow)
                              if c.kind == "id" else _ARROW.get(c.kind, pa.string()))
                             for c in _columns(name)])
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
    per = [n | _counts(n["people"], n["bundles"]) for n in per]
    # Principal ids: one block per kind (persons, groups, roles, business roles, collections),
    # large enough for every tenant and its unknown ids.
    blocks = np.max([[n[k] for k in ("people", "groups", "roles", "business_roles",
                                     "collections")] for n in per], axis=0) + _EXTRA
    offset = np.cumsum(blocks) - blocks
    parts: dict[str, dict[str, list]] = {name: {} for name in BUNDLE_INPUTS}
    sizes = {"principal": blocks, "account": np.zeros(1, np.int64)}
    for t, n in enumerate(per):
        for name, cols in _tenant(rng, n).items():
            rows = len(next(iter(cols.values())))
            cols = {"tenant_id": np.full(rows, t, np.int16), **cols}
            for col in _columns(name):
                v = cols[col.name]
                if col.id_kind == PRINCIPAL:
                    kind = _PRINCIPAL_KIND[col.name]
                    v = np.where(v >= 0, v + offset[cols[kind] if isinstance(kind, str) else kind], -1)
                elif col.id_kind == ACCOUNT:
                    v = np.where(v >= 0, v + sizes["account"][0], -1)
                elif col.kind == "id" and col.id_kind != SKU:
                    sizes[col.id_kind] = np.maximum(sizes.get(col.id_kind, [0]), [v.max() + 1])
                parts[name].setdefault(col.name, []).append(v)
        sizes["account"] += n["people"] + n["leavers"]
    ids = _id_arrays(rng, sizes, id_type)
    tenants = pa.array([f"tenant-{t:02d}" for t in range(spec.tenants)])
    schemas = bundle_schema(id_type)
    return {name: pa.Table.from_arrays(
                [_arrow(c, parts[name].pop(c.name), ids, tenants) for c in _columns(name)], schema=schemas[name])
            for name in BUNDLE_INPUTS}
