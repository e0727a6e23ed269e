"""Input and output directories of the command line: one file per table, named after it.

Inputs may be ``<table>.parquet``, ``.csv`` or ``.arrow`` (Arrow IPC file or stream). Outputs
are written as ``<table>.parquet`` only after every table is computed, each through a temporary
file renamed into place, so a failure leaves no half-written output.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from licensecore.server.errors import InputError

SUFFIXES = (".parquet", ".csv", ".arrow")


def read_tables(directory: str | os.PathLike, names: Iterable[str]) -> dict[str, pa.Table]:
    """Read every table of ``names`` present in ``directory``; absent tables are left out."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError("", "", -1, str(root), 0, f"input directory {root} does not exist")
    tables = {}
    for name in names:
        found = [root / f"{name}{s}" for s in SUFFIXES if (root / f"{name}{s}").is_file()]
        if len(found) > 1:
            raise InputError(name, "", -1, None, 0,
                             f"several files for one table: {', '.join(p.name for p in found)}")
        if found:
            tables[name] = _read(name, found[0])
    return tables


def _read(name: str, path: Path) -> pa.Table:
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        if path.suffix == ".csv":
            options = pacsv.ConvertOptions(strings_can_be_null=True)
            return pacsv.read_csv(path, convert_options=options)
        try:
            return ipc.open_file(path).read_all()
        except pa.ArrowInvalid:
            return ipc.open_stream(path).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise InputError(name, "", -1, None, 0, f"cannot read {path.name}: {exc}") from exc


def write_tables(tables: Mapping[str, pa.Table], directory: str | os.PathLike) -> list[Path]:
    """Write each table as ``<name>.parquet`` in ``directory`` (created if needed)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    staged = [(root / f".{name}.parquet.tmp", root / f"{name}.parquet") for name in tables]
    try:
        for (tmp, _), table in zip(staged, tables.values()):
            pq.write_table(table, tmp)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in staged:
        os.replace(tmp, final)
    return [final for _, final in staged]
