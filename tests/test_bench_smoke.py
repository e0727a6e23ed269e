"""Smoke test of the benchmark runner at size S: every peer agrees, the JSON has its schema, every
engine's memory was measured in a process of its own.

No timing is asserted. The runner raises when a peer's output differs from licensecore's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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
    engines = {(r["task"], r["engine"]) for r in results}
    for engine in ("licensecore", "licensecore-full", "licensecore-grpc", "duckdb", "polars",
                   "reference", "floor"):
        assert ("consumption", engine) in engines
    for engine in ("licensecore", "licensecore-grpc", "duckdb", "reference", "floor"):
        assert ("bundles", engine) in engines
    for r in results:
        assert RESULT_KEYS <= set(r)
        assert r["size"] == "S" and r["rows"] > 0 and r["input_bytes"] > 0
        assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"]
        assert r["peak_rss_bytes"] > 0
        if CLEAR_REFS:
            assert r["peak_rss_bytes"] >= r["input_rss_bytes"] > 0 and r["rss_delta_bytes"] >= 0
            assert r["rss_delta_bytes"] == r["peak_rss_bytes"] - r["input_rss_bytes"]
    assert plot.stat().st_size > 0


def test_bench_subcommand_parses() -> None:
    parser = argparse.ArgumentParser(prog="licensecore")
    sub = parser.add_subparsers(required=True)
    add_bench_command(sub)
    args = parser.parse_args(["bench", "--size", "M", "--task", "bundles", "--json", "x.json"])
    assert (args.size, args.task, args.repeat, str(args.json)) == ("M", "bundles", 3, "x.json")
    assert callable(args.run)
