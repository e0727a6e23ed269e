"""Seeded synthetic enterprise data for SPEC section 1 (consumption).

``generate(size, seed)`` returns the six input tables ``users``, ``devices``, ``installations``,
``licenses``, ``license_applications`` and ``allocations`` for several tenants of unequal size
(tenant ``t`` gets a share proportional to 1 / (t + 1)). The data is valid per SPEC section 0 and
shaped like a real estate: users with 1-5 devices and a few with 100+, devices without a user,
~5% virtual machines on hosts, inactive and retired users, skewed application popularity (so a few
installation rows repeat), applications linked to zero, one or two licenses, licenses of every
metric and option, and allocations of every type with some overrides and exemptions.

Everything is vectorised NumPy on one ``np.random.default_rng(seed)``: rows are built as integer
indices into per-kind id arrays (party = users then devices, application, license) that become
Arrow columns through ``take``. Column names and types come from ``server.schema``. The structure
does not depend on ``id_type``; only the id values do.

Command line::

    python -m licensecore.bench.datagen --size S --seed 0 --out DIR \
        [--format parquet|csv|arrow] [--id-type string|int64] [--task consumption|bundles|all]

``--task bundles`` writes the section-3 tables of ``datagen_bundles`` instead, ``all`` (the
default) both sets into one directory (each section ignores the other's tables).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from licensecore.server.schema import CONSUMPTION_INPUTS, Column


@dataclass(frozen=True)
class Size:
    """Row totals over all tenants (installations before dedupe); tenants share them unequally."""

    tenants: int
    users: int
    devices: int
    installations: int
    applications: int
    licenses: int


SIZES: dict[str, Size] = {
    "S": Size(3, 1_000, 1_600, 10_000, 900, 240),
    "M": Size(4, 10_000, 16_000, 100_000, 1_600, 480),
    "L": Size(6, 100_000, 160_000, 1_000_000, 3_000, 900),
    "XL": Size(8, 1_000_000, 1_600_000, 10_000_000, 4_000, 1_200),
}
FORMATS = ("parquet", "csv", "arrow")

_NOW_US = int(datetime(2025, 6, 30, tzinfo=timezone.utc).timestamp()) * 1_000_000
_DAY_US = 86_400 * 1_000_000
_DEPARTMENTS = ("Finance", "Sales", "Marketing", "Engineering", "Operations", "Legal", "HR",
                "IT", "Research", "Support")
_REGIONS = ("EMEA", "AMER", "APAC", "LATAM", "NORDICS", "DACH")
# Lookups of the string columns, stored as codes (-1: null).
_LOOKUPS = {
    "org_unit": [f"{d}/{r}" for d in _DEPARTMENTS for r in _REGIONS],
    "sku_id": ["ENTERPRISEPACK", "SPE_E3", "SPE_E5", "VISIOCLIENT", "PROJECTPROFESSIONAL",
               "POWER_BI_PRO", "EMS"],
    "exemption": ["test lab", "vendor supplied", "disaster recovery", "legal hold", "training"],
}
_ARROW_TYPES = {
    "tenant": pa.string(), "enum": pa.string(), "string": pa.string(), "bool": pa.bool_(),
    "int32": pa.int32(), "int64": pa.int64(), "float64": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"), "string_list": pa.list_(pa.string()),
}
_HEX = np.frombuffer("".join(f"{i:02x}" for i in range(256)).encode(), np.uint8).reshape(256, 2)
_GUID_HEX_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])

# Enum codes index the ``values`` of the schema column.
ACTIVE, INACTIVE, RETIRED = 0, 1, 2
DEVICE, USER, CORE = 0, 1, 2
ALLOCATION_TYPES = 4


def _split(total: int, parts: int) -> np.ndarray:
    """Split ``total`` into ``parts`` counts proportional to 1, 1/2, 1/3, ..."""
    w = 1.0 / np.arange(1, parts + 1)
    counts = np.floor(total * w / w.sum()).astype(np.int64)
    counts[0] += total - counts.sum()
    return counts


def _glob(idx: np.ndarray, offset: int) -> np.ndarray:
    """Local row indices to global ones, keeping -1 (null)."""
    return np.where(idx >= 0, idx + offset, -1)


def _users(rng: np.random.Generator, n: int, n_heavy: int) -> dict[str, np.ndarray]:
    """Users: ~90% active; the first ``n_heavy`` are active users who own 100+ devices."""
    status = rng.choice(3, n, p=[0.9, 0.05, 0.05]).astype(np.int8)
    status[:n_heavy] = ACTIVE
    status[-3:] = (ACTIVE, INACTIVE, RETIRED)
    units = rng.choice(len(_LOOKUPS["org_unit"]), rng.integers(20, 51), replace=False)
    org_unit = units[(len(units) * rng.random(n) ** 2).astype(np.int64)]
    org_unit[rng.random(n) < 0.03] = -1
    enabled = ((status != RETIRED) ^ (rng.random(n) < 0.02)).astype(np.int8)
    enabled[rng.random(n) < 0.03] = -1
    lo, hi = np.array([0, 60, 180])[status], np.array([30, 720, 1500])[status]
    days = lo + (rng.random(n) * (hi - lo)).astype(np.int64)
    sign_in = _NOW_US - days * _DAY_US - rng.integers(0, _DAY_US, n)
    sign_in[rng.random(n) < 0.04] = -1
    return {"status": status, "org_unit": org_unit, "account_enabled": enabled,
            "last_sign_in": sign_in}


def _devices(rng: np.random.Generator, n: int, n_users: int,
             n_heavy: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Devices in blocks: heavy users', other users' (1-5 each), userless, VM hosts, VMs.

    Returns the columns and the indices of the VM hosts.
    """
    n_vm = round(0.05 * n)
    n_host = max(1, n_vm // 6) if n_vm else 0
    n_free = round(0.07 * n)
    heavy = 100 + rng.integers(0, int(np.clip(n // 4 - 100, 1, 150)), n_heavy)
    n_owned = n - n_vm - n_host - n_free - int(heavy.sum())
    others = rng.permutation(np.arange(n_heavy, n_users))
    owned = np.repeat(others, rng.choice(np.arange(1, 6), len(others),
                                         p=[0.5, 0.25, 0.12, 0.08, 0.05]))[:n_owned]
    vm_user = np.where(rng.random(n_vm) < 0.5, rng.integers(0, n_users, n_vm), -1)
    user = np.concatenate([np.repeat(np.arange(n_heavy), heavy), owned,
                           np.full(n - n_vm - len(owned) - heavy.sum(), -1), vm_user])
    first_host = n - n_vm - n_host
    host = np.full(n, -1)
    host[n - n_vm:] = first_host + rng.integers(0, max(n_host, 1), n_vm)
    cores = rng.choice(np.array([2, 4, 4, 8, 8, 16], np.int32), n)
    cores[first_host:n - n_vm] = rng.choice(np.array([8, 16, 24, 32, 48, 64], np.int32), n_host)
    cores[n - n_vm:] = rng.choice(np.array([1, 2, 4, 8], np.int32), n_vm)
    cores[rng.random(n) < 0.01] = -1
    return {"user_id": user, "host_id": host, "cores": cores}, np.arange(first_host, n - n_vm)


def _licenses(rng: np.random.Generator, n: int, demand: np.ndarray) -> dict[str, np.ndarray]:
    """Licenses of every metric; entitlements scatter around ``demand`` (10% unlimited)."""
    metric = rng.choice(3, n, p=[0.45, 0.35, 0.2]).astype(np.int8)
    metric[:3] = (DEVICE, USER, CORE)
    core = metric == CORE
    estimate = demand * np.where(core, 8, 1) * rng.uniform(0.3, 1.3, n)
    ent = np.where(demand > 0, estimate, rng.integers(0, 50, n)).astype(np.int64)
    ent[rng.random(n) < 0.1] = -1
    sku = np.where((metric == USER) & (rng.random(n) < 0.3),
                   rng.integers(0, len(_LOOKUPS["sku_id"]), n), -1)
    return {
        "metric": metric,
        "entitlements": ent,
        "multiple_use": rng.choice(np.array([1, 0, 5], np.int32), n, p=[0.7, 0.1, 0.2]),
        "allocations_consume": rng.random(n) < 0.2,
        "vm_rights": ((metric != USER) & (rng.random(n) < 0.4)).astype(np.int8),
        "priority": rng.choice(np.array([0, 0, 0, 0, 1, 2, 5, 10], np.int32), n),
        "true_up": rng.random(n) < 0.25,
        "unit_cost": rng.integers(0, 8 * 400, n) / 8,
        "points_per_core": np.where(core, rng.choice([1.0, 0.5, 0.25, 2.0, 1.25], n), 1.0),
        "min_points": np.where(core, rng.choice([0.0, 4.0, 8.0, 16.0], n), 0.0),
        "sku_id": sku,
    }


def _pick_linked(rng: np.random.Generator, app: np.ndarray, link_app: np.ndarray,
                 link_lic: np.ndarray, n_apps: int) -> np.ndarray:
    """A random license linked to each application in ``app`` (-1 when it has none)."""
    count = np.bincount(link_app, minlength=n_apps)
    start = np.cumsum(count) - count
    pos = start[app] + (rng.random(len(app)) * count[app]).astype(np.int64)
    by_app = link_lic[np.argsort(link_app, kind="stable")]
    return np.where(count[app] > 0, by_app[np.minimum(pos, len(by_app) - 1)], -1)


def _allocations(rng: np.random.Generator, users: dict, devices: dict, hosts: np.ndarray,
                 inst: dict, lic: dict, links: tuple[np.ndarray, np.ndarray],
                 n_apps: int) -> dict[str, np.ndarray]:
    """Allocations: half on evidence, a tenth on VM hosts, the rest random; one per target."""
    n_users, n_dev, n_lic = len(users["status"]), len(devices["cores"]), len(lic["metric"])
    n = max(8, n_dev // 10)
    k_ev, k_host = n // 2, n // 10
    rows = rng.integers(0, len(inst["device_id"]), k_ev)
    lic_ev = _pick_linked(rng, inst["application_id"][rows], *links, n_apps)
    host_lics = np.flatnonzero(lic["vm_rights"] == 1)
    license_ = np.concatenate([
        np.where(lic_ev >= 0, lic_ev, rng.integers(0, n_lic, k_ev)),
        rng.choice(host_lics, k_host) if len(host_lics) else rng.integers(0, n_lic, k_host),
        rng.integers(0, n_lic, n - k_ev - k_host)])
    device = np.concatenate([
        inst["device_id"][rows],
        rng.choice(hosts, k_host) if len(hosts) else rng.integers(0, n_dev, k_host),
        rng.integers(0, n_dev, n - k_ev - k_host)])
    # User licenses target the device's active user, else mostly another active user.
    owner = devices["user_id"][device]
    active = np.flatnonzero(users["status"] == ACTIVE)
    other = np.where(rng.random(n) < 0.9, rng.choice(active, n), rng.integers(0, n_users, n))
    owner_ok = (owner >= 0) & (users["status"][np.maximum(owner, 0)] == ACTIVE)
    is_user = lic["metric"][license_] == USER
    party = np.where(is_user, np.where(owner_ok, owner, other), n_users + device)
    _, first = np.unique(license_ * (n_users + n_dev) + party, return_index=True)
    keep = np.sort(first)
    license_, party, n = license_[keep], party[keep], len(keep)
    kind = rng.choice(ALLOCATION_TYPES, n, p=[0.55, 0.2, 0.1, 0.15]).astype(np.int8)
    kind[:ALLOCATION_TYPES] = np.arange(min(n, ALLOCATION_TYPES))
    override = np.where(rng.random(n) < 0.05, rng.integers(0, 8 * 20, n) / 8, np.nan)
    exemption = np.where(rng.random(n) < 0.03,
                         rng.integers(0, len(_LOOKUPS["exemption"]), n), -1)
    return {"license_id": license_, "target_id": party, "type": kind, "override": override,
            "exemption": exemption}


def _tenant(rng: np.random.Generator, n: dict[str, int],
            off: dict[str, int]) -> dict[str, dict[str, np.ndarray]]:
    """One tenant's tables as NumPy columns; id columns hold global row indices (-1: null)."""
    n_users, n_dev, n_apps = n["users"], n["devices"], n["applications"]
    n_heavy = min(max(1, n_users // 5000), n_dev // 400)
    users = _users(rng, n_users, n_heavy)
    devices, hosts = _devices(rng, n_dev, n_users, n_heavy)
    popular = rng.permutation(n_apps)
    inst = {"device_id": rng.integers(0, n_dev, n["installations"], dtype=np.int32),
            "application_id": popular[(n_apps * rng.random(n["installations"]) ** 3)
                                      .astype(np.int32)].astype(np.int32)}
    # ~85% of applications get a license, ~30% of those a second one; ~5% of licenses none.
    n_linkable = max(2, n["licenses"] - max(1, n["licenses"] // 20))
    linked = np.flatnonzero(rng.random(n_apps) < 0.85)
    first = rng.integers(0, n_linkable, len(linked))
    two = rng.random(len(linked)) < 0.3
    second = (first[two] + 1 + rng.integers(0, n_linkable - 1, two.sum())) % n_linkable
    link_app, link_lic = np.concatenate([linked, linked[two]]), np.concatenate([first, second])
    installs = np.bincount(inst["application_id"], minlength=n_apps)
    demand = np.bincount(link_lic, weights=installs[link_app], minlength=n["licenses"])
    lic = _licenses(rng, n["licenses"], demand)
    alloc = _allocations(rng, users, devices, hosts, inst, lic, (link_app, link_lic), n_apps)
    party_dev = off["party"] + n_users  # devices follow this tenant's users in the party space
    alloc["target_id"] = alloc["target_id"] + off["party"]
    alloc["license_id"] = alloc["license_id"] + off["license"]
    return {
        "users": {"user_id": np.arange(n_users) + off["party"], **users},
        "devices": {"device_id": np.arange(n_dev) + party_dev,
                    "user_id": _glob(devices.pop("user_id"), off["party"]),
                    "host_id": _glob(devices.pop("host_id"), party_dev), **devices},
        "installations": {"device_id": inst["device_id"] + party_dev,
                          "application_id": inst["application_id"] + off["application"]},
        "licenses": {"license_id": np.arange(n["licenses"]) + off["license"], **lic},
        "license_applications": {"license_id": link_lic + off["license"],
                                 "application_id": link_app + off["application"]},
        "allocations": alloc,
    }


def _guids(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random version-4 GUID strings, built as one fixed-width byte buffer."""
    raw = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    raw[:, 6] = raw[:, 6] & 0x0F | 0x40
    raw[:, 8] = raw[:, 8] & 0x3F | 0x80
    text = np.full((n, 36), ord("-"), np.uint8)
    text[:, _GUID_HEX_POS] = _HEX[raw].reshape(n, 32)
    offsets = np.arange(0, 36 * n + 1, 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))


def _ids(rng: np.random.Generator, n: int, id_type: str) -> pa.Array:
    """``n`` distinct ids in random order: GUID strings or int64."""
    if id_type == "string":
        return _guids(rng, n)
    return pa.array(rng.permutation(n).astype(np.int64) + 1_000_001)


def _column(col: Column, v: np.ndarray, ids: dict[str, pa.Array],
            tenants: pa.Array, lookups: dict = _LOOKUPS) -> pa.Array:
    """A NumPy column to Arrow; negative ints and NaN floats are nulls.

    Enum codes index the column's values; string codes index ``lookups[column name]``.
    """
    null = np.isnan(v) if v.dtype.kind == "f" else v < 0
    mask = null if null.any() else None
    if col.kind == "tenant":
        return tenants.take(v)
    if col.kind == "id":
        return ids[col.id_kind].take(pa.array(v, mask=mask))
    if col.kind in ("enum", "string"):
        values = col.values if col.kind == "enum" else lookups[col.name]
        return pa.array(values, pa.string()).take(pa.array(v, mask=mask))
    if col.kind == "bool":
        return pa.array(v == 1, mask=mask)
    return pa.array(v, _ARROW_TYPES[col.kind], mask=mask)


def schema(id_type: str = "string") -> dict[str, pa.Schema]:
    """Arrow schemas of the generated tables, from ``CONSUMPTION_INPUTS``."""
    id_arrow = pa.string() if id_type == "string" else pa.int64()
    return {table: pa.schema([(c.name, id_arrow if c.kind == "id" else _ARROW_TYPES[c.kind])
                              for c in cols])
            for table, cols in CONSUMPTION_INPUTS.items()}


def generate(size: str | Size = "S", seed: int = 0, *,
             id_type: str = "string") -> dict[str, pa.Table]:
    """The six section-1 input tables for ``size`` (a ``SIZES`` name or a ``Size``)."""
    if id_type not in ("string", "int64"):
        raise ValueError(f"id_type must be 'string' or 'int64', not {id_type!r}")
    spec = SIZES[size] if isinstance(size, str) else size
    rng = np.random.default_rng(seed)
    fields = ("users", "devices", "installations", "applications", "licenses")
    counts = {f: _split(getattr(spec, f), spec.tenants) for f in fields}
    if min(int(c.min()) for c in counts.values()) < 3:
        raise ValueError(f"{spec} is too small: every tenant needs 3 rows of each kind")
    party = np.cumsum(counts["users"] + counts["devices"]) - counts["users"] - counts["devices"]
    starts = {"party": party,
              **{k: np.cumsum(counts[f]) - counts[f]
                 for k, f in (("application", "applications"), ("license", "licenses"))}}
    parts: dict[str, dict[str, list[np.ndarray]]] = {t: {} for t in CONSUMPTION_INPUTS}
    for t in range(spec.tenants):
        tables = _tenant(rng, {f: int(c[t]) for f, c in counts.items()},
                         {k: int(s[t]) for k, s in starts.items()})
        for name, cols in tables.items():
            rows = len(next(iter(cols.values())))
            for col, values in {"tenant_id": np.full(rows, t, np.int16), **cols}.items():
                parts[name].setdefault(col, []).append(values)
    ids = {"party": _ids(rng, int((counts["users"] + counts["devices"]).sum()), id_type),
           "application": _ids(rng, int(counts["applications"].sum()), id_type),
           "license": _ids(rng, int(counts["licenses"].sum()), id_type)}
    tenants = pa.array([f"tenant-{t:02d}" for t in range(spec.tenants)])
    schemas = schema(id_type)
    return {name: pa.Table.from_arrays(
                [_column(c, np.concatenate(parts[name].pop(c.name)), ids, tenants)
                 for c in cols], schema=schemas[name])
            for name, cols in CONSUMPTION_INPUTS.items()}


def write_dir(tables: dict[str, pa.Table], out_dir: str | Path,
              fmt: str = "parquet") -> list[Path]:
    """Write ``<table>.<fmt>`` per table (parquet, csv or Arrow IPC file); return the paths."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in tables.items():
        path = out / f"{name}.{fmt}"
        if fmt == "parquet":
            pq.write_table(table, path)
        elif fmt == "csv":
            pacsv.write_csv(table, path)
        else:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                w.write_table(table)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    """Command line: generate one dataset and write it to a directory."""
    parser = argparse.ArgumentParser(prog="python -m licensecore.bench.datagen",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="S", choices=list(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--format", default="parquet", choices=FORMATS)
    parser.add_argument("--id-type", default="string", choices=("string", "int64"))
    parser.add_argument("--task", default="all", choices=("consumption", "bundles", "all"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    tables = {}
    if args.task != "bundles":
        tables |= generate(args.size, args.seed, id_type=args.id_type)
    if args.task != "consumption":
        from licensecore.bench.datagen_bundles import generate_bundles  # imports this module
        tables |= generate_bundles(args.size, args.seed, id_type=args.id_type)
    if args.format == "csv":  # CSV has no list type: leave out optional list columns
        tables = {name: t.drop_columns([f.name for f in t.schema if pa.types.is_list(f.type)])
                  for name, t in tables.items()}
    write_dir(tables, args.out, args.format)
    for name, table in tables.items():
        print(f"{name:22s} {table.num_rows:>12,d}")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
