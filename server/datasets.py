"""Uploaded datasets, keyed by random handles: kept in memory up to a byte budget and, with a data
directory, stored durably on disk so a restart keeps them.

On disk a dataset is a directory ``<data_dir>/<id>/`` holding one Arrow IPC file per table and a
``manifest.json`` (rows, bytes and SHA-256 of each file, tenants, created time). It is written under
``.tmp-<id>`` and renamed into place only when complete and fsynced, so an interrupted upload leaves
no half dataset; leftovers of such a write are removed when a store opens the directory. A dataset
read back from disk is checked against its manifest first and refused (``DatasetCorrupt``) rather
than served wrong. There is no disk cap: datasets stay until the operator deletes their directory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from licensecore import compact
from licensecore.server.errors import InputError, LicenseCoreError
from licensecore.server.limits import LimitExceeded, Limits

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
TEMP_PREFIX = ".tmp-"
_DATASET_ID = re.compile(r"[0-9a-f]{32}")
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")


class UnknownDataset(LicenseCoreError):
    """No dataset has this handle (never uploaded, or evicted from a store without a data dir)."""

    def __init__(self, dataset_id: str) -> None:
        super().__init__(f"unknown dataset {dataset_id!r}")
        self.dataset_id = dataset_id


class DatasetCorrupt(LicenseCoreError):
    """A stored file of the dataset does not match its manifest (changed, truncated, unreadable)."""

    def __init__(self, dataset_id: str, file: str, problem: str) -> None:
        super().__init__(f"dataset {dataset_id!r} is corrupt: {file}: {problem}")
        self.dataset_id = dataset_id
        self.file = file
        self.problem = problem


class DatasetStore:
    """Thread-safe store of datasets (``dict[str, pa.Table]``) under uuid4 hex handles.

    Datasets stay in memory up to ``memory_budget_bytes`` of ``pa.Table.nbytes``, the least
    recently used evicted first. With ``data_dir`` every dataset is also on disk and an evicted one
    is read back (memory-mapped); without it an evicted dataset is gone, and one larger than the
    budget is refused with ``LimitExceeded("memory_budget_bytes")``. One server per data directory.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        memory_budget_bytes: int = Limits.memory_budget_bytes,
    ) -> None:
        self._dir = Path(data_dir) if data_dir is not None else None
        self._budget = memory_budget_bytes
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, tuple[dict[str, pa.Table], int]] = OrderedDict()
        self._tenants: dict[str, frozenset[str]] = {}
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            for leftover in self._dir.glob(TEMP_PREFIX + "*"):
                log.warning("removing %s, left by an interrupted upload", leftover)
                shutil.rmtree(leftover)

    def put(self, tables: Mapping[str, pa.Table],
            tenants: Mapping[str, frozenset[str] | None] | None = None) -> str:
        """Store ``tables`` (on disk first, when there is a data dir) and return the new handle.
        ``tenants``: their ``tenants_by_table``, when the caller has it already."""
        tables = dict(tables)
        nbytes = sum(table.nbytes for table in tables.values())
        if self._dir is None and nbytes > self._budget:
            raise LimitExceeded("memory_budget_bytes", self._budget, nbytes)
        dataset_id = uuid.uuid4().hex
        tenants = _union(tables, tenants if tenants is not None else tenants_by_table(tables))
        if self._dir is not None:
            _write(self._dir, dataset_id, tables, tenants)
        with self._lock:
            self._tenants[dataset_id] = tenants
        self._remember(dataset_id, tables, nbytes)
        return dataset_id

    def get(self, dataset_id: str) -> dict[str, pa.Table]:
        """The tables of ``dataset_id``; raises ``UnknownDataset`` or ``DatasetCorrupt``."""
        with self._lock:
            if dataset_id in self._memory:
                self._memory.move_to_end(dataset_id)
                return dict(self._memory[dataset_id][0])
        tables = _read(self._directory_of(dataset_id), dataset_id)
        self._remember(dataset_id, tables, sum(table.nbytes for table in tables.values()))
        return dict(tables)

    def tenants(self, dataset_id: str) -> frozenset[str]:
        """The tenant ids found in the ``tenant_id`` columns of the dataset (from the manifest)."""
        with self._lock:
            if dataset_id in self._tenants:
                return self._tenants[dataset_id]
        manifest = _manifest(self._directory_of(dataset_id), dataset_id)
        tenants = frozenset(manifest["tenants"])
        with self._lock:
            self._tenants[dataset_id] = tenants
        return tenants

    def _directory_of(self, dataset_id: str) -> Path:
        """The directory of a stored dataset; ``UnknownDataset`` when there is none."""
        if self._dir is None or not _DATASET_ID.fullmatch(dataset_id):
            raise UnknownDataset(dataset_id)
        directory = self._dir / dataset_id
        if not directory.is_dir():
            raise UnknownDataset(dataset_id)
        return directory

    def _remember(self, dataset_id: str, tables: dict[str, pa.Table], nbytes: int) -> None:
        """Keep ``tables`` in memory if they fit the budget, evicting the least recently used."""
        if nbytes > self._budget:
            return
        with self._lock:
            self._memory[dataset_id] = (tables, nbytes)
            self._memory.move_to_end(dataset_id)
            used = sum(size for _, size in self._memory.values())
            while used > self._budget:
                evicted, (_, size) = self._memory.popitem(last=False)
                used -= size
                if self._dir is None:
                    del self._tenants[evicted]
                log.info("dataset %s evicted from memory (%d bytes)", evicted, size)


