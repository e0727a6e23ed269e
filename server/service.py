"""The gRPC servicer: handlers validate, convert (``licensecore.wire``), dispatch, stream back."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Collection, Iterable, Iterator

import grpc

from licensecore import compact, wire
from licensecore.server import auth, bundles, consumption, reconciliation, whatif
from licensecore.server.calls import ComputeSlots, ensure_active, streamed
from licensecore.server.datasets import DatasetStore, tenants_by_table
from licensecore.server.errors import InputError
from licensecore.server.limits import Limits
from licensecore.server.schema import BUNDLE_INPUTS, CONSUMPTION_INPUTS, RECONCILIATION_INPUTS
from licensecore.server.status import status_for
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["LicenseCore"].full_name
RECONCILE_TABLES = frozenset(CONSUMPTION_INPUTS) | frozenset(RECONCILIATION_INPUTS)
# Tables Upload accepts: the inputs of every analysis.
UPLOAD_TABLES = RECONCILE_TABLES | frozenset(BUNDLE_INPUTS)
# Requests carrying table chunks are read by licensecore.wire (the chunk bytes are not copied);
# every other request by protobuf.
_REQUEST_PARSERS: dict[str, Callable[[bytes], object]] = {
    "Upload": wire.request_parser(pb.UploadRequest),
    "ComputeConsumptionInline": wire.parse_chunk,
    "ResolveBundlesInline": wire.request_parser(pb.ResolveBundlesInlineRequest),
    "ReconcileInline": wire.request_parser(pb.ReconcileInlineRequest),
    "WhatIfInline": wire.request_parser(pb.WhatIfInlineRequest),
}
_HANDLER_FACTORIES = {  # (request streaming, response streaming) -> handler factory
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_servicer(servicer: pb_grpc.LicenseCoreServicer, server: grpc.Server) -> None:
    """Register ``servicer`` as the generated ``add_LicenseCoreServicer_to_server`` does, but with
    ``licensecore.wire``'s codecs for table chunks: responses may be serialized already
    (``wire.encode_messages``), chunk requests arrive as ``wire.Chunk``s."""
    handlers = {}
    for method in pb.DESCRIPTOR.services_by_name["LicenseCore"].methods:
        factory = _HANDLER_FACTORIES[(method.client_streaming, method.server_streaming)]
        parse = _REQUEST_PARSERS.get(method.name, getattr(pb, method.input_type.name).FromString)
        handlers[method.name] = factory(getattr(servicer, method.name), request_deserializer=parse,
                                        response_serializer=wire.serialize)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


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
    """Implements ``licensecore.v1.LicenseCore`` over a dataset store, within ``limits``."""

    def __init__(self, store: DatasetStore | None = None, limits: Limits | None = None) -> None:
        self._limits = limits if limits is not None else Limits()
        self._store = store if store is not None else DatasetStore(
            memory_budget_bytes=self._limits.memory_budget_bytes)
        self._slots = ComputeSlots(self._limits.max_concurrent, self._limits.slot_wait_seconds)

    def _requests(self, request_iterator: Iterator) -> Iterator:
        """The request stream, cut off beyond ``max_request_bytes``."""
        return wire.capped(request_iterator, self._limits.max_request_bytes)

    def _decode(self, chunks: Iterable[wire.ChunkLike], known: Collection[str]) -> dict:
        return wire.decode_tables(chunks, known, max_rows=self._limits.max_rows,
                                  max_bytes=self._limits.max_request_bytes)

    def _run(self, context, compute: Callable[[], object],
             stream: Callable[[object], Iterator] = wire.encode_messages) -> Iterator:
        """``compute()`` in a concurrency slot, then ``stream`` its result while the caller listens;
        the slot is held until the response stream ends or the caller leaves."""
        slot = self._slots.acquire(context)
        try:
            ensure_active(context)
            result = compute()
            ensure_active(context)
        except BaseException:
            slot.release()
            raise
        return streamed(stream(result), context, slot)

    def _dataset(self, dataset_id: str) -> dict:
        """The stored tables, when the caller's token may see all their tenants."""
        auth.check_dataset(dataset_id, self._store.tenants(dataset_id))
        return self._store.get(dataset_id)

    @_guarded
    def Upload(self, request_iterator: Iterator[pb.UploadRequest], context) -> pb.UploadResponse:
        tables = self._decode(self._requests(request_iterator), UPLOAD_TABLES)
        tenants = tenants_by_table(tables)  # once, for the scope check and the store
        auth.check_tables(tables, tenants)
        ensure_active(context)  # a caller gone before the end stores nothing
        dataset_id = self._store.put(tables, tenants)
        row_counts = {name: table.num_rows for name, table in tables.items()}
        return pb.UploadResponse(dataset_id=dataset_id, row_counts=row_counts)

    @_guarded
    def ComputeConsumption(
        self, request: pb.ComputeConsumptionRequest, context
    ) -> Iterator[pb.TableChunk]:
        tables = self._dataset(request.dataset_id)
        return self._run(context, lambda: consumption.compute_consumption(tables, compact=_compact(context)))

    @_guarded
    def ComputeConsumptionInline(
        self, request_iterator: Iterator[pb.TableChunk], context
    ) -> Iterator[pb.TableChunk]:
        tables = auth.check_tables(self._decode(self._requests(request_iterator), CONSUMPTION_INPUTS))
        return self._run(context, lambda: consumption.compute_consumption(tables, compact=_compact(context)))

    @_guarded
    def ResolveBundles(self, request: pb.ResolveBundlesRequest, context) -> Iterator[pb.TableChunk]:
        tables = self._dataset(request.dataset_id)
        options = bundle_options(request.options)
        return self._run(context, lambda: bundles.resolve_bundles(tables, **options))

    @_guarded
    def ResolveBundlesInline(
        self, request_iterator: Iterator[pb.ResolveBundlesInlineRequest], context
    ) -> Iterator[pb.TableChunk]:
        tables, options = _inline(self._requests(request_iterator), bundle_options, self._decode,
                                  BUNDLE_INPUTS)
        return self._run(context, lambda: bundles.resolve_bundles(tables, **options))

    @_guarded
    def Reconcile(self, request: pb.ReconcileRequest, context) -> Iterator[pb.TableChunk]:
        tables = self._dataset(request.dataset_id)
        options = reconcile_options(request.options)
        return self._run(context, lambda: reconciliation.reconcile(tables, **options))

    @_guarded
    def ReconcileInline(
        self, request_iterator: Iterator[pb.ReconcileInlineRequest], context
    ) -> Iterator[pb.TableChunk]:
        tables, options = _inline(self._requests(request_iterator), reconcile_options, self._decode,
                                  RECONCILE_TABLES)
        return self._run(context, lambda: reconciliation.reconcile(tables, **options))

    @_guarded
    def WhatIf(self, request: pb.WhatIfRequest, context) -> Iterator[pb.ScenarioResult]:
        tables = self._dataset(request.dataset_id)
        scenarios = scenarios_from_chunks(request.scenarios, self._limits)
        return self._run(context, lambda: whatif.start_what_if(tables, scenarios),
                         lambda results: _scenario_results(results, context))

    @_guarded
    def WhatIfInline(
        self, request_iterator: Iterator[pb.WhatIfInlineRequest], context
    ) -> Iterator[pb.ScenarioResult]:
        chunks, scenario_chunks = [], []
        for request in self._requests(request_iterator):
            if isinstance(request, wire.Chunk):
                chunks.append(request)
            else:
                scenario_chunks.append(request.scenario)
        tables = auth.check_tables(self._decode(chunks, whatif.INPUTS))
        scenarios = scenarios_from_chunks(scenario_chunks, self._limits)
        return self._run(context, lambda: whatif.start_what_if(tables, scenarios),
                         lambda results: _scenario_results(results, context))


