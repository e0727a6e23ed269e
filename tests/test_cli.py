"""The command line (SPEC section 7): in-process and through --server give identical tables."""

from __future__ import annotations

import socket
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from licensecore.bench.datagen import generate, write_dir
from licensecore.bench.datagen_bundles import generate_bundles
from licensecore.clients import LicenseCoreClient
from licensecore.clients.cli import main

OUTPUTS = ("consumption", "license_summary", "unlicensed", "chargeback")
BUNDLE_OUTPUTS = ("bundle_assignees", "fulfillment", "bundle_summary", "pool_summary", "sku_summary",
                  "eligibility", "conflicts", "warnings")


@pytest.fixture(scope="module")
def input_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("input")
    write_dir(generate("S", seed=3), path)
    return path


def _read_outputs(path, names=OUTPUTS) -> dict[str, pa.Table]:
    return {name: pq.read_table(path / f"{name}.parquet") for name in names}


def test_consume_in_process_and_through_server_write_identical_tables(
    input_dir, server_address, tmp_path, capsys
):
    assert main(["consume", "--input", str(input_dir), "--output", str(tmp_path / "local")]) == 0
    summary = capsys.readouterr().out
    assert "TOTAL" in summary and "shortfall" in summary
    remote = ["consume", "--input", str(input_dir), "--output", str(tmp_path / "remote"),
              "--server", server_address]
    assert main(remote) == 0
    local, through = _read_outputs(tmp_path / "local"), _read_outputs(tmp_path / "remote")
    for name in OUTPUTS:
        assert local[name].num_rows > 0
        assert local[name].equals(through[name]), name


def test_consume_reads_csv_and_arrow_like_parquet(tmp_path):
    tables = generate("S", seed=4)
    for fmt in ("parquet", "csv", "arrow"):
        write_dir(tables, tmp_path / fmt, fmt=fmt)
        assert main(["consume", "--input", str(tmp_path / fmt), "--output", str(tmp_path / f"out-{fmt}")]) == 0
    want = _read_outputs(tmp_path / "out-parquet")
    for fmt in ("csv", "arrow"):
        got = _read_outputs(tmp_path / f"out-{fmt}")
        for name in OUTPUTS:
            assert got[name].to_pylist() == want[name].to_pylist(), (fmt, name)


def _bad_input_dir(tmp_path):
    tables = generate("S", seed=5)
    lic = tables["licenses"]
    metric = lic.column("metric").to_pylist()
    metric[7] = "seat"
    tables["licenses"] = lic.set_column(lic.schema.get_field_index("metric"), "metric", pa.array(metric))
    write_dir(tables, tmp_path / "bad")
    return tmp_path / "bad"


