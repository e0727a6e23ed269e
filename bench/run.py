"""Benchmark runner: licensecore against DuckDB, Polars, the plain-Python reference and a floor.

    python -m licensecore.bench.run --size S|M|L|XL [--task consumption|bundles|all] [--repeat N]
        [--seed N] [--json PATH] [--plot PATH] [--from-json A.json B.json ...]

For the size, the data is generated once (``bench.datagen`` / ``bench.datagen_bundles``) and
brought into the restricted shapes of ``bench.peers.workload`` that the peers can express. Every
engine is called once untimed (JIT warm-up, and its output is checked equal to licensecore's on
the compared columns: a disagreement raises before any time is reported), then the engines are
timed interleaved (A, B, C, A, B, C, ...) ``--repeat`` times, with a pause before each call
(``SETTLE_MAX_S``); the table shows the median, min and max wall-clock seconds, the ratio to
``licensecore`` on the same task, input rows per second and memory.

Engines (consumption; bundles has the same except polars):

- ``licensecore``: ``compute_consumption`` / ``resolve_bundles`` in-process on the restricted data;
- ``licensecore-full``: the same on the full generated data (not comparable with the peers: it
  does more work; shown for scale);
- ``licensecore-grpc``: a server started in this process on 127.0.0.1:0; each call is one inline
  call through ``LicenseCoreClient`` (the restricted tables streamed up, computed, the results
  streamed down), so no uploaded dataset stays in the server's store between calls;
- ``duckdb``, ``polars``: ``bench.peers`` (both use all cores, as licensecore does);
- ``reference``: ``tests/reference`` (plain Python), sizes S and M only;
- ``floor``: reads every byte of every input buffer once (NumPy ``max`` over each Arrow buffer):
  the memory-bandwidth floor, not a computation.

Memory is measured apart from the timings, after them, one engine at a time, each in a fresh
process (``bench.memprobe``): the runner writes the restricted and the full input tables once to
Arrow IPC files in a temporary directory; the child reads its engine's tables (resident, not
memory-mapped), imports and warms up the engine (kernels compiled, one call on empty tables),
resets its resident high-water mark through ``/proc/self/clear_refs`` and calls the engine once.
``input_rss_bytes`` is the child's resident size just before that call (interpreter, the engine's
libraries and its input), ``peak_rss_bytes`` its high-water mark (``VmHWM``) during the call and
``rss_delta_bytes`` the difference: the engine's working memory. So the runner's generated data,
licensecore's reference output and other engines' allocator caches count for no engine. For
``licensecore-grpc`` the child holds the server and the client, both counted. Without clear_refs
(not Linux), the child's lifetime peak (``ru_maxrss``) is reported and the other two are null.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module, metadata
from pathlib import Path

import numpy as np
import pyarrow as pa

from licensecore.bench.datagen import SIZES, generate
from licensecore.bench.datagen_bundles import generate_bundles
from licensecore.bench.peers import (
    BUNDLE_OUTPUT_COLUMNS,
    CONSUMPTION_OUTPUT_COLUMNS,
    assert_same,
    restricted_bundle_workload,
    restricted_workload,
)
from licensecore.server.memory import keep_freed_memory

TASKS = ("consumption", "bundles")
# Before each timed call the runner pauses as long as the previous call took, at most this long:
# DuckDB's and Polars' allocators (jemalloc) hand freed memory back in the background for ~10 s,
# which slowed whichever engine came next in this process (licensecore right after Polars at XL:
# 4.6-6.1 s; after a 10 s pause 3.9-4.4 s).
SETTLE_MAX_S = 10.0
REFERENCE_SIZES = ("S", "M")
_TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"


@dataclass
class Engine:
    name: str
    run: Callable[[], object]
    tables: Mapping[str, pa.Table]  # its input, for rows and bytes
    check: Callable[[object], None] | None = None  # raises when the output disagrees


# ---------------------------------------------------------------------------------- engines


def floor(tables: Mapping[str, pa.Table]) -> int:
    """Read every byte of every buffer of every input column once; the memory-bandwidth floor."""
    acc = 0
    for table in tables.values():
        for column in table.columns:
            for chunk in column.chunks:
                for buf in chunk.buffers():
                    if buf is not None and buf.size:
                        acc ^= int(np.frombuffer(buf, np.uint8).max())
    return acc


def _reference(task: str):
    if str(_TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(_TESTS_DIR))
    if task == "consumption":
        from reference.consumption import reference_consumption
        return reference_consumption
    from reference.bundles import reference_bundles
    return reference_bundles


def _rows_to_tables(rows: Mapping[str, list[dict]], want: Mapping[str, pa.Table]) -> dict:
    return {name: pa.Table.from_pylist(rows[name], schema=want[name].schema) for name in want}


# the in-process function of each (task, engine), as "module:function"; licensecore-full is licensecore's
_FUNCTIONS = {
    ("consumption", "licensecore"): "licensecore.server.consumption:compute_consumption",
    ("consumption", "duckdb"): "licensecore.bench.peers.duckdb_consumption:consumption",
    ("consumption", "polars"): "licensecore.bench.peers.polars_consumption:consumption",
    ("bundles", "licensecore"): "licensecore.server.bundles:resolve_bundles",
    ("bundles", "duckdb"): "licensecore.bench.peers.duckdb_bundles:resolve",
}


def engine_names(task: str, size: str) -> list[str]:
    """The engines of ``task`` at ``size``, in the order they run and are reported."""
    peers = [name for (t, name) in _FUNCTIONS if t == task and name != "licensecore"]
    reference = ["reference"] if size in REFERENCE_SIZES else []
    return ["licensecore", "licensecore-full", "licensecore-grpc", *peers, *reference, "floor"]


def input_set(engine: str) -> str:
    """Which generated tables the engine reads: "full" for licensecore-full, else "restricted"."""
    return "full" if engine == "licensecore-full" else "restricted"


def engine_call(task: str, engine: str, tables: Mapping[str, pa.Table],
                client=None) -> Callable[[], object]:
    """One call of ``engine`` on ``tables``; ``client``: a LicenseCoreClient, for licensecore-grpc.

    The engine's modules are imported here, so that a process measuring one engine loads only them.
    """
    if engine == "licensecore-grpc":
        remote = client.compute_consumption if task == "consumption" else client.resolve_bundles
        return lambda: remote(tables)  # inline: tables up, compute, results down; nothing kept
    if engine == "floor":
        return lambda: floor(tables)
    if engine == "reference":
        function = _reference(task)
    else:
        module, name = _FUNCTIONS[(task, engine.removesuffix("-full"))].split(":")
        function = getattr(import_module(module), name)
    return lambda: function(tables)


def _engines(task: str, size: str, inputs: Mapping[str, Mapping[str, pa.Table]],
             client) -> list[Engine]:
    """The engines of ``task`` on ``inputs`` ("restricted" and "full" tables), with their checks."""
    want = engine_call(task, "licensecore", inputs["restricted"])()
    columns = CONSUMPTION_OUTPUT_COLUMNS if task == "consumption" else BUNDLE_OUTPUT_COLUMNS

    def checker(name: str) -> Callable[[object], None] | None:
        if name in ("licensecore", "licensecore-full", "floor"):
            return None
        convert = (lambda out: _rows_to_tables(out, want)) if name == "reference" else (lambda out: out)
        return lambda out: assert_same(name, want, convert(out), columns)

    return [Engine(name, engine_call(task, name, inputs[input_set(name)], client),
                   inputs[input_set(name)], checker(name))
            for name in engine_names(task, size)]


# ---------------------------------------------------------------------------------- memory


def proc_kib(path: str, field: str) -> int | None:
    """A ``field:  N kB`` line of a /proc file, in KiB (None where /proc is not there)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _write_inputs(inputs: Mapping[str, Mapping[str, pa.Table]], directory: Path) -> None:
    """Each input set as ``directory/<set>/<table>.arrow`` (Arrow IPC files), for the memory probes."""
    for set_name, tables in inputs.items():
        (directory / set_name).mkdir()
        for name, table in tables.items():
            with pa.ipc.new_file(str(directory / set_name / f"{name}.arrow"), table.schema) as writer:
                writer.write_table(table)


