"""Section 4 of SPEC.md (what-if scenarios): the base and every scenario over the same loaded data.

Outputs: ``scenario_summary`` (licenses, SPEC 4) and, for bundle resolution, the tables of
``whatif_bundles`` (``pool_scenario_summary``, ``bundle_scenario_summary``); every input gives all
three, empty when it has no licenses or no pools and bundles.

For consumption, the work every scenario shares is done once: validation, id encoding, the base
computation and the license components (licenses joined through the applications they share). A
scenario then only replaces license arrays of the encoded ``ConsumptionInput`` and recomputes the
components its changed licenses belong to: the SPEC's rules never let one component's licenses
affect another's (a pair's candidates are the licenses of its application; consumption, spill-over
and over-utilisation are per license), so every other license keeps its base totals exactly.
What bundle and pool scenarios share and recompute is stated in ``whatif_bundles``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from licensecore.kernels import codes
from licensecore.kernels.consumption import ConsumptionInput
from licensecore.kernels.summary import license_totals

from .consumption import _Encoded, compute_by_tenant_blocks
from .encode import composite, decode
from .errors import InputError
from .schema import BUNDLE_INPUTS, CONSUMPTION_INPUTS, LICENSE
from .tables import first_row, normalize_tables
from .whatif_bundles import BUNDLE_TABLE, POOL_TABLE, BundleScenarios
from .whatif_rows import key_codes, normalized_rows, replacement_columns, valid

BASE = "base"
TABLE = "scenario_summary"
# The output tables, in the order they are streamed for each scenario.
OUTPUTS = (TABLE, POOL_TABLE, BUNDLE_TABLE)
# The input tables a what-if reads: those of consumption and of bundle resolution.
INPUTS = (*CONSUMPTION_INPUTS, *BUNDLE_INPUTS)
# The replaceable tables of a scenario and their key columns.
PARTS = {"licenses": ("tenant_id", "license_id"), "bundles": ("tenant_id", "bundle_id"),
         "pools": ("tenant_id", "pool_id")}
REPLACEMENT_COLUMNS = replacement_columns(CONSUMPTION_INPUTS["licenses"], PARTS["licenses"])


def _no_rows(part: str) -> pa.Table:
    return pa.table({k: pa.array([], pa.null()) for k in PARTS[part]})


@dataclass(frozen=True)
class Scenario:
    """A named set of replacement rows for `licenses`, `bundles` and `pools` (each part: its key
    columns plus any subset of the table's other columns; null cells keep the base value)."""

    name: str
    licenses: pa.Table = field(default_factory=lambda: _no_rows("licenses"))
    bundles: pa.Table = field(default_factory=lambda: _no_rows("bundles"))
    pools: pa.Table = field(default_factory=lambda: _no_rows("pools"))


def what_if(tables: Mapping[str, pa.Table], scenarios: Sequence[Scenario]) -> dict[str, pa.Table]:
    """The tables of ``OUTPUTS`` for the base and every scenario, each sorted by (scenario,
    tenant_id, key); scenario names compare in code-point order, `base` like any other name.

    Raises ``InputError`` for bad input (tables or scenarios); nothing is computed then.
    """
    parts = dict(start_what_if(tables, scenarios))
    return {table: pa.concat_tables([parts[name][table] for name in sorted(parts)]) for table in OUTPUTS}


def start_what_if(
    tables: Mapping[str, pa.Table], scenarios: Sequence[Scenario]
) -> Iterator[tuple[str, dict[str, pa.Table]]]:
    """Validate everything now (raising ``InputError``), then return an iterator that computes the
    base and each scenario in turn, yielding (name, that scenario's rows of each output table) as
    each finishes."""
    _check_names(scenarios)
    licenses = _LicenseScenarios(tables, scenarios)
    bundles = BundleScenarios(tables)
    changes = [bundles.apply(s.name, s.bundles, s.pools) for s in scenarios]
    return _results(licenses, bundles, changes)


def _results(licenses: _LicenseScenarios, bundles: BundleScenarios,
             changes: list) -> Iterator[tuple[str, dict[str, pa.Table]]]:
    for (name, summary), change in zip(licenses.results(), [None, *changes]):
        yield name, {TABLE: summary, **bundles.tables(name, change)}


def load_scenarios(path: str | os.PathLike) -> list[Scenario]:
    """Scenarios from a SPEC 4 JSON file: a list of {"name", "licenses", "bundles", "pools"}."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError("scenarios", "", -1, str(path), 0, f"cannot read {path}: {exc}") from None
    return parse_scenarios(data)


def parse_scenarios(data: object) -> list[Scenario]:
    """Scenarios from the decoded JSON of a scenarios file (see ``load_scenarios``)."""
    if not isinstance(data, list):
        raise InputError("scenarios", "", -1, None, 0, "a scenarios file holds a JSON list of objects")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise InputError("scenarios", "", i, item, 1, "a scenario must be a JSON object")
        extra = sorted(set(item) - {"name", *PARTS})
        if extra:
            raise InputError("scenarios", extra[0], i, item.get("name"), 1,
                             "unknown key (expected name, licenses, bundles, pools)")
        name = item.get("name")
        if not isinstance(name, str):
            raise InputError("scenarios", "name", i, name, 1, "a scenario needs a string name")
        parts = {}
        for part in PARTS:
            rows = item.get(part) or []
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise InputError("scenarios", part, i, name, 1, f"{part} must be a list of objects")
            parts[part] = _rows_table(i, name, part, rows)
        out.append(Scenario(name, **parts))
    return out


def _rows_table(index: int, name: str, part: str, rows: list[dict]) -> pa.Table:
    keys = PARTS[part]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for key in keys:
        if key not in columns:
            columns.insert(keys.index(key), key)
    arrays = {}
    for column in columns:
        try:
            arrays[column] = pa.array([row.get(column) for row in rows])
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise InputError("scenarios", f"{part}.{column}", index, name, 1,
                             f"values of mixed or unsupported types ({exc})") from None
    return pa.table(arrays) if rows else _no_rows(part)


@dataclass
class _Licenses:
    """The per-license arrays a scenario may replace, in license code order."""

    metric: np.ndarray
    entitlements: np.ndarray
    multiple_use: np.ndarray
    allocations_consume: np.ndarray
    vm_host: np.ndarray
    priority: np.ndarray
    true_up: np.ndarray
    points: np.ndarray
    unit_cost: np.ndarray

    def copy(self) -> _Licenses:
        return _Licenses(**{f.name: getattr(self, f.name).copy() for f in dataclasses.fields(self)})

    def changed(self, base: _Licenses) -> np.ndarray:
        """Licenses whose consumption inputs differ from ``base`` (unit_cost does not count)."""
        diff = self.points != base.points
        out = diff[:, 0] | diff[:, 1]
        for f in dataclasses.fields(self):
            if f.name not in ("points", "unit_cost"):
                out |= getattr(self, f.name) != getattr(base, f.name)
        return out


# Replacement column -> (field of _Licenses, conversion of the non-null values).
def _enum(names):
    return lambda v: np.asarray(pc.index_in(v, value_set=pa.array(names)).to_numpy(), np.int64)


_CONVERT = {
    "metric": ("metric", _enum(codes.METRICS)),
    "entitlements": ("entitlements", None),
    "multiple_use": ("multiple_use", None),
    "allocations_consume": ("allocations_consume", None),
    "vm_rights": ("vm_host", lambda v: np.asarray(pc.equal(v, "host").to_numpy(), np.bool_)),
    "priority": ("priority", None),
    "true_up": ("true_up", None),
    "points_per_core": ("points", 0),
    "min_points": ("points", 1),
    "unit_cost": ("unit_cost", None),
}


class _LicenseScenarios:
    """Validated inputs and license scenarios, the encoding, and the base result: shared by all
    scenarios."""

    def __init__(self, tables: Mapping[str, pa.Table], scenarios: Sequence[Scenario]) -> None:
        self.t, self.id_types = normalize_tables(tables, CONSUMPTION_INPUTS)
        enc = self.enc = _Encoded(self.t)
        x = enc.input
        lics = self.t["licenses"].take(pa.array(enc.license_rows))
        self.base = _Licenses(
            metric=x.license_metric, entitlements=x.license_entitlements,
            multiple_use=x.license_multiple_use, allocations_consume=x.license_allocations_consume,
            vm_host=x.license_vm_host, priority=x.license_priority, true_up=x.license_true_up,
            points=x.license_points,
            unit_cost=np.asarray(lics.column("unit_cost").to_numpy(), np.float64),
        )
        n_license = x.license_metric.size
        self.component = _components(x.link_license, x.link_app, n_license, x.n_app)
        # Party kinds, to re-check allocation targets when a scenario changes a metric.
        self.is_user = np.zeros(x.n_party, np.bool_)
        self.is_user[enc.user_code] = True
        device_key = composite(enc.tenants.codes[1], enc.party.codes[1], len(enc.party))
        self.is_device = np.zeros(x.n_party, np.bool_)
        self.is_device[enc.party_space.lookup(device_key)] = True
        self.scenarios = [(s.name, self._apply(s)) for s in scenarios]

        all_licenses = np.arange(n_license)
        tenants = enc.tenants.values
        self.tenant_ids = tenants.take(pa.array(enc.license_space.tenant_of(all_licenses)))
        self.license_ids = decode(enc.license.values, enc.license_space.id_of(all_licenses),
                                  self.id_types[LICENSE])

    def _apply(self, scenario: Scenario) -> _Licenses:
        """The scenario's license arrays; raises ``InputError`` naming the scenario."""
        label = f"scenario[{scenario.name}].licenses"
        r = normalized_rows(label, "licenses", scenario.licenses, REPLACEMENT_COLUMNS, self.id_types)
        enc = self.enc
        code = key_codes(label, r, "license_id", enc.tenants.values, enc.license, enc.license_space,
                         "licenses")
        new = self.base.copy()
        for column, (name, convert) in _CONVERT.items():
            values = r.column(column)
            given = valid(values)
            if not given.any():
                continue
            target = getattr(new, name)
            if isinstance(convert, int):  # one column of the points matrix
                target[code[given], convert] = np.asarray(values.to_numpy(zero_copy_only=False), np.float64)[given]
                continue
            filled = values.fill_null(_zero(values.type))
            converted = convert(filled) if convert else np.asarray(filled.to_numpy(), target.dtype)
            target[code[given]] = converted[given].astype(target.dtype)
        self._check_metric(label, r, code, new)
        return new

    def _check_metric(self, label: str, r: pa.Table, code: np.ndarray, new: _Licenses) -> None:
        """Allocation targets must still be users of user licenses and devices otherwise."""
        changed = new.metric != self.base.metric
        if not changed.any():
            return
        x = self.enc.input
        on = changed[x.alloc_license]
        target = x.alloc_target
        ok = np.where(new.metric[x.alloc_license] == codes.USER, self.is_user[target], self.is_device[target])
        bad = np.zeros(changed.size, np.bool_)
        bad[x.alloc_license[on & ~ok]] = True
        first_row(label, "metric", bad[code], r.column("metric"),
                  "metric change leaves allocations whose target_id is not a "
                  "user_id (user licenses) or a device_id (otherwise)")

    def results(self) -> Iterator[tuple[str, pa.Table]]:
        x = self.enc.input
        base_result = compute_by_tenant_blocks(self.enc, x)
        base = license_totals(base_result.row_license, base_result.row_consumption,
                              base_result.row_over_utilized, self.base.entitlements, self.base.unit_cost)
        yield BASE, self._table(BASE, base.consumed, base.shortfall, base.shortfall_cost, base)
        for name, lics in self.scenarios:
            # astype copies; bincount over no rows gives int64, which must not truncate values
            consumed, shortfall = base.consumed.astype(np.float64), base.shortfall.astype(np.float64)
            affected = np.isin(self.component, self.component[lics.changed(self.base)])
            if affected.any():
                r = compute_by_tenant_blocks(self.enc, self._restricted(lics, affected))
                totals = license_totals(r.row_license, r.row_consumption, r.row_over_utilized,
                                        lics.entitlements, lics.unit_cost)
                consumed[affected] = totals.consumed[affected]
                shortfall[affected] = totals.shortfall[affected]
            yield name, self._table(name, consumed, shortfall, shortfall * lics.unit_cost, base)

    def _restricted(self, lics: _Licenses, affected: np.ndarray) -> ConsumptionInput:
        """The input with the scenario's license arrays, limited to the affected components."""
        x = self.enc.input
        links = affected[x.link_license]
        apps = np.zeros(x.n_app, np.bool_)
        apps[x.link_app[links]] = True
        inst = apps[x.install_app]
        allocs = affected[x.alloc_license]
        return dataclasses.replace(
            x,
            install_device=x.install_device[inst], install_app=x.install_app[inst],
            link_license=x.link_license[links], link_app=x.link_app[links],
            alloc_license=x.alloc_license[allocs], alloc_target=x.alloc_target[allocs],
            alloc_type=x.alloc_type[allocs], alloc_override=x.alloc_override[allocs],
            alloc_exempt=x.alloc_exempt[allocs],
            license_metric=lics.metric, license_entitlements=lics.entitlements,
            license_multiple_use=lics.multiple_use, license_allocations_consume=lics.allocations_consume,
            license_vm_host=lics.vm_host, license_priority=lics.priority, license_true_up=lics.true_up,
            license_points=lics.points,
        )

    def _table(self, name: str, consumed, shortfall, shortfall_cost, base) -> pa.Table:
        n = consumed.size
        return pa.table({
            "scenario": pa.array([name] * n, pa.string()),
            "tenant_id": self.tenant_ids,
            "license_id": self.license_ids,
            "consumed": pa.array(consumed, pa.float64()),
            "shortfall": pa.array(shortfall, pa.float64()),
            "shortfall_cost": pa.array(shortfall_cost, pa.float64()),
            "delta_consumed": pa.array(consumed - base.consumed, pa.float64()),
            "delta_cost": pa.array(shortfall_cost - base.shortfall_cost, pa.float64()),
        })


def _zero(t: pa.DataType) -> pa.Scalar:
    """A placeholder for null cells (their rows are masked out)."""
    if pa.types.is_string(t):
        return pa.scalar("", t)
    if pa.types.is_boolean(t):
        return pa.scalar(False, t)
    return pa.scalar(0, t)


def _check_names(scenarios: Sequence[Scenario]) -> None:
    """Names non-empty, unique and not `base`; every part an Arrow table."""
    seen: set[str] = set()
    for i, s in enumerate(scenarios):
        if not isinstance(s.name, str) or not s.name:
            raise InputError("scenarios", "name", i, s.name, 1, "a scenario needs a non-empty name")
        if s.name == BASE:
            raise InputError("scenarios", "name", i, s.name, 1,
                             "the name base is reserved for the base scenario")
        if s.name in seen:
            raise InputError("scenarios", "name", i, s.name, 1, "duplicate scenario name")
        seen.add(s.name)
        for part in PARTS:
            if not isinstance(getattr(s, part), pa.Table):
                raise InputError("scenarios", part, i, s.name, 1, f"{part} must be an Arrow table")


def _components(link_license: np.ndarray, link_app: np.ndarray, n_license: int, n_app: int) -> np.ndarray:
    """Component label of each license in the license-application link graph (min license code)."""
    label = np.arange(n_license)
    if not link_license.size:
        return label
    while True:
        app_label = np.full(n_app, n_license, np.int64)
        np.minimum.at(app_label, link_app, label[link_license])
        new = label.copy()
        np.minimum.at(new, link_license, app_label[link_app])
        # Pointer jumping keeps the number of rounds small on long chains.
        new = np.minimum(new, new[new])
        if np.array_equal(new, label):
            return label
        label = new
