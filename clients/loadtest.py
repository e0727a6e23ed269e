"""The load test: many concurrent clients mixing uploads, computations and bad requests.

Each client is a thread with its own channel (``LicenseCoreClient``). Call ``j`` of client ``i``
has the kind ``MIX[(i + j) % len(MIX)]``: an upload, a consumption by handle (on the client's last
upload, or the dataset uploaded up front), an inline consumption, or a bad request. Every good
result is compared with the in-process result, computed once up front; every bad request must get
its own expected status and field. Anything else (another status, a transport error, a wrong
result) is an unexpected error. Latencies are kept per kind for the p50/p99/max figures.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import grpc
import numpy as np
import pyarrow as pa

from licensecore.bench.datagen import Size, generate
from licensecore.clients.client import LicenseCoreClient
from licensecore.clients.errors import InputRejected, LicenseCoreServerError
from licensecore.clients.report import format_table
from licensecore.server.consumption import compute_consumption

MIX = ("upload", "by_handle", "inline", "by_handle", "bad")
KINDS = ("upload", "by_handle", "inline", "bad")
UNKNOWN_HANDLE = "0" * 32


@dataclass(frozen=True)
class BadRequest:
    """A request that must be refused with ``code`` and, for bad input, BadRequest ``field``."""

    name: str
    send: Callable[[LicenseCoreClient, str], object]  # (client, a valid handle)
    code: grpc.StatusCode
    field: str = ""


@dataclass(frozen=True)
class Workload:
    """The dataset every client sends, its in-process outputs and the bad requests to mix in."""

    tables: dict[str, pa.Table]
    want: dict[str, pa.Table]
    bad: tuple[BadRequest, ...]


def workload(size: str | Size = "S", seed: int = 0) -> Workload:
    """A generated section-1 dataset (``bench.datagen``) and bad requests derived from it."""
    tables = generate(size, seed)
    licenses = tables["licenses"]
    column = licenses.schema.get_field_index("entitlements")
    negative = pa.concat_arrays([pa.array([-1], pa.int64()),
                                 licenses.column(column).combine_chunks().slice(1)])
    bad_licenses = {"licenses": licenses.set_column(column, "entitlements", negative)}
    people = {"people": pa.table({"tenant_id": licenses.column("tenant_id").slice(0, 1),
                                  "person_id": ["p1"]})}
    bad = (
        BadRequest("negative entitlements", lambda c, h: c.compute_consumption(bad_licenses),
                   grpc.StatusCode.INVALID_ARGUMENT, "licenses.entitlements"),
        BadRequest("table of another analysis", lambda c, h: c.compute_consumption(people),
                   grpc.StatusCode.INVALID_ARGUMENT, "people"),
        BadRequest("unknown dataset", lambda c, h: c.compute_consumption(UNKNOWN_HANDLE),
                   grpc.StatusCode.NOT_FOUND),
        BadRequest("negative inactive_days", lambda c, h: c.reconcile(h, inactive_days=-1),
                   grpc.StatusCode.INVALID_ARGUMENT, "options.inactive_days"),
    )
    return Workload(tables, compute_consumption(tables), bad)


@dataclass
class LoadReport:
    """What a load run saw: latencies (seconds) per kind, unexpected errors, the handles uploaded."""

    clients: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    unexpected: list[str] = field(default_factory=list)
    handles: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def calls(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def ok(self) -> bool:
        return not self.unexpected

    def summary(self) -> str:
        """The figures: calls, unexpected errors and p50/p99/max latency per kind and overall."""
        rows = []
        every = list(itertools.chain.from_iterable(self.latencies.values()))
        for kind, values in [*self.latencies.items(), ("all", every)]:
            if values:
                p50, p99 = np.percentile(values, [50, 99]) * 1000
                rows.append((kind, len(values), float(p50), float(p99), max(values) * 1000))
        table = format_table(("kind", "calls", "p50 ms", "p99 ms", "max ms"), rows)
        rate = self.calls / self.seconds if self.seconds else 0.0
        totals = (f"{self.calls} calls by {self.clients} clients in {self.seconds:.2f} s "
                  f"({rate:,.1f} calls/s); {len(self.unexpected)} unexpected error(s)")
        lines = [table, totals]
        lines += [f"  unexpected: {problem}" for problem in self.unexpected[:20]]
        return "\n".join(lines)


def _same(got: Mapping[str, pa.Table], want: Mapping[str, pa.Table]) -> str | None:
    """None when ``got`` equals ``want`` table by table, else what differs."""
    if got.keys() != want.keys():
        return f"tables {sorted(got)} instead of {sorted(want)}"
    differ = [name for name in want if not got[name].equals(want[name])]
    return f"different {', '.join(differ)}" if differ else None


class _Client:
    """One load client: its channel, its last uploaded handle and its share of the calls."""

    def __init__(self, index: int, target: str, load: Workload, shared: str, report: LoadReport,
                 lock: threading.Lock, client_options: Mapping[str, object]) -> None:
        self.index, self.load, self.report, self.lock = index, load, report, lock
        self.handle = shared
        self.client = LicenseCoreClient(target, **client_options)

    def run(self, calls: int) -> None:
        with self.client:
            for j in range(calls):
                kind = MIX[(self.index + j) % len(MIX)]
                started = time.perf_counter()
                problem = self._call(kind, j)
                elapsed = time.perf_counter() - started
                with self.lock:
                    self.report.latencies[kind].append(elapsed)
                    if problem:
                        self.report.unexpected.append(f"client {self.index} call {j} ({kind}): {problem}")

    def _call(self, kind: str, j: int) -> str | None:
        try:
            if kind == "upload":
                self.handle = self.client.upload(self.load.tables)
                with self.lock:
                    self.report.handles.append(self.handle)
                return None
            if kind == "bad":
                bad = self.load.bad[(self.index + j) // len(MIX) % len(self.load.bad)]
                return self._refused(bad)
            source = self.handle if kind == "by_handle" else self.load.tables
            return _same(self.client.compute_consumption(source), self.load.want)
        except LicenseCoreServerError as error:
            return str(error)
        except Exception as error:  # noqa: BLE001 - anything else is a finding, not a crash
            return f"{type(error).__name__}: {error}"

    def _refused(self, bad: BadRequest) -> str | None:
        try:
            bad.send(self.client, self.handle)
        except LicenseCoreServerError as error:
            if error.code is not bad.code:
                return f"{bad.name}: {error} (expected {bad.code.name})"
            if bad.field and not (isinstance(error, InputRejected) and error.field == bad.field):
                return f"{bad.name}: field {getattr(error, 'field', '')!r}, expected {bad.field!r}"
            return None
        return f"{bad.name}: accepted (expected {bad.code.name})"


def run_load(target: str, load: Workload, *, clients: int = 32, calls: int = 640,
             client_options: Mapping[str, object] | None = None) -> LoadReport:
    """Run ``calls`` calls in all (shared evenly) from ``clients`` concurrent clients on
    ``target``; then the server must still answer health SERVING."""
    options = dict(client_options or {})
    report, lock = LoadReport(clients), threading.Lock()
    with LicenseCoreClient(target, **options) as setup:
        shared = setup.upload(load.tables)
        problem = _same(setup.compute_consumption(shared), load.want)
        if problem:
            report.unexpected.append(f"set-up dataset: {problem}")
    shares = [calls // clients + (i < calls % clients) for i in range(clients)]
    workers = [_Client(i, target, load, shared, report, lock, options) for i in range(clients)]
    threads = [threading.Thread(target=w.run, args=(n,), name=f"load-{i}")
               for i, (w, n) in enumerate(zip(workers, shares, strict=True))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - started
    with LicenseCoreClient(target, **options) as after:
        try:
            health = after.health()
        except LicenseCoreServerError as error:
            health = str(error)
    if health != "SERVING":
        report.unexpected.append(f"health after the load: {health}")
    return report


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """An in-process server on a loopback port with a temporary data directory; yields its
    address and stops it (and removes the directory) at the end."""
    from licensecore.server.app import create_server

    with tempfile.TemporaryDirectory(prefix="licensecore-loadtest-") as data_dir:
        server, port = create_server("127.0.0.1:0", data_dir=data_dir)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            server.stop(None)