def probe_memory(task: str, engine: str, input_dir: Path) -> dict:
    """Run ``bench.memprobe`` for ``engine`` on the tables in ``input_dir``; its memory figures."""
    command = [sys.executable, "-m", "licensecore.bench.memprobe", "--task", task,
               "--engine", engine, "--input", str(input_dir)]
    stdout = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(stdout.splitlines()[-1])


def measure_memory(task: str, size: str, engines: list[str],
                   inputs: Mapping[str, Mapping[str, pa.Table]], log=print) -> dict[str, dict]:
    """Memory figures of each engine, measured one after the other, each in a process of its own."""
    memory = {}
    with tempfile.TemporaryDirectory(prefix="licensecore-bench-") as tmp:
        _write_inputs(inputs, Path(tmp))
        for engine in engines:
            start = time.perf_counter()
            memory[engine] = probe_memory(task, engine, Path(tmp) / input_set(engine))
            log(f"[{task} {size}] {engine}: memory measured in "
                f"{time.perf_counter() - start:.1f} s (own process)")
    return memory


# ---------------------------------------------------------------------------------- runner


def machine() -> dict:
    """CPU, cores, memory, Python and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = proc_kib("/proc/meminfo", "MemTotal")
    versions = {}
    for package in ("licensecore", "numpy", "numba", "pyarrow", "grpcio", "duckdb", "polars"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": memory and memory * 1024,
            "platform": platform.platform(), "python": platform.python_version(),
            "versions": versions}


def _rows_bytes(tables: Mapping[str, pa.Table]) -> tuple[int, int]:
    return (sum(t.num_rows for t in tables.values()), sum(t.nbytes for t in tables.values()))


def run_task(task: str, size: str, repeat: int, seed: int, client,
             log=print) -> list[dict]:
    """Generate, warm up and check every engine, time them interleaved, then measure each one's
    memory in a process of its own; one dict per engine."""
    start = time.perf_counter()
    if task == "consumption":
        full = generate(size, seed)
        restricted = restricted_workload(full)
    else:
        full = generate_bundles(size, seed)
        restricted = restricted_bundle_workload(full)
    log(f"[{task} {size}] generated in {time.perf_counter() - start:.1f} s")
    inputs = {"restricted": restricted, "full": full}
    engines = _engines(task, size, inputs, client)
    for engine in engines:  # warm-up (JIT), equality check
        start = time.perf_counter()
        out = engine.run()
        if engine.check is not None:
            engine.check(out)
        del out
        log(f"[{task} {size}] {engine.name}: warm-up {time.perf_counter() - start:.2f} s"
            + (", agrees with licensecore" if engine.check else ""))
    times: dict[str, list[float]] = {e.name: [] for e in engines}
    previous = 0.0
    for _ in range(repeat):
        for engine in engines:
            gc.collect()
            time.sleep(min(previous, SETTLE_MAX_S))  # the previous engine's allocator settles
            start = time.perf_counter()
            out = engine.run()
            previous = time.perf_counter() - start
            times[engine.name].append(previous)
            del out
    memory = measure_memory(task, size, [e.name for e in engines], inputs, log)
    results = []
    for engine in engines:
        rows, nbytes = _rows_bytes(engine.tables)
        t = times[engine.name]
        m = memory[engine.name]
        results.append({"task": task, "engine": engine.name, "size": size, "rows": rows,
                        "input_bytes": nbytes, "repeat": repeat, "median_s": statistics.median(t),
                        "min_s": min(t), "max_s": max(t), "peak_rss_bytes": m["peak_rss_bytes"],
                        "rss_delta_bytes": m["rss_delta_bytes"],
                        "input_rss_bytes": m["input_rss_bytes"]})
    return results


def format_table(results: list[dict]) -> str:
    """The printed table: one line per (task, engine)."""
    base = {(r["task"], r["size"]): r["median_s"] for r in results if r["engine"] == "licensecore"}
    head = (f"{'task':12s} {'size':4s} {'engine':17s} {'rows':>11s} {'median s':>9s} {'min s':>9s} "
            f"{'max s':>9s} {'ratio':>8s} {'rows/s':>11s} {'peak RSS':>9s} {'Δ RSS':>9s} "
            f"{'peak/input':>10s}")
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = r["median_s"] / base[(r["task"], r["size"])] if (r["task"], r["size"]) in base else float("nan")
        delta = "-" if r["rss_delta_bytes"] is None else f"{r['rss_delta_bytes'] / 2**20:,.0f} M"
        lines.append(
            f"{r['task']:12s} {r['size']:4s} {r['engine']:17s} {r['rows']:>11,d} {r['median_s']:>9.4f} "
            f"{r['min_s']:>9.4f} {r['max_s']:>9.4f} {ratio:>7.2f}x {r['rows'] / r['median_s']:>11,.0f} "
            f"{r['peak_rss_bytes'] / 2**20:>7,.0f} M {delta:>9s} "
            f"{r['peak_rss_bytes'] / r['input_bytes']:>9.2f}x")
    return "\n".join(lines)


def plot(results: list[dict], path: str | Path) -> None:
    """Time against input rows, log-log, one line per engine, one panel per task."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if any(r["task"] == t for r in results)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = [r for r in results if r["task"] == task]
        for engine in dict.fromkeys(r["engine"] for r in rows):
            pts = sorted((r["rows"], r["median_s"]) for r in rows if r["engine"] == engine)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=engine)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("input rows")
        ax.set_ylabel("median seconds")
        ax.set_title(task)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(size: str, task: str = "all", repeat: int = 3, seed: int = 0,
        json_path: str | Path | None = None, plot_path: str | Path | None = None,
        from_json: list[str | Path] | None = None, log=print) -> dict:
    """Run the benchmark; print the table; write JSON and the plot when asked; return the report."""
    from licensecore.clients import LicenseCoreClient
    from licensecore.server.app import create_server

    if repeat < 1:
        raise ValueError("repeat must be >= 1")
    tasks = TASKS if task == "all" else (task,)
    server, port = create_server("127.0.0.1:0")
    results: list[dict] = []
    try:
        with LicenseCoreClient(f"127.0.0.1:{port}") as client:
            for name in tasks:
                results += run_task(name, size, repeat, seed, client, log)
    finally:
        server.stop(None)
    report = {"machine": machine(), "results": results}
    log(format_table(results))
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {json_path}")
    if plot_path:
        combined = list(results)
        for path in from_json or []:
            combined += [r for r in json.loads(Path(path).read_text())["results"]
                         if (r["task"], r["size"]) not in {(x["task"], x["size"]) for x in results}]
        plot(combined, plot_path)
        log(f"wrote {plot_path}")
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The runner's options (shared with ``licensecore bench``)."""
    parser.add_argument("--size", default="S", choices=list(SIZES))
    parser.add_argument("--task", default="all", choices=(*TASKS, "all"))
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per engine (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the machine and results here")
    parser.add_argument("--plot", type=Path, help="write a PNG: median time vs input rows")
    parser.add_argument("--from-json", type=Path, nargs="*", default=[],
                        help="earlier --json files whose results the plot also shows")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m licensecore.bench.run",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    keep_freed_memory()
    run(args.size, args.task, args.repeat, args.seed, args.json, args.plot, args.from_json)


if __name__ == "__main__":
    main()
