"""Peak memory of one benchmark engine, in a process of its own (run by ``bench.run``).

    python -m licensecore.bench.memprobe --task consumption|bundles --engine NAME --input DIR

The runner's process holds all generated data, licensecore's reference output and every engine's
allocator caches, so its high-water mark says little about one engine. This process holds only
what the engine needs: it reads ``DIR/<table>.arrow`` whole (not memory-mapped, so the input is
resident as in the runner), builds the engine by name (``bench.run.engine_call``; for
``licensecore-grpc`` a server and a client of its own), warms it up (licensecore's kernels
compiled, one call on empty tables), then resets the resident high-water mark through
``/proc/self/clear_refs``, calls the engine once on the input and prints one JSON line:
``input_rss_bytes`` (resident size just before the call: interpreter, libraries, input),
``peak_rss_bytes`` (``VmHWM`` during the call) and ``rss_delta_bytes`` (their difference).
Without clear_refs (not Linux): the process lifetime's ``ru_maxrss`` and nulls.
"""

from __future__ import annotations

from licensecore.server.memory import keep_freed_memory

keep_freed_memory()  # first: before NumPy and Arrow start threads (see server.memory)

import argparse
import gc
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

import pyarrow as pa

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
    """JIT and first-call costs paid on tiny inputs, so that they do not count in the peak."""
    if engine in ("licensecore", "licensecore-full"):  # every kernel, not only those empty input reaches
        import_module(f"licensecore.server.{task}").warm_up()
    engine_call(task, engine, {name: t.slice(0, 0) for name, t in tables.items()}, client)()


def measure(run: Callable[[], object]) -> dict[str, int | None]:
    """Call ``run`` once; the resident size before, the high-water mark during, the difference."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # high-water mark := current resident size
    except OSError:
        import resource
        run()
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
        return {"input_rss_bytes": None, "peak_rss_bytes": peak, "rss_delta_bytes": None}
    before = proc_kib("/proc/self/status", "VmRSS")
    run()
    peak = max(proc_kib("/proc/self/status", "VmHWM"), before)  # the reset set it to ~before
    return {"input_rss_bytes": before * 1024, "peak_rss_bytes": peak * 1024,
            "rss_delta_bytes": (peak - before) * 1024}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m licensecore.bench.memprobe",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--engine", required=True)
    parser.add_argument("--input", required=True, type=Path, help="folder of <table>.arrow files")
    args = parser.parse_args(argv)
    tables = read_tables(args.input)
    with _client(args.engine) as client:
        _warm_up(args.task, args.engine, tables, client)
        figures = measure(engine_call(args.task, args.engine, tables, client))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
