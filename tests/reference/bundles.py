"""Slow, plain-Python reference of SPEC section 3 (bundle resolution), straight from the text.

One tenant at a time, with sets, dicts and loops; readable rather than fast. It assumes valid input
(validation is tested elsewhere) but applies defaults and dedupes link tables. Comments quote the
SPEC sentence each step implements; "Decision n" marks item n of "Bundle resolution" in
docs/decisions.md. Collection filters (SPEC 3.4) have their own tiny interpreter here, independent
of the engine's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from .consumption import REQUIRED, _read, _sortable

Id = str | int
Row = dict[str, Any]
Rows = dict[str, list[Row]]


# SPEC 3.1: the columns section 3 reads, with their defaults ("Extra columns are ignored (except
# `people`, where extra string columns are attributes for collections)").
INPUT_COLUMNS: dict[str, dict[str, object]] = {
    "people": {
        "tenant_id": REQUIRED,
        "person_id": REQUIRED,
        "account_id": None,
        "enabled": True,
        "business_role_id": None,
        "location_id": None,
    },
    "locations": {"tenant_id": REQUIRED, "location_id": REQUIRED, "parent_id": None},
    "group_members": {
        "tenant_id": REQUIRED, "group_id": REQUIRED, "member_type": REQUIRED, "member_id": REQUIRED,
    },
    "role_members": {"tenant_id": REQUIRED, "role_id": REQUIRED, "person_id": REQUIRED},
    "collections": {"tenant_id": REQUIRED, "collection_id": REQUIRED, "filter": REQUIRED},
    "pools": {
        "tenant_id": REQUIRED, "pool_id": REQUIRED, "sku_id": REQUIRED, "capacity": None,
        "unit_price": 0.0,
    },
    "bundles": {
        "tenant_id": REQUIRED,
        "bundle_id": REQUIRED,
        "pool_id": REQUIRED,
        "license_group_id": REQUIRED,
        "capacity": None,
        "revoke_threshold": None,
    },
    "bundle_rules": {
        "tenant_id": REQUIRED,
        "bundle_id": REQUIRED,
        "rule": REQUIRED,
        "actor_type": REQUIRED,
        "actor_id": REQUIRED,
        "location_id": None,
    },
    "license_group_members": {
        "tenant_id": REQUIRED, "license_group_id": REQUIRED, "account_id": REQUIRED,
    },
    "skus": {"tenant_id": REQUIRED, "sku_id": REQUIRED, "enabled_units": None},
    "sku_conflicts": {"tenant_id": REQUIRED, "sku_a": REQUIRED, "sku_b": REQUIRED},
}

# SPEC 3.3: the output columns in order; the bold ones are the sort key.
OUTPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "bundle_assignees": ("tenant_id", "bundle_id", "person_id", "account_id", "status"),
    "fulfillment": ("tenant_id", "license_group_id", "op", "account_id", "bundle_id", "status"),
    "bundle_summary": (
        "tenant_id", "bundle_id", "pool_id", "assigned", "excluded", "resultant", "granted",
        "over_capacity", "adds", "removes",
    ),
    "pool_summary": (
        "tenant_id", "pool_id", "sku_id", "capacity", "bundle_capacity", "granted",
        "over_capacity", "monthly_cost", "annual_cost", "overcommitted",
    ),
    "sku_summary": ("tenant_id", "sku_id", "enabled_units", "seats", "shortfall"),
    "eligibility": ("tenant_id", "bundle_id", "person_id"),
    "conflicts": ("tenant_id", "person_id", "kind", "sku_ids", "bundle_ids"),
    "warnings": ("tenant_id", "table", "kind", "id", "message"),
}
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "bundle_assignees": ("tenant_id", "bundle_id", "person_id"),
    "fulfillment": ("tenant_id", "license_group_id", "op", "account_id"),
    "bundle_summary": ("tenant_id", "bundle_id"),
    "pool_summary": ("tenant_id", "pool_id"),
    "sku_summary": ("tenant_id", "sku_id"),
    "eligibility": ("tenant_id", "bundle_id", "person_id"),
    "conflicts": ("tenant_id", "person_id", "kind", "sku_ids"),
    "warnings": ("tenant_id", "table", "kind", "id"),
}


def reference_bundles(
    tables: Mapping[str, pa.Table], *, max_remove_fraction: float = 0.5, guard_min_members: int = 10
) -> Rows:
    """SPEC section 3 on Arrow input tables; each output table as a sorted list of row dicts."""
    rows = {name: _read(tables.get(name), columns) for name, columns in INPUT_COLUMNS.items()}
    # `people` keeps its other columns: "any other string column is an attribute for collections".
    people = tables.get("people")
    for row, raw in zip(rows["people"], [] if people is None else people.to_pylist()):
        row.update({k: v for k, v in raw.items() if k not in row})
    # "the result for each tenant is exactly the result of computing that tenant alone."
    tenants = {row["tenant_id"] for table_rows in rows.values() for row in table_rows}
    out: Rows = {name: [] for name in OUTPUT_COLUMNS}
    for tenant in tenants:
        alone = {name: [r for r in rs if r["tenant_id"] == tenant] for name, rs in rows.items()}
        produced = _Tenant(tenant, alone, max_remove_fraction, guard_min_members).compute()
        for name, table_rows in produced.items():
            out[name].extend(table_rows)
    # "Output rows are sorted by tenant_id and then by the key columns listed per table."
    result = {
        name: sorted(out[name], key=lambda row, n=name: [_sortable(row[k]) for k in SORT_KEYS[n]])
        for name in OUTPUT_COLUMNS
    }
    # Decision 9: conflicts list "the ids as strings, ascending in id order"; the lists were kept
    # as ids until now so that rows sort by sku_ids in id order too.
    for row in result["conflicts"]:
        row["sku_ids"] = [str(s) for s in row["sku_ids"]]
        row["bundle_ids"] = [str(b) for b in row["bundle_ids"]]
    return result


# ----- 3.4 Collection filters ---------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<symbol>==|!=|<=|>=|<|>|\(|\)|,)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens of a filter: string, number, symbol or word."""
    tokens, position = [], 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        assert match is not None, f"unparsable filter {text!r} at {position}"
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Filter:
    """One evaluation of a tokenized filter against one `people` row, by recursive descent."""

    def __init__(self, tokens: list[tuple[str, str]], row: Row) -> None:
        self.tokens, self.row, self.at = tokens, row, 0

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        self.at += 1
        return self.tokens[self.at - 1]

    def expr(self) -> bool:
        # "expr := term ('or' term)*" (every term is parsed, so no short-circuit)
        value = self.term()
        while self.peek() == "or":
            self.take()
            value = self.term() or value
        return value

    def term(self) -> bool:
        # "term := factor ('and' factor)*"
        value = self.factor()
        while self.peek() == "and":
            self.take()
            value = self.factor() and value
        return value

    def factor(self) -> bool:
        # "factor := 'not' factor" ("Logic is two-valued: ... `not` of it is true.")
        if self.peek() == "not":
            self.take()
            return not self.factor()
        # "| '(' expr ')'"
        if self.peek() == "(":
            self.take()
            value = self.expr()
            self.take()  # ')'
            return value
        value = self.row[self.take()[1]]  # the column's value in this row
        keyword = self.take()[1]
        # "| column 'is' ['not'] 'null'"
        if keyword == "is":
            negated = self.peek() == "not"
            if negated:
                self.take()
            self.take()  # 'null'
            return (value is None) != negated
        # "| column 'in' '(' literal (',' literal)* ')'"
        if keyword == "in":
            self.take()  # '('
            literals = [self.literal()]
            while self.take()[1] == ",":
                literals.append(self.literal())
            # "A comparison with a null value is false."
            return value is not None and any(value == literal for literal in literals)
        # "| column op literal", "op ∈ {==, !=, <, <=, >, >=}"
        literal = self.literal()
        return value is not None and _COMPARE[keyword](value, literal)

    def literal(self) -> Any:
        # "literals are single-quoted strings (`''` escapes a quote), numbers, `true`, `false`."
        kind, text = self.take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text) if "." in text else int(text)
        return text == "true"


