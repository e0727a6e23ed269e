"""Slow, plain-Python reference of SPEC section 1 (consumption), written straight from the text.

One tenant at a time, with sets, dicts and loops; readable rather than fast. It assumes valid input
(validation is tested elsewhere) but applies defaults and dedupes link tables. Comments quote the
SPEC sentence each step implements; "Decision n" marks the team's reading where the SPEC is silent
(docs/decisions.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

Id = str | int
Consumer = tuple[str, Id]  # (consumer_type, consumer_id)
Line = tuple[float, str, int]  # (consumption, reason, devices) of one consumer
Row = dict[str, Any]

REQUIRED = object()

# SPEC 1.1: the columns section 1 reads, with their defaults ("Extra columns are ignored").
INPUT_COLUMNS: dict[str, dict[str, object]] = {
    "users": {"tenant_id": REQUIRED, "user_id": REQUIRED, "status": "active", "org_unit": None},
    "devices": {
        "tenant_id": REQUIRED,
        "device_id": REQUIRED,
        "user_id": None,
        "host_id": None,
        "cores": None,
    },
    "installations": {"tenant_id": REQUIRED, "device_id": REQUIRED, "application_id": REQUIRED},
    "licenses": {
        "tenant_id": REQUIRED,
        "license_id": REQUIRED,
        "metric": REQUIRED,
        "entitlements": None,
        "multiple_use": 1,
        "allocations_consume": False,
        "vm_rights": "none",
        "priority": 0,
        "true_up": False,
        "unit_cost": 0.0,
        "points_per_core": 1.0,
        "min_points": 0.0,
    },
    "license_applications": {
        "tenant_id": REQUIRED,
        "license_id": REQUIRED,
        "application_id": REQUIRED,
    },
    "allocations": {
        "tenant_id": REQUIRED,
        "license_id": REQUIRED,
        "target_id": REQUIRED,
        "type": "allocated",
        "override": None,
        "exemption": None,
    },
}

# SPEC 1.6: the output columns in order, and the sort key of each table.
OUTPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "consumption": (
        "tenant_id", "license_id", "consumer_type", "consumer_id", "devices", "consumption",
        "reason", "allocation", "over_utilized",
    ),
    "license_summary": (
        "tenant_id", "license_id", "metric", "entitlements", "consumed", "available", "shortfall",
        "shortfall_cost", "consumers", "evidence", "over_utilized",
    ),
    "unlicensed": ("tenant_id", "device_id", "application_id"),
    "chargeback": ("tenant_id", "license_id", "org_unit", "consumption", "cost"),
}
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "consumption": ("tenant_id", "license_id", "consumer_type", "consumer_id"),
    "license_summary": ("tenant_id", "license_id"),
    "unlicensed": ("tenant_id", "device_id", "application_id"),
    "chargeback": ("tenant_id", "license_id", "org_unit"),
}


def reference_consumption(tables: Mapping[str, pa.Table]) -> dict[str, list[Row]]:
    """SPEC section 1 on Arrow input tables; each output table as a sorted list of row dicts."""
    rows = {name: _read(tables.get(name), columns) for name, columns in INPUT_COLUMNS.items()}
    # "the result for each tenant is exactly the result of computing that tenant alone."
    tenants = {row["tenant_id"] for table_rows in rows.values() for row in table_rows}
    out: dict[str, list[Row]] = {name: [] for name in OUTPUT_COLUMNS}
    for tenant in tenants:
        alone = {name: [r for r in rs if r["tenant_id"] == tenant] for name, rs in rows.items()}
        for name, produced in _Tenant(tenant, alone).compute().items():
            out[name].extend(produced)
    # "Output rows are sorted by tenant_id and then by the key columns listed per table."
    return {
        name: sorted(out[name], key=lambda row, n=name: [_sortable(row[k]) for k in SORT_KEYS[n]])
        for name in OUTPUT_COLUMNS
    }


def _read(table: pa.Table | None, columns: Mapping[str, object]) -> list[Row]:
    """Rows of one input table with the defaults of SPEC 1.1 applied."""
    # "A table that is not given counts as empty."
    if table is None:
        return []
    rows = []
    for raw in table.to_pylist():
        row = {}
        for column, default in columns.items():
            value = raw.get(column)
            # "A nullable column may be absent; its default applies." and
            # "A null in a column with a default takes the default."
            row[column] = default if value is None and default is not REQUIRED else value
        rows.append(row)
    return rows


def _sortable(value: object) -> tuple[bool, object]:
    # "Sorting: nulls last; strings in code-point (UTF-8 byte) order." Python orders str by code
    # point and int numerically ("Ascending id order").
    return (value is None, value)


def units(n: int, m: int) -> int:
    """`units(n, m)` = ceil(n / m) for m > 0; for m = 0 it is 1 when n >= 1, else 0."""
    if m > 0:
        return math.ceil(n / m)
    return 1 if n >= 1 else 0


def binds(allocation: Row | None) -> bool:
    """Whether an allocation binds."""
    # "It binds when its type is not `unallocated` or its `exemption` is not null."
    return allocation is not None and (
        allocation["type"] != "unallocated" or allocation["exemption"] is not None
    )


class _Tenant:
    """Section 1 for the rows of one tenant."""

    def __init__(self, tenant: str, rows: Mapping[str, list[Row]]) -> None:
        self.tenant = tenant
        self.users = {r["user_id"]: r for r in rows["users"]}
        self.devices = {r["device_id"]: r for r in rows["devices"]}
        # "Evidence: the distinct (device, application) pairs of installations."
        self.evidence = {(r["device_id"], r["application_id"]) for r in rows["installations"]}
        self.licenses = {r["license_id"]: r for r in rows["licenses"]}
        # "Duplicate rows in link tables (installations, license_applications, ...) count once."
        self.apps_of: dict[Id, set[Id]] = {lic: set() for lic in self.licenses}
        for r in rows["license_applications"]:
            self.apps_of[r["license_id"]].add(r["application_id"])
        # "At most one row per (license, target)."
        self.allocation_rows = {(r["license_id"], r["target_id"]): r for r in rows["allocations"]}
        # The state of Rule 1: per license, the devices of each consumer's pairs on it, the number
        # of pairs assigned to it, and the consumers forced onto it.
        self.pair_devices: dict[Id, dict[Consumer, set[Id]]] = {lic: {} for lic in self.licenses}
        self.pairs_on: dict[Id, int] = {lic: 0 for lic in self.licenses}
        self.forced = {lic_id: self.forced_consumers(lic) for lic_id, lic in self.licenses.items()}

    # ----- 1.2 Definitions ------------------------------------------------------------------------

    def known(self, user_id: Id | None) -> bool:
        # "A user is known when it exists with status active."
        return user_id in self.users and self.users[user_id]["status"] == "active"

    def consumer(self, device: Id, lic: Row) -> Consumer:
        # "The consumer of device d for license L: for device and core licenses, d itself; for
        # user licenses, d's user when that user is known, otherwise d itself"
        user = self.devices[device]["user_id"]
        if lic["metric"] == "user" and self.known(user):
            return ("user", user)
        return ("device", device)

    def allocation(self, lic: Row, consumer: Consumer) -> Row | None:
        # "The allocation of (L, consumer) is the allocations row with that license and target."
        kind, target = consumer
        # Decision 1: user licenses match user consumers only, device/core licenses device
        # consumers only.
        if kind != ("user" if lic["metric"] == "user" else "device"):
            return None
        # "An allocation whose target is a user who is not known binds nothing and forces nothing
        # (it is ignored)." Decision 1: nor does it give an override or an exemption.
        if kind == "user" and not self.known(target):
            return None
        return self.allocation_rows.get((lic["license_id"], target))

    def forces(self, lic: Row, allocation: Row | None) -> bool:
        # "An allocation forces its consumer onto L ... when it binds and either its type is
        # permanent, or L.allocations_consume is true and its type is allocated or
        # awaiting_inventory."
        if not binds(allocation):
            return False
        consuming = allocation["type"] in ("allocated", "awaiting_inventory")
        return allocation["type"] == "permanent" or (lic["allocations_consume"] and consuming)

    def forced_consumers(self, lic: Row) -> set[Consumer]:
        kind = "user" if lic["metric"] == "user" else "device"
        targets = [t for (lic_id, t) in self.allocation_rows if lic_id == lic["license_id"]]
        return {(kind, t) for t in targets if self.forces(lic, self.allocation(lic, (kind, t)))}

    def host_binds(self, device: Id, lic: Row) -> bool:
        # "With vm_rights = host, a virtual machine (a device with host_id) is bound to L when its
        # host has a binding allocation on L"; "Host flow-down exists only for device and core
        # licenses." Only the direct host (as "VM rules: only the direct host counts").
        host = self.devices[device]["host_id"]
        return (
            lic["metric"] != "user"
            and lic["vm_rights"] == "host"
            and host is not None
            and binds(self.allocation(lic, ("device", host)))
        )

    def candidates(self, app: Id) -> list[Row]:
        # "Candidates of an application: the licenses linked to it, in order (priority ascending,
        # then license_id ascending)."
        linked = [lic for lic_id, lic in self.licenses.items() if app in self.apps_of[lic_id]]
        return sorted(linked, key=lambda lic: (lic["priority"], lic["license_id"]))

    def points(self, device: Id, lic: Row) -> float | None:
        # "points(d, L) = max(L.min_points, d.cores × L.points_per_core); undefined when cores is
        # null."
        cores = self.devices[device]["cores"]
        if cores is None:
            return None
        return max(lic["min_points"], cores * lic["points_per_core"])

    # ----- 1.4 Rule 2's table, also "consumption so far" in Rule 1 --------------------------------

    def devices_counted(self, lic: Row, consumer: Consumer, pairs: set[Id], forced: bool) -> int:
        # "let n be the number of distinct devices counted for c"
        kind, consumer_id = consumer
        # "device license: c's own device (n = 1)"; "core license: c's own device"; and an
        # unknown-user device on a user license has pairs on its own device only.
        if lic["metric"] != "user" or kind == "device":
            return 1
        # "user license: the devices of c's pairs on L; when c is forced, every device whose
        # user_id is c, with or without evidence ..., and at least 1"
        if forced:
            owned = {d for d, row in self.devices.items() if row["user_id"] == consumer_id}
            return max(len(pairs | owned), 1)
        return len(pairs)

    def table(self, lic: Row, consumer: Consumer, pairs: set[Id], forced: bool) -> Line:
        """One consumer of ``lic`` by the table of Rule 2, without the virtual-machine rules."""
        n = self.devices_counted(lic, consumer, pairs, forced)
        # "Calculated consumption: device license 1; user license units(n, multiple_use); core
        # license points(c, L), or 0 with reason missing_hardware when cores is null."
        calculated, calculated_reason = 1.0, None
        if lic["metric"] == "user":
            calculated = float(units(n, lic["multiple_use"]))
        elif lic["metric"] == "core":
            points = self.points(consumer[1], lic)
            if points is None:
                calculated, calculated_reason = 0.0, "missing_hardware"
            else:
                calculated = points
        allocation = self.allocation(lic, consumer) or {}
        by_type = "permanent" if allocation.get("type") == "permanent" else "allocation"
        # "| 1 | the allocation has an exemption | 0 | exempt |"
        if allocation.get("exemption") is not None:
            return 0.0, "exempt", n
        # "| 2 | the allocation has an override | override | override |"
        if allocation.get("override") is not None:
            return float(allocation["override"]), "override", n
        # "| 3 | c is forced and L has no linked application | 1 | permanent or allocation |"
        # Decision 3: 1 even for a core license and a device without cores.
        if forced and not self.apps_of[lic["license_id"]]:
            return 1.0, by_type, n
        # "| 4 | c is forced | calculated | permanent or allocation (by type) |", and
        # "missing_hardware replaces the permanent/allocation/installed reason"
        if forced:
            return calculated, calculated_reason or by_type, n
        # "| 5 | c has a pair on L | calculated | installed |"
        return calculated, calculated_reason or "installed", n

    def consumers(self, lic_id: Id) -> set[Consumer]:
        # "The consumers of L are the consumers of the pairs assigned to L, plus the consumers
        # forced onto L, plus the targets of exemptions on L that have a pair on L" (these last
        # are consumers of their pairs already).
        return set(self.pair_devices[lic_id]) | self.forced[lic_id]

    def consumption_so_far(self, lic: Row, extra: tuple[Consumer, Id] | None = None) -> float:
        """Rule 1's "consumption so far" of ``lic``, with one more (consumer, device) if given."""
        # "the sum, over the consumers L has at that moment (forced consumers and every pair
        # assigned before, bound pairs included), of their consumption by the table in Rule 2
        # without the virtual-machine rules"
        lic_id = lic["license_id"]
        holdings = {c: set(devices) for c, devices in self.pair_devices[lic_id].items()}
        if extra is not None:
            holdings.setdefault(extra[0], set()).add(extra[1])
        everyone = set(holdings) | self.forced[lic_id]
        forced = self.forced[lic_id]
        return sum(
            (self.table(lic, c, holdings.get(c, set()), c in forced)[0] for c in everyone), 0.0
        )

    # ----- 1.3 Rule 1 -----------------------------------------------------------------------------

    def assign(self, device: Id, lic: Row) -> None:
        consumer = self.consumer(device, lic)
        self.pair_devices[lic["license_id"]].setdefault(consumer, set()).add(device)
        self.pairs_on[lic["license_id"]] += 1

    def bound(self, device: Id, lic: Row) -> bool:
        # "A pair (d, a) is bound when some candidate L has a binding allocation for
        # consumer(d, L) (or, with vm_rights = host, for d's host)."
        own = self.allocation(lic, self.consumer(device, lic))
        return binds(own) or self.host_binds(device, lic)

    def rule1(self) -> list[tuple[Id, Id]]:
        """Assign every evidence pair to one license; return the unlicensed pairs."""
        # "A pair whose application is linked to no license is unlicensed"
        unlicensed = [(d, a) for d, a in self.evidence if not self.candidates(a)]
        licensed = [(d, a) for d, a in self.evidence if self.candidates(a)]
        # "Per tenant, first every bound pair, then every free pair."
        free = []
        for device, app in licensed:
            # "It goes to the first such candidate."
            bound_to = [lic for lic in self.candidates(app) if self.bound(device, lic)]
            if bound_to:
                self.assign(device, bound_to[0])
            else:
                free.append((device, app))
        # "Free pairs are taken one by one in ascending (consumer key, device_id, application_id)
        # order, where the consumer key is the user_id of d's known user, else d's device_id."
        # ("The free-pair order uses the known user's id whatever the license's metric.")
        free.sort(key=lambda pair: (self.consumer_key(pair[0]), pair[0], pair[1]))
        for device, app in free:
            self.assign(device, self.choose(device, self.candidates(app)))
        return unlicensed

    def consumer_key(self, device: Id) -> Id:
        user = self.devices[device]["user_id"]
        return user if self.known(user) else device

    def choose(self, device: Id, candidates: list[Row]) -> Row:
        """The license a free pair goes to."""
        so_far, delta = {}, {}
        for lic in candidates:
            lic_id = lic["license_id"]
            so_far[lic_id] = self.consumption_so_far(lic)
            # "Δ of adding (d, a) to L is the increase of that sum"
            with_pair = self.consumption_so_far(lic, (self.consumer(device, lic), device))
            delta[lic_id] = with_pair - so_far[lic_id]
        # "Each goes to the first candidate, in candidate order, whose marginal consumption Δ is
        # 0;"
        for lic in candidates:
            if delta[lic["license_id"]] == 0:
                return lic
        # "else to the first whose consumption so far plus Δ stays within its entitlements (always
        # true for unlimited);" ("within" means ≤)
        for lic in candidates:
            total = so_far[lic["license_id"]] + delta[lic["license_id"]]
            if lic["entitlements"] is None or total <= lic["entitlements"]:
                return lic
        # "else to the first candidate with true_up; else to the first candidate."
        for lic in candidates:
            if lic["true_up"]:
                return lic
        return candidates[0]

    # ----- 1.4 Rule 2 and 1.5 Rule 3 --------------------------------------------------------------

    def rule2(self, lic: Row) -> dict[Consumer, Line]:
        """The final line of every consumer of a license."""
        lic_id = lic["license_id"]
        consumers = self.consumers(lic_id)
        final = {
            c: self.table(lic, c, self.pair_devices[lic_id].get(c, set()), c in self.forced[lic_id])
            for c in consumers
        }
        # "Virtual machines, for device and core licenses with vm_rights = host"
        if lic["metric"] == "user" or lic["vm_rights"] != "host":
            return final
        # "a VM whose host is itself a consumer of L consumes 0 with reason covered_by_host (its
        # row stays; lines 1 and 2 of the table above, exemption and override, still win)."
        # "only the direct host counts; a host covers its VMs whenever it is a consumer of L, even
        # at 0; exempt, override and unknown-core VMs are left out of the cap; forced VMs are
        # capped"
        uncovered_vms: dict[Id, list[Consumer]] = {}
        for c in sorted(consumers, key=lambda c: c[1]):
            consumption, reason, n = final[c]
            host = self.devices[c[1]]["host_id"]
            if host is None or reason in ("exempt", "override"):
                continue
            if ("device", host) in consumers:
                final[c] = (0.0, "covered_by_host", n)
            elif self.devices[c[1]]["cores"] is not None:
                uncovered_vms.setdefault(host, []).append(c)
        if lic["metric"] != "core":
            return final
        # "For core licenses, the VMs on one host that are not covered together consume at most
        # points(host, L) when the host's cores are known: in ascending device_id order each VM
        # consumes its points until the running total reaches the host's points; the VM that
        # crosses it consumes the remainder and the rest 0, reason capped_by_host."
        # "a VM that reaches the host's points exactly keeps its reason" (Decision 5: a VM keeps
        # its consumption whenever it still fits.)
        for host, vms in uncovered_vms.items():
            cap = self.points(host, lic)
            if cap is None:
                continue
            total = 0.0
            for c in vms:
                consumption, reason, n = final[c]
                if total + consumption <= cap:
                    total += consumption
                else:
                    final[c] = (max(cap - total, 0.0), "capped_by_host", n)
                    total = cap
        return final

    def rule3(self, lic: Row, final: Mapping[Consumer, Line]) -> set[Consumer]:
        """The over-utilised consumers of a license."""
        # "Bound consumers include VMs bound through their host's allocation." (Decision 6: and
        # the consumers whose own allocation on L binds.)
        bound = {
            c
            for c in final
            if binds(self.allocation(lic, c)) or (c[0] == "device" and self.host_binds(c[1], lic))
        }
        # "Within L, consumers are ordered: bound consumers first, then the rest; each group in
        # ascending consumer_id (then consumer_type, so a device precedes a user with the same id)."
        order = sorted(final, key=lambda c: (c not in bound, c[1], c[0]))
        over, running = set(), 0.0
        entitlements = lic["entitlements"]
        for c in order:
            consumption = final[c][0]
            running += consumption
            # "With a running sum of consumption, a consumer with positive consumption is
            # over_utilized when the running sum after it exceeds the entitlements (never for
            # unlimited licenses)." ("exceeds" means >)
            if consumption > 0 and entitlements is not None and running > entitlements:
                over.add(c)
        return over

    # ----- 1.6 Outputs ----------------------------------------------------------------------------

    def org_unit(self, consumer: Consumer) -> str | None:
        # "the org_unit of the consumer's user; for a device consumer, of the device's user_id
        # whatever its status; null when there is none"
        kind, consumer_id = consumer
        user = consumer_id if kind == "user" else self.devices[consumer_id]["user_id"]
        return None if user is None else self.users[user]["org_unit"]

    def compute(self) -> dict[str, list[Row]]:
        """The four output tables of this tenant, unsorted."""
        out: dict[str, list[Row]] = {name: [] for name in OUTPUT_COLUMNS}
        for device, app in self.rule1():
            out["unlicensed"].append(
                {"tenant_id": self.tenant, "device_id": device, "application_id": app}
            )
        for lic_id, lic in self.licenses.items():
            final = self.rule2(lic)
            over = self.rule3(lic, final)
            by_org_unit: dict[str | None, float] = {}
            for c, (consumption, reason, n) in final.items():
                allocation = self.allocation(lic, c)
                out["consumption"].append(
                    {
                        "tenant_id": self.tenant,
                        "license_id": lic_id,
                        "consumer_type": c[0],
                        "consumer_id": c[1],
                        "devices": n,
                        "consumption": consumption,
                        "reason": reason,
                        "allocation": None if allocation is None else allocation["type"],
                        "over_utilized": c in over,
                    }
                )
                # "chargeback has a row per (license, org_unit) with at least one consumer, even
                # at 0."
                org_unit = self.org_unit(c)
                by_org_unit[org_unit] = by_org_unit.get(org_unit, 0.0) + consumption
            for org_unit, consumption in by_org_unit.items():
                out["chargeback"].append(
                    {
                        "tenant_id": self.tenant,
                        "license_id": lic_id,
                        "org_unit": org_unit,
                        "consumption": consumption,
                        "cost": consumption * lic["unit_cost"],  # "consumption × unit_cost"
                    }
                )
            out["license_summary"].append(self.summary(lic, final, over))
        return out

    def summary(self, lic: Row, final: Mapping[Consumer, Line], over: set[Consumer]) -> Row:
        # "Every license has a row."
        consumed = sum((consumption for consumption, _, _ in final.values()), 0.0)
        entitlements = lic["entitlements"]
        # "shortfall (max(0, consumed − entitlements))"; "Unlimited license: available null,
        # shortfall 0, shortfall_cost 0."
        shortfall = 0.0 if entitlements is None else max(0.0, consumed - entitlements)
        return {
            "tenant_id": self.tenant,
            "license_id": lic["license_id"],
            "metric": lic["metric"],
            "entitlements": entitlements,
            "consumed": consumed,
            "available": None if entitlements is None else entitlements - consumed,
            "shortfall": shortfall,
            "shortfall_cost": shortfall * lic["unit_cost"],
            "consumers": len(final),
            "evidence": self.pairs_on[lic["license_id"]],  # "pairs assigned"
            "over_utilized": len(over),
        }
