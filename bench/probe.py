"""One benchmark engine in a process of its own: memory, check and time (run by ``bench.run``).

    python -m licensecore.bench.probe --task consumption|bundles --engine NAME --input DIR [--expect DIR]

The process holds only what the engine needs, so that no other engine's allocator (DuckDB's and
Polars' jemalloc) or data disturbs it. It reads ``DIR/<table>.arrow`` whole (not memory-mapped:
resident), builds the engine by name (``bench.run.engine_call``; for ``licensecore-grpc`` a server
and a client of its own) and warms it up (licensecore's kernels compiled, one call on empty
tables). Then two calls on the input:

1. the first, for memory: the resident high-water mark is reset through ``/proc/self/clear_refs``
   just before it; ``input_rss_bytes`` is the resident size before the call (interpreter, libraries,
   input), ``peak_rss_bytes`` the high-water mark (``VmHWM``) during it, ``rss_delta_bytes`` their
   difference. Without clear_refs (not Linux): the process lifetime's ``ru_maxrss`` and nulls. With
   ``--expect DIR`` its output is then checked equal to ``DIR/<table>.arrow`` on the compared
   columns; a disagreement exits non-zero with the message on stderr;
2. the second, timed (``time.perf_counter``): the steady state, as a long-running server runs.

It prints one JSON line: the memory figures and ``seconds``.
"""

from __future__ import annotations

from licensecore.server.memory import keep_freed_memory

keep_freed_memory()  # first: before NumPy and Arrow start threads (see server.memory)

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

import pyarrow as pa

from licensecore.bench.peers import (
    BUNDLE_OUTPUT_COLUMNS,
    CONSUMPTION_OUTPUT_COLUMNS,
    assert_same,
)
from licensecore.bench.run import TASKS, engine_call, proc_kib


def read_tables(directory: Path) -> dict[str, pa.Table]:
    """Every ``<table>.arrow`` file of ``directory``, read into memory."""
    tables = {}
    for path in sorted(directory.glob("*.arrow")):
        with pa.OSFile(str(path)) as f:
            tables[path.stem] = pa.ipc.open_file(f).read_all()
    return tables


@contextmanager
def _client(engine: str) -> Iterator[object]:
    """For licensecore-grpc a client of a server in this process (its kernels warmed up); else None."""
    if engine != "licensecore-grpc":
        yield None
        return
    from licensecore.clients import LicenseCoreClient
    from licensecore.server.app import create_server

    server, port = create_server("127.0.0.1:0")
    try:
        with LicenseCoreClient(f"127.0.0.1:{port}") as client:
            yield client
    finally:
        server.stop(None)


def _warm_up(task: str, engine: str, tables: Mapping[str, pa.Table], client) -> None:
    """JIT and first-call costs paid on tiny inputs, so that they count neither in memory nor in time."""
    if engine in ("licensecore", "licensecore-full"):  # every kernel, not only those empty input reaches
        import_module(f"licensecore.server.{task}").warm_up()
    engine_call(task, engine, {name: t.slice(0, 0) for name, t in tables.items()}, client)()


def measure(run: Callable[[], object]) -> tuple[dict[str, int | None], object]:
    """Call ``run`` once; the resident size before, the high-water mark during, the difference; and
    the call's output."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # high-water mark := current resident size
    except OSError:
        import resource
        out = run()
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
        return {"input_rss_bytes": None, "peak_rss_bytes": peak, "rss_delta_bytes": None}, out
    before = proc_kib("/proc/self/status", "VmRSS")
    out = run()
    peak = max(proc_kib("/proc/self/status", "VmHWM"), before)  # the reset set it to ~before
    return {"input_rss_bytes": before * 1024, "peak_rss_bytes": peak * 1024,
            "rss_delta_bytes": (peak - before) * 1024}, out


def _rows_to_tables(rows: Mapping[str, list[dict]], want: Mapping[str, pa.Table]) -> dict:
    return {name: pa.Table.from_pylist(rows[name], schema=want[name].schema) for name in want}


def check(task: str, engine: str, out, expect: Path) -> None:
    """Exit non-zero with ``assert_same``'s message unless ``out`` equals the tables in ``expect``."""
    want = read_tables(expect)
    if engine == "reference":  # rows, not tables
        out = _rows_to_tables(out, want)
    columns = CONSUMPTION_OUTPUT_COLUMNS if task == "consumption" else BUNDLE_OUTPUT_COLUMNS
    try:
        assert_same(engine, want, out, columns)
    except AssertionError as error:
        sys.exit(str(error))


def timed(run: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``run``; its output is freed after the clock stops."""
    gc.collect()
    start = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - start
    del out
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m licensecore.bench.probe",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--engine", required=True)
    parser.add_argument("--input", required=True, type=Path, help="folder of <table>.arrow files")
    parser.add_argument("--expect", type=Path, help="folder of the expected output's <table>.arrow files")
    args = parser.parse_args(argv)
    tables = read_tables(args.input)
    with _client(args.engine) as client:
        _warm_up(args.task, args.engine, tables, client)
        call = engine_call(args.task, args.engine, tables, client)
        figures, out = measure(call)
        if args.expect is not None:
            check(args.task, args.engine, out, args.expect)
        del out  # not held during the timed call
        figures["seconds"] = timed(call)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
