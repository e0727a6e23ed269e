"""Python client of the licensecore gRPC service."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import grpc
import pyarrow as pa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from licensecore import compact, wire
from licensecore.clients.credentials import open_channel
from licensecore.clients.errors import LicenseCoreServerError, error_from_rpc
from licensecore.server.errors import InputError
from licensecore.v1 import licensecore_pb2 as pb
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from licensecore.server.whatif import Scenario

SERVICE = pb.DESCRIPTOR.services_by_name["LicenseCore"].full_name

# gRPC's native retries, only for calls that are safe to repeat: computing on a stored dataset and
# health checks. Upload and the inline call are never retried (their request streams are one-shot).
SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [
                {"service": "licensecore.v1.LicenseCore", "method": "ComputeConsumption"},
                {"service": "licensecore.v1.LicenseCore", "method": "ResolveBundles"},
                {"service": "licensecore.v1.LicenseCore", "method": "Reconcile"},
                {"service": "licensecore.v1.LicenseCore", "method": "WhatIf"},
                {"service": "grpc.health.v1.Health", "method": "Check"},
            ],
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.2s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}


class LicenseCoreClient:
    """Blocking client; use as a context manager or call ``close()``.

    ``timeout`` (seconds, None for none) applies to every call. ``token`` is sent as a bearer
    token on every call; ``root_certificates`` (PEM bytes of the CA to trust) makes the channel TLS,
    ``private_key`` and ``certificate_chain`` add a client certificate (mutual TLS). Failed calls
    raise ``LicenseCoreServerError`` or one of its subclasses (``InputRejected``,
    ``DatasetNotFound``, ``Unauthenticated``, ``PermissionDenied``).
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        timeout: float | None = None,
    ) -> None:
        options = [
            ("grpc.enable_retries", 1),
            ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
        ]
        self._channel = open_channel(
            target, options, token=token, root_certificates=root_certificates,
            private_key=private_key, certificate_chain=certificate_chain,
        )
        self._stub = pb_grpc.LicenseCoreStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._timeout = timeout
        # Table streams bypass protobuf's copies of chunk bytes (licensecore.wire): requests go
        # out serialized already (no serializer), responses come in as wire.Chunks.
        self._upload = self._channel.stream_unary(
            f"/{SERVICE}/Upload", response_deserializer=pb.UploadResponse.FromString)
        self._by_handle = {
            method: self._channel.unary_stream(
                f"/{SERVICE}/{method}", request_serializer=wire.serialize,
                response_deserializer=wire.parse_chunk)
            for method in ("ComputeConsumption", "ResolveBundles", "Reconcile")
        }
        self._inline = {
            method: self._channel.stream_stream(
                f"/{SERVICE}/{method}Inline", response_deserializer=wire.parse_chunk)
            for method in ("ComputeConsumption", "ResolveBundles", "Reconcile")
        }

    def __enter__(self) -> LicenseCoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def upload(self, tables: Mapping[str, pa.Table]) -> str:
        """Store ``tables`` on the server; return the dataset handle."""
        requests = wire.encode_messages(tables, within=pb.UploadRequest)
        try:
            return self._upload(requests, timeout=self._timeout).dataset_id
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None

    def compute_consumption(
        self, tables_or_handle: Mapping[str, pa.Table] | str
    ) -> dict[str, pa.Table]:
        """SPEC section 1 on a dataset handle (str) or on inline tables (a mapping). Repeated
        string columns travel compact both ways: inline tables' are compacted here, the results'
        expanded here (``licensecore.compact``)."""
        metadata = (compact.HEADER,)  # results' low-cardinality columns travel compact
        if isinstance(tables_or_handle, str):
            request = pb.ComputeConsumptionRequest(dataset_id=tables_or_handle)
            chunks = self._by_handle["ComputeConsumption"](request, timeout=self._timeout, metadata=metadata)
        else:
            chunks = self._inline["ComputeConsumption"](
                wire.encode_messages(compact.compacted(tables_or_handle)), timeout=self._timeout,
                metadata=metadata,
            )
        return _receive(chunks)

    def resolve_bundles(
        self,
        tables_or_handle: Mapping[str, pa.Table] | str,
        *,
        max_remove_fraction: float | None = None,
        guard_min_members: int | None = None,
    ) -> dict[str, pa.Table]:
        """SPEC section 3 on a dataset handle (str) or on inline tables; None options: defaults."""
        options = pb.BundleOptions(
            max_remove_fraction=max_remove_fraction, guard_min_members=guard_min_members
        )
        return self._call("ResolveBundles", tables_or_handle, options)

    def reconcile(
        self,
        tables_or_handle: Mapping[str, pa.Table] | str,
        *,
        inactive_days: int | None = None,
        as_of: dt.datetime | None = None,
    ) -> dict[str, pa.Table]:
        """SPEC section 2 (with the section 1 outputs); ``as_of`` None: the server's now."""
        options = pb.ReconcileOptions(inactive_days=inactive_days)
        if as_of is not None:
            options.as_of.FromDatetime(as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.timezone.utc))
        return self._call("Reconcile", tables_or_handle, options)

    def _call(self, method: str, tables_or_handle: Mapping[str, pa.Table] | str, options) -> dict[str, pa.Table]:
        """A by-handle call (``<method>Request``) or an inline one (options first, then chunks)."""
        if isinstance(tables_or_handle, str):
            request = getattr(pb, f"{method}Request")(dataset_id=tables_or_handle, options=options)
            chunks = self._by_handle[method](request, timeout=self._timeout)
        else:
            inline = getattr(pb, f"{method}InlineRequest")
            requests = itertools.chain(
                [inline(options=options).SerializeToString()],
                wire.encode_messages(tables_or_handle, within=inline),
            )
            chunks = self._inline[method](requests, timeout=self._timeout)
        return _receive(chunks)

    def what_if(
        self, tables_or_handle: Mapping[str, pa.Table] | str, scenarios: Sequence[Scenario]
    ) -> dict[str, pa.Table]:
        """SPEC section 4: `scenario_summary`, `pool_scenario_summary` and
        `bundle_scenario_summary`, each sorted by (scenario, tenant_id, key), on a dataset handle
        (str) or on inline tables (a mapping)."""
        scenario_chunks = [
            pb.ScenarioChunk(scenario=s.name, chunk=c)
            for s in scenarios for part in ("licenses", "bundles", "pools")
            for c in wire.table_chunks(part, getattr(s, part))
        ]
        if isinstance(tables_or_handle, str):
            request = pb.WhatIfRequest(dataset_id=tables_or_handle, scenarios=scenario_chunks)
            results = self._stub.WhatIf(request, timeout=self._timeout)
        else:
            requests = itertools.chain(
                (pb.WhatIfInlineRequest(chunk=c) for c in wire.encode_tables(tables_or_handle)),
                (pb.WhatIfInlineRequest(scenario=c) for c in scenario_chunks),
            )
            results = self._stub.WhatIfInline(requests, timeout=self._timeout)
        by_name: dict[str, list[pb.TableChunk]] = {}
        try:
            for result in results:
                by_name.setdefault(result.scenario, []).append(result.chunk)
            parts = {name: wire.decode_tables(chunks, allocate=wire.heap_buffer)
                     for name, chunks in by_name.items()}
            names = sorted(parts)
            return {table: pa.concat_tables([parts[name][table] for name in names])
                    for table in parts[names[0]]}
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None
        except (InputError, KeyError, IndexError, pa.ArrowInvalid) as error:
            raise LicenseCoreServerError(
                grpc.StatusCode.DATA_LOSS, f"undecodable response: {error}"
            ) from error

    def health(self, service: str = "") -> str:
        """Health of the server ("") or of one service: "SERVING", "NOT_SERVING", ..."""
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            response = self._health.Check(request, timeout=self._timeout)
        except grpc.RpcError as error:
            raise error_from_rpc(error) from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def _receive(chunks: Iterator[wire.Chunk]) -> dict[str, pa.Table]:
    """Decode a response stream into heap memory (results are freed and received again), compact
    columns expanded; a stream the client cannot decode is a DATA_LOSS error."""
    try:
        tables = wire.decode_tables(chunks, allocate=wire.heap_buffer)
        return {name: compact.expand(table) for name, table in tables.items()}
    except grpc.RpcError as error:
        raise error_from_rpc(error) from None
    except (InputError, pa.ArrowException) as error:
        raise LicenseCoreServerError(
            grpc.StatusCode.DATA_LOSS, f"undecodable response: {error}"
        ) from error
