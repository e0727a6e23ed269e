"""Consumption (SPEC section 1) for many tenants on a Dask distributed cluster.

``run_batch(input_dir, output_dir)`` finds one folder per tenant in ``input_dir`` -- hive style
``tenant_id=<t>/`` or plain ``<t>/`` -- each holding the section-1 tables as ``<table>.parquet``,
``.csv`` or ``.arrow``. Every tenant is one independent task, submitted largest first (bytes on
disk), that reads its own input on the worker, computes it with ``compute_consumption`` and writes
``OUTPUT/<tenant>/<table>.parquet`` plus a ``_SUCCESS`` marker: all into a hidden temporary folder
that is then renamed into place, so a tenant's folder is complete or absent. A task returns only a
small summary. A tenant with bad input fails alone, with its message, while the others complete;
``resume`` skips the tenants whose folder has ``_SUCCESS``. Input and output must be on a file
system every worker sees (one machine, or a shared mount). See docs/batch.md.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from licensecore.clients.tableio import SUFFIXES, read_tables, write_tables
from licensecore.server.errors import InputError
from licensecore.server.schema import CONSUMPTION_INPUTS

SUCCESS = "_SUCCESS"
REPORT = "_batch_report.json"  # the last run's BatchReport, in OUTPUT
HIVE_KEY = "tenant_id="
_TMP_PREFIX = ".tmp-"
_LOCAL_CLUSTER_TIMEOUT = 60  # seconds to start or stop the embedded cluster


@dataclass
class Tenant:
    """One tenant's input folder and its size on disk (bytes of its table files)."""

    name: str
    path: Path
    bytes: int


