"""Benchmark runner: licensecore against DuckDB, Polars, the plain-Python reference and a floor.

    python -m licensecore.bench.run --size S|M|L|XL [--task consumption|bundles|all] [--repeat N]
        [--seed N] [--json PATH] [--plot PATH] [--from-json A.json B.json ...]

For the size, the data is generated once (``bench.datagen`` / ``bench.datagen_bundles``) and
brought into the restricted shapes of ``bench.peers.workload`` that the peers can express;
licensecore computes the expected output in this process. The runner writes the restricted and the
full input tables and the expected output once to Arrow IPC files in a temporary directory, drops
its data and hands its freed heap back to the system (glibc's ``malloc_trim``). Then every timed
call runs in a fresh process of its own (``bench.probe``), one per engine and repetition,
interleaved (A, B, C, A, B, C, ...) ``--repeat`` times: the child reads its engine's tables, warms
the engine up (JIT, one call on empty tables), calls it once for memory and the check, then once
timed: the steady state, as a long-running server runs. A peer whose output differs from
licensecore's on the compared columns makes the runner raise with the child's message, before any
table or JSON is reported. The table shows the median, min and max wall-clock seconds, the ratio to
``licensecore`` on the same task, input rows per second and memory.

Why a process per call: timed in one shared process, licensecore at XL took 5.7 s against 3.9-4.5 s
in a fresh one, disturbed by the peers' allocators (DuckDB's and Polars' jemalloc hand freed memory
back in the background) and the data held in the same address space.

Engines (consumption; bundles has the same except polars):

- ``licensecore``: ``compute_consumption`` / ``resolve_bundles`` in-process on the restricted data;
- ``licensecore-full``: the same on the full generated data (not comparable with the peers: it
  does more work; shown for scale);
- ``licensecore-grpc``: a server started in the child process on 127.0.0.1:0; each call is one
  inline call through ``LicenseCoreClient`` (the restricted tables streamed up, computed, the
  results streamed down), so no uploaded dataset stays in the server's store between calls;
- ``duckdb``, ``polars``: ``bench.peers`` (both use all cores, as licensecore does);
- ``reference``: ``tests/reference`` (plain Python), sizes S and M only;
- ``floor``: reads every byte of every input buffer once (NumPy ``max`` over each Arrow buffer):
  the memory-bandwidth floor, not a computation.

Memory is that of the child's first call, so the runner's data and other engines' allocator caches
count for no engine: ``input_rss_bytes`` is the child's resident size just before the call
(interpreter, the engine's libraries and its input), ``peak_rss_bytes`` its high-water mark
(``VmHWM``, reset through ``/proc/self/clear_refs``) during the call and ``rss_delta_bytes`` the
difference: the engine's working memory. Of the repetitions, the one with the highest peak is
reported. For ``licensecore-grpc`` the child holds the server and the client, both counted.
Without clear_refs (not Linux), the child's lifetime peak (``ru_maxrss``) is reported and the
other two are null.
"""

from __future__ import annotations

import argparse
import ctypes
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
from importlib import import_module, metadata
from pathlib import Path

import numpy as np
import pyarrow as pa

from licensecore.bench.datagen import SIZES, generate
from licensecore.bench.datagen_bundles import generate_bundles
from licensecore.bench.peers import (
    BUNDLE_OUTPUT_COLUMNS,
    CONSUMPTION_OUTPUT_COLUMNS,
    restricted_bundle_workload,
    restricted_workload,
)
from licensecore.server.memory import keep_freed_memory

TASKS = ("consumption", "bundles")
REFERENCE_SIZES = ("S", "M")
_TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"


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


def checked(engine: str) -> bool:
    """Whether the engine's output is checked equal to licensecore's: the peers' and the reference's."""
    return engine not in ("licensecore", "licensecore-full", "floor")


# ---------------------------------------------------------------------------------- data and probes


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


def write_tables(tables: Mapping[str, pa.Table], directory: Path) -> None:
    """``tables`` as ``directory/<table>.arrow`` (Arrow IPC files), for the probe processes."""
    directory.mkdir()
    for name, table in tables.items():
        with pa.ipc.new_file(str(directory / f"{name}.arrow"), table.schema) as writer:
            writer.write_table(table)


def _rows_bytes(tables: Mapping[str, pa.Table]) -> tuple[int, int]:
    return (sum(t.num_rows for t in tables.values()), sum(t.nbytes for t in tables.values()))


