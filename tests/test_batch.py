"""``licensecore batch``: many tenants on a Dask cluster (clients/batch.py, docs/batch.md).

One module-scoped LocalCluster (2 single-threaded worker processes) serves every test but the one
of the embedded default cluster; both are shut down with timeouts whatever happens.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from licensecore.bench.datagen_tenants import write_tenants
from licensecore.clients.batch import REPORT, SUCCESS, discover, read_tenant, run_batch
from licensecore.clients.cli import main
from licensecore.clients.tableio import read_tables
from licensecore.server.consumption import compute_consumption, warm_up
from licensecore.server.errors import InputError
from licensecore.server.schema import CONSUMPTION_INPUTS

distributed = pytest.importorskip("distributed")

N = 20
TIMEOUT = 60
OUTPUTS = ("consumption", "license_summary", "unlicensed", "chargeback")


@pytest.fixture(scope="module")
def scheduler():
    # Compile the kernels here first: the workers then load them from Numba's on-disk cache
    # instead of compiling them at once on a cold CI runner.
    warm_up()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40, timeout=TIMEOUT)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The same 20 small tenants in both layouts (folders keep tenant_id, hive drops it)."""
    root = tmp_path_factory.mktemp("tenants")
    write_tenants(root / "folders", N, seed=3, total_installations=6_000, layout="folders")
    write_tenants(root / "hive", N, seed=3, total_installations=6_000, layout="hive")
    return root


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def expected(folder: Path, tenant: str) -> dict[str, pa.Table]:
    """The tenant computed alone, in-process."""
    tables = read_tables(folder, CONSUMPTION_INPUTS)
    if "tenant_id" not in tables["users"].column_names:
        tables = {n: t.add_column(0, "tenant_id", pa.array([tenant] * t.num_rows, pa.string()))
                  for n, t in tables.items()}
    return compute_consumption(tables)


def assert_matches_alone(input_dir: Path, out: Path, tenants: list[str], folder_of) -> None:
    for tenant in tenants:
        want = expected(input_dir / folder_of(tenant), tenant)
        assert (out / tenant / SUCCESS).is_file()
        for name in OUTPUTS:
            got = pq.read_table(out / tenant / f"{name}.parquet")
            assert got.equals(want[name]), (tenant, name)


def no_temporaries(out: Path) -> bool:
    return not [p for p in out.iterdir() if p.name.startswith(".")] and (out / REPORT).is_file()


def test_folders_match_each_tenant_alone_and_bad_tenant_fails_alone(scheduler, datasets, tmp_path):
    data = copy(datasets / "folders", tmp_path / "in")
    bad = "tenant-007"
    inst = pq.read_table(data / bad / "installations.parquet")
    devices = inst.column("device_id").to_pylist()
    devices[5] = "no-such-device"
    pq.write_table(inst.set_column(1, "device_id", pa.array(devices)),
                   data / bad / "installations.parquet")
    out = tmp_path / "out"

    report = run_batch(data, out, scheduler=scheduler, progress=False)

    good = sorted(f"tenant-{i:03d}" for i in range(N) if i != 7)
    assert report.done == good and not report.skipped
    assert list(report.failed) == [bad]
    assert "installations.device_id" in report.failed[bad]
    assert "no-such-device" in report.failed[bad]
    assert not (out / bad).exists() and no_temporaries(out)
    assert_matches_alone(data, out, good, lambda t: t)
    assert report.rows_in == sum(sum(t.num_rows for t in read_tables(data / g, CONSUMPTION_INPUTS)
                                     .values()) for g in good)
    assert report.tenants_per_s > 0 and report.rows_per_s > 0
    saved = json.loads((out / REPORT).read_text())
    assert saved["done"] == good and saved["failed"] == report.failed

    # --resume: nothing done is recomputed; the failed tenant is tried again (and fails again).
    def stamps():
        return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != REPORT}

    before = stamps()
    again = run_batch(data, out, scheduler=scheduler, resume=True, progress=False)
    assert again.skipped == good and again.done == [] and list(again.failed) == [bad]
    assert stamps() == before

    # Once fixed, --resume computes just that tenant.
    shutil.copy(datasets / "folders" / bad / "installations.parquet",
                data / bad / "installations.parquet")
    fixed = run_batch(data, out, scheduler=scheduler, resume=True, progress=False)
    assert fixed.done == [bad] and len(fixed.skipped) == N - 1 and not fixed.failed
    assert_matches_alone(data, out, [bad], lambda t: t)


