"""Typed errors of the client, built from the gRPC status and its ``google.rpc`` details."""

from __future__ import annotations

import json
from collections.abc import Sequence

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class LicenseCoreServerError(Exception):
    """The server refused or failed a call: ``code`` is the gRPC status, ``details`` the unpacked
    ``google.rpc`` detail messages."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.details = tuple(details)
        # The ErrorInfo's metadata (the typed subclasses read their fields from it).
        self.metadata: dict[str, str] = dict(next(
            (d.metadata for d in self.details if isinstance(d, error_details_pb2.ErrorInfo)), {}))


class InputRejected(LicenseCoreServerError):
    """INVALID_ARGUMENT: bad input; names the table, column, first row, value and row count."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()
    ) -> None:
        super().__init__(code, message, details)
        self.table: str = self.metadata.get("table", "")
        self.column: str = self.metadata.get("column", "")
        self.row: int = int(self.metadata.get("row", -1))
        self.value: str = self.metadata.get("value", "")
        self.count: int = int(self.metadata.get("count", 0))

    @property
    def field(self) -> str:
        """The first BadRequest field violation, "table.column" (or "table")."""
        for detail in self.details:
            if isinstance(detail, error_details_pb2.BadRequest) and detail.field_violations:
                return detail.field_violations[0].field
        return ""


class DatasetNotFound(LicenseCoreServerError):
    """NOT_FOUND: the dataset handle is unknown to the server (never uploaded, or evicted)."""


class Unauthenticated(LicenseCoreServerError):
    """UNAUTHENTICATED: the server needs a bearer token and got none, or one it does not know."""


class PermissionDenied(LicenseCoreServerError):
    """PERMISSION_DENIED: the token's tenant scope does not cover the call. ``tenants`` are the
    tenants of the sent ``table`` outside the scope (each cut to 64 characters); for a stored
    dataset only its ``dataset_id`` is named."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()
    ) -> None:
        super().__init__(code, message, details)
        self.table: str = self.metadata.get("table", "")
        self.tenants: tuple[str, ...] = tuple(json.loads(self.metadata.get("tenants") or "[]"))
        self.dataset_id: str = self.metadata.get("dataset_id", "")


class ResourceExhausted(LicenseCoreServerError):
    """RESOURCE_EXHAUSTED: the call went beyond a server limit: ``limit`` (e.g. ``max_rows``,
    ``max_request_bytes``, ``max_concurrent``, ``memory_budget_bytes``), its ``maximum`` and the
    ``value`` asked. gRPC's own per-message size check carries no details (``limit`` is "")."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()
    ) -> None:
        super().__init__(code, message, details)
        self.limit: str = self.metadata.get("limit", "")
        self.maximum: int = int(self.metadata.get("maximum", 0))
        self.value: int = int(self.metadata.get("value", 0))


class DataLoss(LicenseCoreServerError):
    """DATA_LOSS: a stored dataset's ``file`` no longer matches its checksum; it is not served."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()
    ) -> None:
        super().__init__(code, message, details)
        self.dataset_id: str = self.metadata.get("dataset_id", "")
        self.file: str = self.metadata.get("file", "")


_DETAIL_TYPES = (error_details_pb2.BadRequest, error_details_pb2.ErrorInfo,
                 error_details_pb2.QuotaFailure)
_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InputRejected,
    grpc.StatusCode.NOT_FOUND: DatasetNotFound,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DATA_LOSS: DataLoss,
}


def error_from_rpc(error: grpc.RpcError) -> LicenseCoreServerError:
    """The typed error for a failed call (``error`` is also a ``grpc.Call``)."""
    code, message = error.code(), error.details() or ""
    details: list[Message] = []
    try:
        status = rpc_status.from_call(error)
    except ValueError:  # trailing metadata cut or inconsistent: the code and message still hold
        status = None
    for packed in status.details if status is not None else ():
        for detail_type in _DETAIL_TYPES:
            if packed.Is(detail_type.DESCRIPTOR):
                detail = detail_type()
                packed.Unpack(detail)
                details.append(detail)
    return _BY_CODE.get(code, LicenseCoreServerError)(code, message, details)