def write_data(task: str, size: str, seed: int, directory: Path,
               log=print) -> dict[str, tuple[int, int]]:
    """Generate the data; write the input sets to ``directory/restricted`` and ``directory/full`` and
    licensecore's output on the restricted set (its compared tables) to ``directory/expected``.

    Returns the rows and Arrow bytes of each input set; the data itself is dropped on return.
    """
    start = time.perf_counter()
    if task == "consumption":
        full = generate(size, seed)
        restricted = restricted_workload(full)
        compared = CONSUMPTION_OUTPUT_COLUMNS
    else:
        full = generate_bundles(size, seed)
        restricted = restricted_bundle_workload(full)
        compared = BUNDLE_OUTPUT_COLUMNS
    log(f"[{task} {size}] generated in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    want = engine_call(task, "licensecore", restricted)()
    write_tables(restricted, directory / "restricted")
    write_tables(full, directory / "full")
    write_tables({name: want[name] for name in compared}, directory / "expected")
    log(f"[{task} {size}] expected output computed, inputs and output written in "
        f"{time.perf_counter() - start:.1f} s")
    return {"restricted": _rows_bytes(restricted), "full": _rows_bytes(full)}


def release_freed_memory() -> None:
    """Collect garbage and hand the freed heap back to the system (glibc's ``malloc_trim``; the
    runner keeps freed memory otherwise, see ``server.memory``); a no-op without glibc."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def probe(task: str, engine: str, directory: Path) -> dict:
    """Run ``bench.probe`` for ``engine`` on its input set in ``directory`` (checked against
    ``directory/expected`` when ``checked(engine)``); its JSON: memory figures and ``seconds``.

    Raises ``RuntimeError`` with the child's stderr when it fails, a disagreement included.
    """
    command = [sys.executable, "-m", "licensecore.bench.probe", "--task", task, "--engine", engine,
               "--input", str(directory / input_set(engine))]
    if checked(engine):
        command += ["--expect", str(directory / "expected")]
    child = subprocess.run(command, check=False, capture_output=True, text=True)
    if child.returncode:
        raise RuntimeError(f"{task} {engine}: its process exited with {child.returncode}:\n"
                           f"{child.stderr.strip()}")
    sys.stderr.write(child.stderr)  # warnings, if any
    return json.loads(child.stdout.splitlines()[-1])


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


def _result(task: str, size: str, engine: str, shape: tuple[int, int], runs: list[dict]) -> dict:
    """One engine's line of the report from its children's JSON; memory: the highest peak's."""
    seconds = [r["seconds"] for r in runs]
    memory = max(runs, key=lambda r: r["peak_rss_bytes"])
    return {"task": task, "engine": engine, "size": size, "rows": shape[0], "input_bytes": shape[1],
            "repeat": len(runs), "median_s": statistics.median(seconds), "min_s": min(seconds),
            "max_s": max(seconds), "peak_rss_bytes": memory["peak_rss_bytes"],
            "rss_delta_bytes": memory["rss_delta_bytes"],
            "input_rss_bytes": memory["input_rss_bytes"]}


def run_task(task: str, size: str, repeat: int, seed: int, log=print) -> list[dict]:
    """Write the data, then run every engine ``repeat`` times interleaved, each call in a fresh
    process (``probe``); one dict per engine."""
    engines = engine_names(task, size)
    runs: dict[str, list[dict]] = {engine: [] for engine in engines}
    with tempfile.TemporaryDirectory(prefix="licensecore-bench-") as tmp:
        directory = Path(tmp)
        shapes = write_data(task, size, seed, directory, log)
        release_freed_memory()
        rss = proc_kib("/proc/self/status", "VmRSS")
        if rss is not None:
            log(f"[{task} {size}] runner resident after freeing the data: {rss / 1024:,.0f} MiB")
        for rep in range(repeat):
            for engine in engines:
                runs[engine].append(probe(task, engine, directory))
                log(f"[{task} {size}] {engine} #{rep + 1}: {runs[engine][-1]['seconds']:.4f} s"
                    + (", agrees with licensecore" if checked(engine) else ""))
    return [_result(task, size, engine, shapes[input_set(engine)], runs[engine]) for engine in engines]


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
    if repeat < 1:
        raise ValueError("repeat must be >= 1")
    tasks = TASKS if task == "all" else (task,)
    results: list[dict] = []
    for name in tasks:
        results += run_task(name, size, repeat, seed, log)
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