def test_hive_layout_adds_tenant_id_and_rejects_corrupt_or_foreign_files(scheduler, datasets, tmp_path):
    data = copy(datasets / "hive", tmp_path / "in")
    (data / "tenant_id=tenant-003" / "licenses.parquet").write_bytes(b"PAR1 not parquet at all")
    foreign = data / "tenant_id=tenant-011" / "users.parquet"
    users = pq.read_table(foreign)
    pq.write_table(users.add_column(0, "tenant_id", pa.array(["tenant-012"] * users.num_rows)),
                   foreign)
    out = tmp_path / "out"

    report = run_batch(data, out, scheduler=scheduler, progress=False)

    assert sorted(report.failed) == ["tenant-003", "tenant-011"]
    assert "licenses" in report.failed["tenant-003"] and "cannot read" in report.failed["tenant-003"]
    assert "users.tenant_id" in report.failed["tenant-011"]
    assert "tenant-012" in report.failed["tenant-011"]
    good = [f"tenant-{i:03d}" for i in range(N) if i not in (3, 11)]
    assert report.done == good and no_temporaries(out)
    assert_matches_alone(data, out, good, lambda t: f"tenant_id={t}")
    # The hive output equals the folders output: the tenant_id came from the folder name.
    folders = run_batch(datasets / "folders", tmp_path / "out2", scheduler=scheduler, progress=False)
    assert folders.done == sorted(f"tenant-{i:03d}" for i in range(N))
    for tenant in good:
        for name in OUTPUTS:
            assert pq.read_table(out / tenant / f"{name}.parquet").equals(
                pq.read_table(tmp_path / "out2" / tenant / f"{name}.parquet"))


def test_rerun_without_resume_replaces_and_failure_removes_stale_output(scheduler, datasets, tmp_path):
    data = copy(datasets / "folders", tmp_path / "in")
    out = tmp_path / "out"
    (out / "tenant-001").mkdir(parents=True)
    (out / "tenant-001" / "stale.parquet").write_bytes(b"old")
    (out / ".tmp-tenant-002-dead").mkdir()  # left by a killed worker
    (data / "tenant-004" / "devices.parquet").write_bytes(b"garbage")
    (out / "tenant-004").mkdir()
    (out / "tenant-004" / SUCCESS).write_text("from an earlier run")

    report = run_batch(data, out, scheduler=scheduler, progress=False)

    assert list(report.failed) == ["tenant-004"] and len(report.done) == N - 1
    assert not (out / "tenant-001" / "stale.parquet").exists()
    assert not (out / "tenant-004").exists() and no_temporaries(out)


def test_discover_largest_first_and_layouts(datasets, tmp_path):
    tenants = discover(datasets / "hive")
    assert len(tenants) == N
    assert [t.bytes for t in tenants] == sorted((t.bytes for t in tenants), reverse=True)
    assert tenants[0].bytes > 3 * tenants[-1].bytes  # power-law sizes
    assert {t.name for t in tenants} == {t.name for t in discover(datasets / "folders")}
    # A tenant named by two folders, a missing and an empty directory are bad input.
    mixed = copy(datasets / "hive", tmp_path / "mixed")
    shutil.copytree(datasets / "folders" / "tenant-001", mixed / "tenant-001")
    with pytest.raises(InputError, match="two folders"):
        discover(mixed)
    with pytest.raises(InputError, match="does not exist"):
        discover(tmp_path / "missing")
    (tmp_path / "empty" / "_ignored").mkdir(parents=True)
    with pytest.raises(InputError, match="no tenant folder"):
        discover(tmp_path / "empty")


def test_read_tenant_checks_and_fills_tenant_id(datasets):
    hive = read_tenant(datasets / "hive" / "tenant_id=tenant-002", "tenant-002")
    folders = read_tenant(datasets / "folders" / "tenant-002", "tenant-002")
    for name, table in hive.items():
        assert table.column("tenant_id").type == pa.string()
        assert table.select(folders[name].column_names).equals(folders[name])
    with pytest.raises(InputError, match="differs from the folder's tenant"):
        read_tenant(datasets / "folders" / "tenant-002", "tenant-005")


def test_cli_exit_statuses(scheduler, datasets, tmp_path, capsys):
    data = copy(datasets / "folders", tmp_path / "in")
    out = tmp_path / "out"
    args = ["batch", "--input", str(data), "--output", str(out), "--scheduler", scheduler]
    assert main(args) == 0
    assert len([p for p in out.iterdir() if (p / SUCCESS).is_file()]) == N
    assert main(args + ["--resume"]) == 0
    assert f"{N} skipped" in capsys.readouterr().out
    (data / "tenant-009" / "users.parquet").write_bytes(b"garbage")
    assert main(args) == 1
    assert "tenant-009" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad in (tmp_path / "missing", empty):
        assert main(["batch", "--input", str(bad), "--output", str(out),
                     "--scheduler", scheduler]) == 2
        assert "bad input" in capsys.readouterr().err


def test_embedded_local_cluster(datasets, tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    for tenant in ("tenant-000", "tenant-001", "tenant-002"):
        shutil.copytree(datasets / "hive" / f"tenant_id={tenant}", data / f"tenant_id={tenant}")
    out = tmp_path / "out"
    report = run_batch(data, out, progress=False)  # no scheduler: a LocalCluster of 2 workers
    assert report.done == ["tenant-000", "tenant-001", "tenant-002"] and not report.failed
    assert_matches_alone(data, out, report.done, lambda t: f"tenant_id={t}")