def _compact(context: grpc.ServicerContext) -> bool:
    """Whether the caller welcomes compact results (``licensecore.compact.HEADER``)."""
    return compact.HEADER in context.invocation_metadata()


def scenarios_from_chunks(chunks: Iterable[pb.ScenarioChunk], limits: Limits) -> list[whatif.Scenario]:
    """Scenarios in order of first appearance, each from its own chunks of `licenses`, `bundles`
    and `pools` (a part not sent has no rows)."""
    by_name: dict[str, list[pb.TableChunk]] = {}
    for item in chunks:
        by_name.setdefault(item.scenario, []).append(item.chunk)
    scenarios = []
    for name, parts in by_name.items():
        tables = auth.check_tables(wire.decode_tables(
            parts, whatif.PARTS, max_rows=limits.max_rows, max_bytes=limits.max_request_bytes))
        scenarios.append(whatif.Scenario(name, **tables))
    return scenarios


def _scenario_results(results: Iterator, context) -> Iterator[pb.ScenarioResult]:
    """Stream each scenario's rows of every output table as it finishes; a failure mid-stream ends
    the RPC with its status."""
    try:
        for name, tables in results:
            for chunk in wire.encode_tables(tables):
                yield pb.ScenarioResult(scenario=name, chunk=chunk)
    except Exception as exc:  # validation happened before the stream; this is a bug, not input
        context.abort_with_status(status_for(exc))


def _inline(
    requests: Iterator, read_options: Callable, decode: Callable, known: Collection[str]
) -> tuple[dict, dict]:
    """Tables and options of an inline stream: at most one `options` message, before any chunk."""
    options: dict = {}

    def chunks() -> Iterator[wire.Chunk]:
        for n, request in enumerate(requests):
            if isinstance(request, wire.Chunk):
                yield request
            elif n:
                raise InputError("options", "", -1, None, 0, "options must come first")
            else:
                options.update(read_options(request.options))

    return auth.check_tables(decode(chunks(), known)), options


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