@dataclass
class BatchReport:
    """What a batch did. ``failed`` maps a tenant to its error message."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rows_in: int = 0   # input rows of the tenants computed in this run
    rows_out: int = 0  # output rows written in this run
    seconds: float = 0.0  # wall time of the whole run, cluster start and stop included
    startup_seconds: float = 0.0  # of which: until a worker was ready

    @property
    def tenants_per_s(self) -> float:
        return len(self.done) / self.seconds if self.seconds > 0 else 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows_in / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        return {"done": self.done, "skipped": self.skipped, "failed": self.failed,
                "rows_in": self.rows_in, "rows_out": self.rows_out, "seconds": self.seconds,
                "startup_seconds": self.startup_seconds, "tenants_per_s": self.tenants_per_s,
                "rows_per_s": self.rows_per_s}

    def summary(self) -> str:
        lines = [(f"{len(self.done)} tenants done, {len(self.skipped)} skipped (already done), "
                  f"{len(self.failed)} failed in {self.seconds:.2f} s: "
                  f"{self.tenants_per_s:,.1f} tenants/s, {self.rows_in:,d} input rows "
                  f"({self.rows_per_s:,.0f} rows/s), {self.rows_out:,d} output rows")]
        lines += [f"FAILED {t}: {msg}" for t, msg in sorted(self.failed.items())]
        return "\n".join(lines)


def discover(input_dir: str | os.PathLike, exclude: str | os.PathLike | None = None) -> list[Tenant]:
    """The tenant folders of ``input_dir``, largest first (then by name).

    Raises ``InputError`` when the directory is missing, holds no tenant folder or names one
    tenant twice (``t/`` and ``tenant_id=t/``). Folders starting with ``.`` or ``_`` are ignored,
    and so is ``exclude`` (an output directory inside the input).
    """
    root = Path(input_dir)
    if not root.is_dir():
        raise InputError("", "", -1, str(root), 0, f"input directory {root} does not exist")
    skip = Path(exclude).resolve() if exclude is not None else None
    tenants: dict[str, Tenant] = {}
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry.name[0] in "._" or entry.resolve() == skip:
            continue
        name = unquote(entry.name[len(HIVE_KEY):]) if entry.name.startswith(HIVE_KEY) else entry.name
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise InputError("", "tenant_id", -1, entry.name, 1,
                             f"folder {entry.name} does not name a usable tenant")
        if name in tenants:
            raise InputError("", "tenant_id", -1, name, 2,
                             f"tenant {name} has two folders: {tenants[name].path.name} and {entry.name}")
        size = sum(f.stat().st_size for f in entry.iterdir()
                   if f.is_file() and f.suffix in SUFFIXES)
        tenants[name] = Tenant(name, entry, size)
    if not tenants:
        raise InputError("", "", -1, str(root), 0,
                         f"input directory {root} holds no tenant folder (<t>/ or tenant_id=<t>/)")
    return sorted(tenants.values(), key=lambda t: (-t.bytes, t.name))


def read_tenant(path: str | os.PathLike, tenant: str) -> dict[str, pa.Table]:
    """One tenant's section-1 tables, each with a string ``tenant_id`` equal to ``tenant``.

    A missing ``tenant_id`` column is added from the folder name; a present one must equal it.
    """
    tables = read_tables(path, CONSUMPTION_INPUTS)
    if not tables:
        raise InputError("", "", -1, str(path), 0,
                         f"no input table in {path} (expected <table>.parquet|csv|arrow)")
    out = {}
    for name, table in tables.items():
        column = pa.array([tenant] * table.num_rows, pa.string())
        if "tenant_id" in table.column_names:
            i = table.schema.get_field_index("tenant_id")
            given = table.column(i)
            try:
                text = pc.cast(given, pa.string())
            except pa.ArrowException as exc:
                raise InputError(name, "tenant_id", -1, None, table.num_rows,
                                 f"not a string column ({given.type})") from exc
            bad = np.asarray(pc.fill_null(pc.not_equal(text, tenant), True))
            rows = np.flatnonzero(bad)
            if rows.size:
                raise InputError(name, "tenant_id", int(rows[0]), given[int(rows[0])].as_py(),
                                 int(rows.size), f"differs from the folder's tenant {tenant!r}")
            table = table.set_column(i, "tenant_id", column)
        else:
            table = table.add_column(0, "tenant_id", column)
        out[name] = table
    return out


def run_tenant(tenant: str, input_path: str, output_dir: str) -> dict:
    """The task: read, compute and write one tenant; returns a small summary (never raises).

    The summary: ``tenant``, ``status`` (``done`` or ``failed``), ``rows_in``, ``rows_out``,
    ``seconds`` and, when failed, ``error``. On failure the tenant's output folder is removed, so
    no stale or partial result remains. The worker process keeps freed memory for the next
    tenant, as the command line does (``server.memory``).
    """
    from licensecore.server.consumption import compute_consumption
    from licensecore.server.memory import keep_freed_memory

    keep_freed_memory()
    started = time.perf_counter()
    out = Path(output_dir)
    final = out / tenant
    tmp = out / f"{_TMP_PREFIX}{tenant}-{uuid.uuid4().hex}"
    summary = {"tenant": tenant, "rows_in": 0, "rows_out": 0}
    try:
        tables = read_tenant(input_path, tenant)
        summary["rows_in"] = sum(t.num_rows for t in tables.values())
        outputs = compute_consumption(tables)
        summary["rows_out"] = sum(t.num_rows for t in outputs.values())
        write_tables(outputs, tmp)
        summary["seconds"] = time.perf_counter() - started
        (tmp / SUCCESS).write_text(json.dumps({**summary, "status": "done"}) + "\n")
        _replace_dir(tmp, final)
        summary["status"] = "done"
    except Exception as exc:  # noqa: BLE001 - one tenant's failure is reported, not raised
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_dir(final)
        summary["status"] = "failed"
        summary["error"] = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    summary["seconds"] = time.perf_counter() - started
    return summary


def _replace_dir(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; an older ``final`` is moved aside first, then deleted."""
    try:
        os.rename(tmp, final)
        return
    except OSError:
        if not final.exists():
            raise
    _remove_dir(final)
    os.rename(tmp, final)


