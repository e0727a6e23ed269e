"""The plan of ``graph apply``: a ``fulfillment`` table (SPEC 3.3), read and checked whole.

Columns used: ``tenant_id``, ``license_group_id``, ``op`` (add/remove), ``account_id``, ``status``
(ready/needs_approval); ``bundle_id`` is shown by ``--dry-run`` when present. Ids are Graph object
ids (strings). One plan is one tenant, since one credential reaches one directory. A bad plan is
rejected whole (``InputError``, exit status 2) before anything is sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from licensecore.clients.graph.journal import Change
from licensecore.server.errors import InputError

TABLE = "fulfillment"
IDS = ("tenant_id", "license_group_id", "account_id")
ENUMS = {"op": ("add", "remove"), "status": ("ready", "needs_approval")}


@dataclass
class Plan:
    """The rows of a plan file; ``plan_id`` is the SHA-256 of the file (the journal's scope)."""

    plan_id: str
    changes: list[Change]
    statuses: list[str]
    bundles: list[str | None]

    def select(self, include_needs_approval: bool) -> list[Change]:
        """The changes to perform: ``ready`` ones, plus ``needs_approval`` ones when asked."""
        return [c for c, s in zip(self.changes, self.statuses)
                if s == "ready" or include_needs_approval]


def _fail(column: str, mask: pa.Array, values: pa.Array, problem: str) -> None:
    hits = pc.sum(mask.cast(pa.int64())).as_py() or 0
    if hits:
        row = pc.index(mask, True).as_py()
        raise InputError(TABLE, column, row, values[row].as_py(), hits, problem)


def read_plan(path: str | Path) -> Plan:
    """Read and check a plan file (parquet)."""
    path = Path(path)
    try:
        data = path.read_bytes()
        table = pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException) as exc:
        raise InputError(TABLE, "", -1, str(path), 0, f"cannot read plan {path}: {exc}") from exc
    for name in (*IDS, *ENUMS):
        if name not in table.column_names:
            raise InputError(TABLE, name, -1, None, table.num_rows, "missing required column")
    columns = {}
    for name in (*IDS, *ENUMS):
        column = table.column(name).combine_chunks()
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise InputError(TABLE, name, -1, str(column.type), table.num_rows,
                             f"must be strings (Graph object ids or enum values), not {column.type}")
        _fail(name, column.is_null(), column, "null in a required column")
        columns[name] = column.cast(pa.string())
    for name, allowed in ENUMS.items():
        bad = pc.invert(pc.is_in(columns[name], value_set=pa.array(allowed)))
        _fail(name, bad, columns[name], f"unknown value (allowed: {', '.join(allowed)})")
    tenants = columns["tenant_id"]
    if len(tenants):
        _fail("tenant_id", pc.not_equal(tenants, tenants[0]), tenants,
              "a plan holds one tenant (one Graph credential); split it per tenant")
    seen: set[tuple[str, str]] = set()
    duplicate = []
    for pair in zip(columns["license_group_id"].to_pylist(), columns["account_id"].to_pylist()):
        duplicate.append(pair in seen)
        seen.add(pair)
    _fail("account_id", pa.array(duplicate, pa.bool_()), columns["account_id"],
          "duplicate (license_group_id, account_id): one change per account and group")
    changes = [Change(*row) for row in zip(*(columns[n].to_pylist() for n in
                                             ("tenant_id", "license_group_id", "op", "account_id")))]
    bundles = (table.column("bundle_id").cast(pa.string()).to_pylist()
               if "bundle_id" in table.column_names else [None] * table.num_rows)
    return Plan(hashlib.sha256(data).hexdigest(), changes, columns["status"].to_pylist(), bundles)
