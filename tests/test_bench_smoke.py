"""Smoke test of the benchmark runner at size S: one result per engine, every peer agrees, the JSON
has its schema, every call ran and was measured in a process of its own; a peer that disagrees
makes the runner raise.

No timing is asserted beyond its being positive.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pytest

from licensecore.bench import run as bench_run
from licensecore.clients.bench_cli import add_bench_command

RESULT_KEYS = {"task", "engine", "size", "rows", "input_bytes", "median_s", "min_s", "max_s",
               "peak_rss_bytes", "rss_delta_bytes", "input_rss_bytes"}
CLEAR_REFS = Path("/proc/self/clear_refs").exists()  # else ru_maxrss only (not Linux)


def test_runner_size_s_both_tasks(tmp_path, capsys) -> None:
    out = tmp_path / "s.json"
    plot = tmp_path / "s.png"
    bench_run.main(["--size", "S", "--repeat", "1", "--json", str(out), "--plot", str(plot)])
    printed = capsys.readouterr().out
    assert "agrees with licensecore" in printed
    assert "peak/input" in printed
    report = json.loads(out.read_text())
    assert {"cpu", "cores", "memory_bytes", "python", "versions"} <= set(report["machine"])
    results = report["results"]
    assert [(r["task"], r["engine"]) for r in results] == [
        *(("consumption", e) for e in ("licensecore", "licensecore-full", "licensecore-grpc",
                                       "duckdb", "polars", "reference", "floor")),
        *(("bundles", e) for e in ("licensecore", "licensecore-full", "licensecore-grpc",
                                   "duckdb", "reference", "floor"))]
    for r in results:
        assert RESULT_KEYS <= set(r)
        assert r["size"] == "S" and r["rows"] > 0 and r["input_bytes"] > 0 and r["repeat"] == 1
        assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["peak_rss_bytes"] > 0
        if CLEAR_REFS:
            assert r["peak_rss_bytes"] >= r["input_rss_bytes"] > 0 and r["rss_delta_bytes"] >= 0
            assert r["rss_delta_bytes"] == r["peak_rss_bytes"] - r["input_rss_bytes"]
    assert plot.stat().st_size > 0


def test_runner_raises_when_a_child_disagrees(monkeypatch) -> None:
    """The expected output loses a row: the first checked engine's child exits non-zero with
    ``assert_same``'s message, and the runner raises it before that engine's time is logged."""
    write_data = bench_run.write_data

    def wrong_expected(task, size, seed, directory, log):
        shapes = write_data(task, size, seed, directory, log)
        path = directory / "expected" / "license_summary.arrow"
        with pa.OSFile(str(path)) as f:
            table = pa.ipc.open_file(f).read_all().slice(1)
        with pa.ipc.new_file(str(path), table.schema) as writer:
            writer.write_table(table)
        return shapes

    monkeypatch.setattr(bench_run, "write_data", wrong_expected)
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="licensecore-grpc disagrees with licensecore on "
                                           "license_summary: .* rows, want"):
        bench_run.run_task("consumption", "S", 1, 0, lines.append)
    assert not any("licensecore-grpc #" in line for line in lines)
    assert any(line.startswith("[consumption S] licensecore #1: ") for line in lines)


def test_result_takes_the_median_and_the_highest_peak() -> None:
    runs = [{"seconds": s, "peak_rss_bytes": p, "input_rss_bytes": 10, "rss_delta_bytes": p - 10}
            for s, p in ((3.0, 50), (1.0, 90), (2.0, 70))]
    r = bench_run._result("bundles", "S", "duckdb", (7, 1000), runs)
    assert (r["median_s"], r["min_s"], r["max_s"], r["repeat"]) == (2.0, 1.0, 3.0, 3)
    assert (r["peak_rss_bytes"], r["rss_delta_bytes"], r["input_rss_bytes"]) == (90, 80, 10)
    assert (r["rows"], r["input_bytes"], r["engine"]) == (7, 1000, "duckdb")


def test_bench_subcommand_parses() -> None:
    parser = argparse.ArgumentParser(prog="licensecore")
    sub = parser.add_subparsers(required=True)
    add_bench_command(sub)
    args = parser.parse_args(["bench", "--size", "M", "--task", "bundles", "--json", "x.json"])
    assert (args.size, args.task, args.repeat, str(args.json)) == ("M", "bundles", 3, "x.json")
    assert callable(args.run)