def evaluate(text: str, row: Row) -> bool:
    """Whether the collection filter ``text`` selects the `people` row ``row``."""
    return _Filter(tokenize(text), row).expr()


# ----- 3.2 Rules, 3.3 Outputs ---------------------------------------------------------------------


class _Tenant:
    """Section 3 for the rows of one tenant."""

    def __init__(
        self, tenant: str, rows: Mapping[str, list[Row]], fraction: float, min_members: int
    ) -> None:
        self.tenant, self.fraction, self.min_members = tenant, fraction, min_members
        self.people = {r["person_id"]: r for r in rows["people"]}
        self.parent = {r["location_id"]: r["parent_id"] for r in rows["locations"]}
        # "Duplicate rows in link tables (..., group_members, role_members,
        # license_group_members, ..., bundle_rules) count once."
        self.group_members: dict[Id, set[tuple[str, Id]]] = {}
        for r in rows["group_members"]:
            member = (r["member_type"], r["member_id"])
            self.group_members.setdefault(r["group_id"], set()).add(member)
        self.role_members: dict[Id, set[Id]] = {}
        for r in rows["role_members"]:
            self.role_members.setdefault(r["role_id"], set()).add(r["person_id"])
        self.filters = {r["collection_id"]: r["filter"] for r in rows["collections"]}
        self.pools = {r["pool_id"]: r for r in rows["pools"]}
        self.bundles = {r["bundle_id"]: r for r in rows["bundles"]}
        self.rules = {
            (r["bundle_id"], r["rule"], r["actor_type"], r["actor_id"], r["location_id"])
            for r in rows["bundle_rules"]
        }
        # Decision 6: "desired and current are sets of distinct account_ids".
        self.current: dict[Id, set[Id]] = {}
        for r in rows["license_group_members"]:
            self.current.setdefault(r["license_group_id"], set()).add(r["account_id"])
        self.enabled_units = {r["sku_id"]: r["enabled_units"] for r in rows["skus"]}
        # Decision 9: "An sku_conflicts pair counts once whichever way round or however often it
        # is listed; a pair of an SKU with itself is ignored".
        self.exclusive = {
            tuple(sorted((r["sku_a"], r["sku_b"]))) for r in rows["sku_conflicts"]
            if r["sku_a"] != r["sku_b"]
        }

    # ----- members(actor) -------------------------------------------------------------------------

    def members(self, actor_type: str, actor_id: Id, location: Id | None) -> set[Id]:
        # "Members are limited to people in `people`."
        return self.candidates(actor_type, actor_id, location) & set(self.people)

    def candidates(self, actor_type: str, actor_id: Id, location: Id | None) -> set[Id]:
        # "a person is itself" (Decision 2: "when it is in `people`, else to nobody")
        if actor_type == "person":
            return {actor_id}
        # "a group is every person reachable through `group_members`, transitively" ("Groups
        # nest; cycles are allowed.")
        if actor_type == "group":
            persons, seen, stack = set(), {actor_id}, [actor_id]
            while stack:
                for member_type, member in self.group_members.get(stack.pop(), ()):
                    if member_type == "person":
                        persons.add(member)
                    elif member not in seen:
                        seen.add(member)
                        stack.append(member)
            return persons
        # "a role is its `role_members`"
        if actor_type == "role":
            return self.role_members.get(actor_id, set())
        # "a business_role is the people whose `business_role_id` is the actor and whose
        # `location_id` is `location_id` or below it in `locations` (any location when null)"
        if actor_type == "business_role":
            return {
                p for p, person in self.people.items()
                if person["business_role_id"] == actor_id
                and (location is None or self.within(person["location_id"], location))
            }
        # "a collection is the people its filter selects" (an unknown collection: nobody)
        text = self.filters.get(actor_id)
        if text is None:
            return set()
        return {p for p, person in self.people.items() if evaluate(text, person)}

    def within(self, location: Id | None, top: Id) -> bool:
        # "a person with a null location never matches a location-limited rule"; Decision 2: "a
        # location id not in `locations` matches itself only".
        while location is not None:
            if location == top:
                return True
            location = self.parent.get(location)
        return False

    # ----- the rules of 3.2 -----------------------------------------------------------------------

    def compute(self) -> Rows:
        """The eight output tables of this tenant, unsorted."""
        t = self.tenant
        out: Rows = {name: [] for name in OUTPUT_COLUMNS}
        sets: dict[Id, dict[str, set[Id]]] = {
            b: {rule: set() for rule in ("assign", "exclude", "eligible", "exclude_eligible")}
            for b in self.bundles
        }
        empty: set[tuple[str, Id]] = set()
        for bundle_id, rule, actor_type, actor_id, location in self.rules:
            members = self.members(actor_type, actor_id, location)
            # "assigned(b) = union of members over `assign` rules; excluded(b) = union over
            # `exclude` rules" (and likewise for the eligible rules)
            sets[bundle_id][rule] |= members
            # "An actor that resolves to nobody is reported in `warnings`." (Decision 3: one row
            # per (actor_type, actor_id), whatever the rule)
            if not members:
                empty.add((actor_type, actor_id))
        for actor_type, actor_id in empty:
            out["warnings"].append({
                "tenant_id": t,
                "table": "bundle_rules",
                "kind": f"empty_{actor_type}",
                "id": str(actor_id),
                "message": f"{actor_type} {actor_id} resolves to nobody",
            })

        status: dict[tuple[Id, Id], str] = {}
        order: dict[Id, list[Id]] = {}
        resultants: dict[Id, set[Id]] = {}
        for b in sorted(self.bundles):
            s = sets[b]
            # "resultant(b) = assigned(b) − excluded(b)."
            resultant = s["assign"] - s["exclude"]
            # "eligible(b) = union over `eligible` rules − union over `exclude_eligible` rules −
            # excluded(b)." ("`eligibility` is not filtered by enabled or account.")
            for p in s["eligible"] - s["exclude_eligible"] - s["exclude"]:
                out["eligibility"].append({"tenant_id": t, "bundle_id": b, "person_id": p})
            fulfillable = []
            for p in resultant:
                person = self.people[p]
                # "A resultant person is fulfillable when enabled and with an account_id;
                # otherwise status `disabled` or `no_account`." ("A person both disabled and
                # without an account is `disabled`.")
                if not person["enabled"]:
                    status[b, p] = "disabled"
                elif person["account_id"] is None:
                    status[b, p] = "no_account"
                else:
                    fulfillable.append(p)
            # "order the fulfillable people of b: current holders (account_id in b's license
            # group now) first, then the rest, each in ascending person_id; the first `capacity`
            # are granted, the rest `over_bundle_capacity`."
            current = self.current.get(self.bundles[b]["license_group_id"], set())
            order[b] = sorted(
                fulfillable, key=lambda p: (self.people[p]["account_id"] not in current, p)
            )
            capacity = self.bundles[b]["capacity"]
            for index, p in enumerate(order[b]):
                granted = capacity is None or index < capacity
                status[b, p] = "granted" if granted else "over_bundle_capacity"
            resultants[b] = resultant

        # "Then per pool, bundles in ascending bundle_id, people in the same order: grants beyond
        # the pool's capacity become `over_pool_capacity`." ("Pool capacity counts grants
        # (bundle, person), not distinct people.")
        for pool_id, pool in self.pools.items():
            grants = 0
            for b in sorted(b for b, row in self.bundles.items() if row["pool_id"] == pool_id):
                for p in order[b]:
                    if status[b, p] == "granted":
                        grants += 1
                        if pool["capacity"] is not None and grants > pool["capacity"]:
                            status[b, p] = "over_pool_capacity"

        for (b, p), st in status.items():
            out["bundle_assignees"].append({
                "tenant_id": t, "bundle_id": b, "person_id": p,
                "account_id": self.people[p]["account_id"], "status": st,
            })
        granted = {b: [p for p in order[b] if status[b, p] == "granted"] for b in self.bundles}
        adds, removes = self.fulfillment(granted, out["fulfillment"])

        for b, bundle in self.bundles.items():
            s = sets[b]
            statuses = [status[b, p] for p in resultants[b]]
            out["bundle_summary"].append({
                "tenant_id": t,
                "bundle_id": b,
                "pool_id": bundle["pool_id"],
                "assigned": len(s["assign"]),
                # "`bundle_summary.excluded` = |assigned ∩ excluded|"
                "excluded": len(s["assign"] & s["exclude"]),
                "resultant": len(resultants[b]),
                "granted": statuses.count("granted"),
                # "`over_capacity` (both kinds)"
                "over_capacity": sum(st.startswith("over_") for st in statuses),
                # "`adds` (adds that name this bundle), `removes` (removes of its license group)"
                "adds": adds.get(b, 0),
                "removes": removes[bundle["license_group_id"]],
            })
        self.pool_summary(status, out["pool_summary"])
        self.sku_summary(granted, out["sku_summary"])
        self.conflicts(granted, out["conflicts"])
        return out

    def fulfillment(
        self, granted: Mapping[Id, list[Id]], out: list[Row]
    ) -> tuple[dict[Id, int], dict[Id, int]]:
        """Fulfillment rows; returns the adds per naming bundle and the removes per group."""
        adds: dict[Id, int] = {}
        removes: dict[Id, int] = {}
        # "Only license groups that some bundle maps to get fulfillment rows; other groups are
        # never touched."
        for group in {bundle["license_group_id"] for bundle in self.bundles.values()}:
            bundles = sorted(
                b for b, row in self.bundles.items() if row["license_group_id"] == group
            )
            # "Desired members of a license group: the account_ids granted by any bundle with that
            # `license_group_id`." An add names "the first granting bundle" (Decision 6: the
            # smallest bundle_id).
            desired: dict[Id, Id] = {}
            for b in bundles:
                for p in granted[b]:
                    desired.setdefault(self.people[p]["account_id"], b)
            current = self.current.get(group, set())
            # "adds = desired − current; removes = current − desired." "Adds are always `ready`."
            for account in set(desired) - current:
                out.append({
                    "tenant_id": self.tenant, "license_group_id": group, "op": "add",
                    "account_id": account, "bundle_id": desired[account], "status": "ready",
                })
                adds[desired[account]] = adds.get(desired[account], 0) + 1
            gone = current - set(desired)
            removes[group] = len(gone)
            # "the removes of a group are `needs_approval` instead of `ready` when their count
            # exceeds the smallest `revoke_threshold` of the bundles mapped to the group, or
            # exceeds `max_remove_fraction` of the group's current members for a group of at least
            # `guard_min_members`" ("smallest non-null", "distinct current accounts, strictly (>),
            # and applies to all of the group's removes together")
            thresholds = [
                self.bundles[b]["revoke_threshold"] for b in bundles
                if self.bundles[b]["revoke_threshold"] is not None
            ]
            guarded = (bool(thresholds) and len(gone) > min(thresholds)) or (
                len(current) >= self.min_members and len(gone) > self.fraction * len(current)
            )
            for account in gone:
                out.append({
                    "tenant_id": self.tenant, "license_group_id": group, "op": "remove",
                    "account_id": account, "bundle_id": None,
                    "status": "needs_approval" if guarded else "ready",
                })
        return adds, removes

    def pool_summary(self, status: Mapping[tuple[Id, Id], str], out: list[Row]) -> None:
        for pool_id, pool in self.pools.items():
            bundles = [row for row in self.bundles.values() if row["pool_id"] == pool_id]
            of_pool = [st for (b, _), st in status.items() if self.bundles[b]["pool_id"] == pool_id]
            # "`bundle_capacity` (sum; null if any unlimited)"; "`bundle_capacity` 0 for a pool
            # with no bundles"
            capacities = [row["capacity"] for row in bundles]
            bundle_capacity = None if None in capacities else sum(capacities)
            granted = of_pool.count("granted")
            monthly = float(granted * pool["unit_price"])  # "`monthly_cost` (granted × unit_price)"
            out.append({
                "tenant_id": self.tenant,
                "pool_id": pool_id,
                "sku_id": pool["sku_id"],
                "capacity": pool["capacity"],
                "bundle_capacity": bundle_capacity,
                "granted": granted,
                "over_capacity": sum(st.startswith("over_") for st in of_pool),
                "monthly_cost": monthly,
                "annual_cost": 12.0 * monthly,  # "`annual_cost` = 12 × monthly"
                # "`overcommitted` is true when the pool has a capacity and the bundle capacity is
                # unlimited or larger"
                "overcommitted": pool["capacity"] is not None
                and (bundle_capacity is None or bundle_capacity > pool["capacity"]),
            })

    def sku_summary(self, granted: Mapping[Id, list[Id]], out: list[Row]) -> None:
        # "`sku_summary` rows: SKUs of `skus` and of pools together"
        for sku in set(self.enabled_units) | {pool["sku_id"] for pool in self.pools.values()}:
            # "`seats` (distinct granted accounts)"; Decision 8: "over the bundles whose pool has
            # that sku_id".
            seats = len({
                self.people[p]["account_id"]
                for b, bundle in self.bundles.items()
                if self.pools[bundle["pool_id"]]["sku_id"] == sku
                for p in granted[b]
            })
            units = self.enabled_units.get(sku)
            out.append({
                "tenant_id": self.tenant,
                "sku_id": sku,
                "enabled_units": units,
                "seats": seats,
                # "`shortfall` (max(0, seats − enabled_units))"; "a null `enabled_units` gives a
                # null `shortfall`."
                "shortfall": None if units is None else max(0, seats - units),
            })

    def conflicts(self, granted: Mapping[Id, list[Id]], out: list[Row]) -> None:
        # "Only `granted` counts."
        by_person: dict[Id, dict[Id, set[Id]]] = {}
        for b, people in granted.items():
            sku = self.pools[self.bundles[b]["pool_id"]]["sku_id"]
            for p in people:
                by_person.setdefault(p, {}).setdefault(sku, set()).add(b)
        for p, by_sku in by_person.items():
            # "a person granted two bundles of the same sku_id (kind `duplicate_sku`...)": "one
            # `duplicate_sku` row per (person, SKU granted by two or more bundles)"
            for sku, bundles in by_sku.items():
                if len(bundles) >= 2:
                    out.append({
                        "tenant_id": self.tenant, "person_id": p, "kind": "duplicate_sku",
                        "sku_ids": [sku], "bundle_ids": sorted(bundles),
                    })
            # "bundles whose SKUs are in `sku_conflicts` (kind `exclusive_skus`)": "one
            # `exclusive_skus` row per unordered conflicting pair, listing all the person's
            # granted bundles of either SKU"
            for a, b in self.exclusive:
                if a in by_sku and b in by_sku:
                    out.append({
                        "tenant_id": self.tenant, "person_id": p, "kind": "exclusive_skus",
                        "sku_ids": [a, b], "bundle_ids": sorted(by_sku[a] | by_sku[b]),
                    })


# ----- the engine behind the same interface -------------------------------------------------------


def engine_bundles(
    tables: Mapping[str, pa.Table], *, max_remove_fraction: float = 0.5, guard_min_members: int = 10
) -> Rows:
    """The engine's `resolve_bundles`, each output table converted with ``to_pylist()``."""
    from licensecore.server.bundles import resolve_bundles

    out = resolve_bundles(
        tables, max_remove_fraction=max_remove_fraction, guard_min_members=guard_min_members
    )
    return {name: table.to_pylist() for name, table in out.items()}


BUNDLE_IMPLEMENTATIONS: dict[str, Callable[..., Rows]] = {
    "reference": reference_bundles,
    "engine": engine_bundles,
}