@pytest.mark.parametrize("through_server", [False, True], ids=["in-process", "server"])
def test_bad_input_exits_2_names_the_cell_and_writes_nothing(
    tmp_path, capsys, server_address, through_server
):
    argv = ["consume", "--input", str(_bad_input_dir(tmp_path)), "--output", str(tmp_path / "out")]
    if through_server:
        argv += ["--server", server_address]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "licenses.metric" in err and "row 7" in err and "'seat'" in err and "1 row(s)" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_console_script_reports_bad_input_without_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "licensecore.clients.cli", "consume", "--input",
         str(_bad_input_dir(tmp_path)), "--output", str(tmp_path / "out")],
        capture_output=True, text=True,
    )
    assert done.returncode == 2
    assert "licenses.metric" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_missing_input_directory_is_bad_input(tmp_path, capsys):
    assert main(["consume", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unreachable_server_exits_1_with_status_name(input_dir, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["consume", "--input", str(input_dir), "--output", str(tmp_path / "o"),
            "--server", f"127.0.0.1:{port}"]
    assert main(argv) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_demo_prints_figures_and_summary(capsys, tmp_path):
    assert main(["demo", "--size", "S", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "installations" in out and "peak RSS" in out and "TOTAL" in out
    assert _read_outputs(tmp_path)["license_summary"].num_rows > 0


def test_serve_command_serves_until_terminated():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "licensecore.clients.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line, proc.stderr.read() if proc.poll() is not None else line
        with LicenseCoreClient(f"127.0.0.1:{port}") as client:
            assert client.health() == "SERVING"
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundles")
    write_dir(generate_bundles("S", seed=2), path)
    return path


def test_bundles_in_process_and_through_server_write_identical_tables(
    bundle_dir, server_address, tmp_path, capsys
):
    options = ["--max-remove-fraction", "0.25", "--guard-min-members", "5"]
    assert main(["bundles", "--input", str(bundle_dir), "--output", str(tmp_path / "local"), *options]) == 0
    summary = capsys.readouterr().out
    assert "removes awaiting approval" in summary and "monthly cost" in summary
    remote = ["bundles", "--input", str(bundle_dir), "--output", str(tmp_path / "remote"),
              "--server", server_address, *options]
    assert main(remote) == 0
    local = _read_outputs(tmp_path / "local", BUNDLE_OUTPUTS)
    through = _read_outputs(tmp_path / "remote", BUNDLE_OUTPUTS)
    for name in BUNDLE_OUTPUTS:
        assert local[name].equals(through[name]), name
    assert local["fulfillment"].num_rows > 0 and local["bundle_assignees"].num_rows > 0


def test_bundles_options_change_the_guard(bundle_dir, tmp_path):
    statuses = {}
    for fraction in ("0", "1"):
        out = tmp_path / fraction
        assert main(["bundles", "--input", str(bundle_dir), "--output", str(out),
                     "--max-remove-fraction", fraction, "--guard-min-members", "0"]) == 0
        plan = pq.read_table(out / "fulfillment.parquet").to_pylist()
        statuses[fraction] = {r["status"] for r in plan if r["op"] == "remove"}
    assert statuses["0"] == {"needs_approval"}
    assert "ready" in statuses["1"]


@pytest.mark.parametrize("through_server", [False, True], ids=["in-process", "server"])
def test_bundles_bad_filter_exits_2_and_writes_nothing(
    bundle_dir, tmp_path, capsys, server_address, through_server
):
    tables = generate_bundles("S", seed=2)
    coll = tables["collections"]
    filters = coll.column("filter").to_pylist()
    filters[3] = "department == 'Sales' or __import__('os')"
    tables["collections"] = coll.set_column(coll.schema.get_field_index("filter"), "filter", pa.array(filters))
    write_dir(tables, tmp_path / "bad")
    argv = ["bundles", "--input", str(tmp_path / "bad"), "--output", str(tmp_path / "out")]
    if through_server:
        argv += ["--server", server_address]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "collections.filter" in err and "row 3" in err and "position" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


RECONCILE_OUTPUTS = ("reconciliation", "reconciliation_detail", "reclaim", *OUTPUTS)


def test_reconcile_in_process_and_through_server_write_identical_tables(server_address, tmp_path, capsys):
    from test_reconciliation import _seed_thread

    tables = _seed_thread(allocations_consume=True)
    tables["users"] = tables["users"].append_column(
        "last_sign_in", pa.array([None], pa.timestamp("us")))
    write_dir(tables, tmp_path / "in")
    argv = ["reconcile", "--input", str(tmp_path / "in"), "--as-of", "2026-01-01T00:00:00Z",
            "--inactive-days", "30"]
    assert main([*argv, "--output", str(tmp_path / "local")]) == 0
    assert "multiple_use_overflow 1" in capsys.readouterr().out
    assert main([*argv, "--output", str(tmp_path / "remote"), "--server", server_address]) == 0
    local = _read_outputs(tmp_path / "local", RECONCILE_OUTPUTS)
    remote = _read_outputs(tmp_path / "remote", RECONCILE_OUTPUTS)
    for name in RECONCILE_OUTPUTS:
        assert local[name].equals(remote[name]), name
    assert local["reconciliation_detail"]["difference"].to_pylist() == [26.0]
    assert local["reclaim"]["reason"].to_pylist() == ["never_signed_in"]


def test_reconcile_rejects_a_bad_time_with_status_2(tmp_path, capsys):
    argv = ["reconcile", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--as-of", "soon"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and "ISO 8601" in capsys.readouterr().err
