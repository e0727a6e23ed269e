"""The gRPC servicer: handlers validate, convert (``licensecore.wire``), dispatch, stream back."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Collection, Iterable, Iterator

import grpc

from licensecore import wire
from licensecore.server import bundles, consumption, reconciliation, whatif
from licensecore.server.datasets import DatasetStore
from licensecore.server.errors import InputError
from licensecore.server.schema import BUNDLE_INPUTS, CONSUMPTION_INPUTS, RECONCILIATION_INPUTS
from licensecore.server.status import status_for
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["LicenseCore"].full_name
RECONCILE_TABLES = frozenset(CONSUMPTION_INPUTS) | frozenset(RECONCILIATION_INPUTS)
# Tables Upload accepts: the inputs of every analysis.
UPLOAD_TABLES = RECONCILE_TABLES | frozenset(BUNDLE_INPUTS)


def _guarded(handler: Callable) -> Callable:
    """End the RPC with the mapped status when the handler raises (the server stays up)."""

    @functools.wraps(handler)
    def guarded(self, request, context: grpc.ServicerContext):
        try:
            return handler(self, request, context)
        except grpc.RpcError:  # the client went away (cancelled, deadline): nobody to answer
            context.abort(grpc.StatusCode.CANCELLED, "the request stream ended early")
        except Exception as exc:  # every error becomes a status
            context.abort_with_status(status_for(exc))

    return guarded


class LicenseCoreServicer(pb_grpc.LicenseCoreServicer):
    """Implements ``licensecore.v1.LicenseCore`` over an in-memory dataset store."""

    def __init__(self, store: DatasetStore | None = None) -> None:
        self._store = store if store is not None else DatasetStore()

    @_guarded
    def Upload(self, request_iterator: Iterator[pb.UploadRequest], context) -> pb.UploadResponse:
        tables = wire.decode_tables((r.chunk for r in request_iterator), UPLOAD_TABLES)
        dataset_id = self._store.put(tables)
        row_counts = {name: table.num_rows for name, table in tables.items()}
        return pb.UploadResponse(dataset_id=dataset_id, row_counts=row_counts)

    @_guarded
    def ComputeConsumption(
        self, request: pb.ComputeConsumptionRequest, context
    ) -> Iterator[pb.TableChunk]:
        tables = self._store.get(request.dataset_id)
        return wire.encode_tables(consumption.compute_consumption(tables))

    @_guarded
    def ComputeConsumptionInline(
        self, request_iterator: Iterator[pb.TableChunk], context
    ) -> Iterator[pb.TableChunk]:
        tables = wire.decode_tables(request_iterator, CONSUMPTION_INPUTS)
        return wire.encode_tables(consumption.compute_consumption(tables))

    @_guarded
    def ResolveBundles(self, request: pb.ResolveBundlesRequest, context) -> Iterator[pb.TableChunk]:
        tables = self._store.get(request.dataset_id)
        options = bundle_options(request.options)
        return wire.encode_tables(bundles.resolve_bundles(tables, **options))

    @_guarded
    def ResolveBundlesInline(
        self, request_iterator: Iterator[pb.ResolveBundlesInlineRequest], context
    ) -> Iterator[pb.TableChunk]:
        tables, options = _inline(request_iterator, bundle_options, BUNDLE_INPUTS)
        return wire.encode_tables(bundles.resolve_bundles(tables, **options))

    @_guarded
    def Reconcile(self, request: pb.ReconcileRequest, context) -> Iterator[pb.TableChunk]:
        tables = self._store.get(request.dataset_id)
        options = reconcile_options(request.options)
        return wire.encode_tables(reconciliation.reconcile(tables, **options))

    @_guarded
    def ReconcileInline(
        self, request_iterator: Iterator[pb.ReconcileInlineRequest], context
    ) -> Iterator[pb.TableChunk]:
        tables, options = _inline(request_iterator, reconcile_options, RECONCILE_TABLES)
        return wire.encode_tables(reconciliation.reconcile(tables, **options))

    @_guarded
    def WhatIf(self, request: pb.WhatIfRequest, context) -> Iterator[pb.ScenarioResult]:
        tables = self._store.get(request.dataset_id)
        scenarios = scenarios_from_chunks(request.scenarios)
        return _scenario_results(whatif.start_what_if(tables, scenarios), context)

    @_guarded
    def WhatIfInline(
        self, request_iterator: Iterator[pb.WhatIfInlineRequest], context
    ) -> Iterator[pb.ScenarioResult]:
        chunks, scenario_chunks = [], []
        for request in request_iterator:
            if request.HasField("scenario"):
                scenario_chunks.append(request.scenario)
            else:
                chunks.append(request.chunk)
        tables = wire.decode_tables(chunks, CONSUMPTION_INPUTS)
        scenarios = scenarios_from_chunks(scenario_chunks)
        return _scenario_results(whatif.start_what_if(tables, scenarios), context)


def scenarios_from_chunks(chunks: Iterable[pb.ScenarioChunk]) -> list[whatif.Scenario]:
    """Scenarios in order of first appearance, each from its own chunks of `licenses`."""
    by_name: dict[str, list[pb.TableChunk]] = {}
    for n, item in enumerate(chunks):
        if item.chunk.table in whatif.UNSUPPORTED:
            raise InputError("scenarios", item.chunk.table, n, item.scenario, 1,
                             f"{item.chunk.table} scenarios are not supported yet (only licenses)")
        by_name.setdefault(item.scenario, []).append(item.chunk)
    scenarios = []
    for name, parts in by_name.items():
        tables = wire.decode_tables(parts, ("licenses",))
        scenarios.append(whatif.Scenario(name, tables["licenses"]))
    return scenarios


def _scenario_results(results: Iterator, context) -> Iterator[pb.ScenarioResult]:
    """Stream each scenario's rows as it finishes; a failure mid-stream ends the RPC with its status."""
    try:
        for name, table in results:
            for chunk in wire.table_chunks(whatif.TABLE, table):
                yield pb.ScenarioResult(scenario=name, chunk=chunk)
    except Exception as exc:  # validation happened before the stream; this is a bug, not input
        context.abort_with_status(status_for(exc))


def _inline(requests: Iterator, read_options: Callable, known: Collection[str]) -> tuple[dict, dict]:
    """Tables and options of an inline stream: at most one `options` message, before any chunk."""
    options: dict = {}

    def chunks() -> Iterator[pb.TableChunk]:
        for n, request in enumerate(requests):
            if request.HasField("options"):
                if n:
                    raise InputError("options", "", -1, None, 0, "options must come first")
                options.update(read_options(request.options))
            else:
                yield request.chunk

    return wire.decode_tables(chunks(), known), options


def bundle_options(message: pb.BundleOptions) -> dict[str, float | int]:
    """The options that are set, as keyword arguments of ``resolve_bundles``."""
    return {name: getattr(message, name) for name in ("max_remove_fraction", "guard_min_members")
            if message.HasField(name)}


def reconcile_options(message: pb.ReconcileOptions) -> dict[str, object]:
    """The options that are set, as keyword arguments of ``reconcile``."""
    options: dict[str, object] = {}
    if message.HasField("inactive_days"):
        options["inactive_days"] = message.inactive_days
    if message.HasField("as_of"):
        options["as_of"] = message.as_of.ToDatetime(tzinfo=dt.timezone.utc)
    return options