def _remove_dir(path: Path) -> None:
    """Remove a folder by renaming it to a hidden name first: it vanishes at once, as a whole."""
    if not path.exists():
        return
    trash = path.with_name(f"{_TMP_PREFIX}old-{path.name}-{uuid.uuid4().hex}")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="tenant", desc="batch", file=sys.stderr,
                disable=not (enabled and sys.stderr.isatty()))


def run_batch(input_dir: str | os.PathLike, output_dir: str | os.PathLike, *,
              scheduler: str | None = None, workers: int | None = None, resume: bool = False,
              progress: bool = True) -> BatchReport:
    """Compute every tenant of ``input_dir`` into ``output_dir/<tenant>/`` on Dask.

    Without ``scheduler`` a ``LocalCluster`` of ``workers`` (default 2) single-threaded worker
    processes is started and stopped; with it, the cluster at that address is used (``workers``
    is then ignored). Raises ``InputError`` for a missing or empty input directory.
    """
    from distributed import Client, LocalCluster, as_completed

    started = time.perf_counter()
    out = Path(output_dir)
    tenants = discover(input_dir, exclude=out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"{_TMP_PREFIX}*"):  # left by a killed worker of an earlier run
        shutil.rmtree(stale, ignore_errors=True)
    report = BatchReport()
    if resume:
        report.skipped = sorted(t.name for t in tenants if (out / t.name / SUCCESS).is_file())
        skipped = set(report.skipped)
        tenants = [t for t in tenants if t.name not in skipped]
    if not tenants:
        return _finish(report, out, started)

    cluster = None
    if scheduler is None:
        with warnings.catch_warnings():  # no dashboard; its HTTP port may be taken: no matter
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR,
                                   timeout=_LOCAL_CLUSTER_TIMEOUT)
    try:
        with Client(cluster if cluster is not None else scheduler,
                    timeout=_LOCAL_CLUSTER_TIMEOUT) as client:
            client.wait_for_workers(1, timeout=_LOCAL_CLUSTER_TIMEOUT)
            report.startup_seconds = time.perf_counter() - started
            run_id = uuid.uuid4().hex[:8]
            futures = {}
            for rank, t in enumerate(tenants):  # largest first: earlier and higher priority
                future = client.submit(run_tenant, t.name, str(t.path), str(out),
                                       key=f"licensecore-batch-{run_id}-{rank}",
                                       priority=len(tenants) - rank, pure=False)
                futures[future] = t.name
            with _progress(len(futures), progress) as bar:
                for future in as_completed(futures):
                    tenant = futures[future]
                    if future.status == "finished":
                        result = future.result()
                    else:  # the task itself died (a worker killed, for instance)
                        try:
                            exc = future.exception()
                        except BaseException as cancelled:  # noqa: BLE001 - cancelled future
                            exc = cancelled
                        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                  "rows_in": 0, "rows_out": 0}
                        _remove_dir(out / tenant)
                    future.release()
                    if result["status"] == "done":
                        report.done.append(tenant)
                        report.rows_in += result["rows_in"]
                        report.rows_out += result["rows_out"]
                    else:
                        report.failed[tenant] = result["error"]
                        if not bar.disable:
                            bar.write(f"licensecore: tenant {tenant} failed: {result['error']}",
                                      file=sys.stderr)
                    bar.update(1)
    finally:
        if cluster is not None:
            cluster.close(timeout=_LOCAL_CLUSTER_TIMEOUT)
    return _finish(report, out, started)


def _finish(report: BatchReport, out: Path, started: float) -> BatchReport:
    """Sort, time, and write ``OUTPUT/_batch_report.json`` (through a renamed temporary file)."""
    report.done.sort()
    report.failed = dict(sorted(report.failed.items()))
    report.seconds = time.perf_counter() - started
    tmp = out / f"{_TMP_PREFIX}{REPORT}-{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    os.replace(tmp, out / REPORT)
    return report