def tenants_by_table(tables: Mapping[str, pa.Table]) -> dict[str, frozenset[str] | None]:
    """The distinct ``tenant_id`` values of each table as text (what token scopes hold): empty for
    a table without the column, None for a column that cannot be read as text. One pass serves
    both the scope check (``auth.check_tables``) and the store's tenant set."""
    return {name: _tenants(table) for name, table in tables.items()}


def _tenants(table: pa.Table) -> frozenset[str] | None:
    if "tenant_id" not in table.column_names:
        return frozenset()
    column, field = table.column("tenant_id"), table.schema.field("tenant_id")
    if compact.is_guid_column(field):
        column = compact.expanded(column, field)
    try:
        values = pc.unique(column.cast(pa.string())).drop_null()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return frozenset(values.to_pylist())


def _union(tables: Mapping[str, pa.Table], tenants: Mapping[str, frozenset[str] | None]) -> frozenset[str]:
    """Every table's tenants together; ``InputError`` for a ``tenant_id`` column that is not text
    (SPEC section 0)."""
    for name, found in tenants.items():
        if found is None:
            table = tables[name]
            raise InputError(name, "tenant_id", -1, None, table.num_rows,
                             f"tenant_id must be text, not {table.column('tenant_id').type}")
    return frozenset().union(*tenants.values())


def _write(data_dir: Path, dataset_id: str, tables: Mapping[str, pa.Table],
           tenants: frozenset[str]) -> None:
    """Write the dataset under a temporary name, fsync it, then rename it into place."""
    temp = data_dir / f"{TEMP_PREFIX}{dataset_id}"
    temp.mkdir()
    try:
        files = {}
        for name, table in tables.items():
            if not _TABLE_NAME.fullmatch(name):
                raise ValueError(f"table name {name!r} cannot be a file name")
            path = temp / f"{name}.arrow"
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            _fsync(path)
            files[name] = {"file": path.name, "rows": table.num_rows,
                           "bytes": path.stat().st_size, "sha256": _sha256(path)}
        manifest = {
            "format": 1,
            "dataset_id": dataset_id,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            "tenants": sorted(tenants),
            "tables": files,
        }
        (temp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _fsync(temp / MANIFEST)
        _fsync(temp)
        os.replace(temp, data_dir / dataset_id)
        _fsync(data_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _manifest(directory: Path, dataset_id: str) -> dict:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        if manifest["dataset_id"] != dataset_id or not isinstance(manifest["tables"], dict):
            raise ValueError("it describes another dataset or no tables")
        return manifest
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _corrupt(dataset_id, MANIFEST, f"unreadable manifest ({exc})") from None


def _read(directory: Path, dataset_id: str) -> dict[str, pa.Table]:
    """The dataset's tables, memory-mapped, each file checked against the manifest first."""
    tables = {}
    for name, entry in _manifest(directory, dataset_id)["tables"].items():
        file = entry["file"]
        path = directory / file
        if not path.is_file():
            raise _corrupt(dataset_id, file, "file missing")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise _corrupt(dataset_id, file, f"{size} bytes on disk, {entry['bytes']} written")
        if _sha256(path) != entry["sha256"]:
            raise _corrupt(dataset_id, file, "SHA-256 differs from the manifest")
        try:
            table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        except (pa.ArrowException, OSError) as exc:
            raise _corrupt(dataset_id, file, f"unreadable Arrow IPC file ({exc})") from None
        if table.num_rows != entry["rows"]:
            raise _corrupt(dataset_id, file, f"{table.num_rows} rows, {entry['rows']} written")
        tables[name] = table
    return tables


def _corrupt(dataset_id: str, file: str, problem: str) -> DatasetCorrupt:
    error = DatasetCorrupt(dataset_id, file, problem)
    log.error("%s", error)
    return error


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _fsync(path: Path) -> None:
    """Flush a file's or a directory's entries to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
