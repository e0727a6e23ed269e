"""Domain errors -> gRPC status with ``google.rpc`` details."""

from __future__ import annotations

import json
import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from licensecore.server.calls import CallEnded
from licensecore.server.datasets import DatasetCorrupt, UnknownDataset
from licensecore.server.errors import InputError, PermissionDenied, Unauthenticated, clipped
from licensecore.server.limits import LimitExceeded

DOMAIN = "licensecore"
BAD_INPUT = "BAD_INPUT"
DATASET_NOT_FOUND = "DATASET_NOT_FOUND"
TENANT_OUT_OF_SCOPE = "TENANT_OUT_OF_SCOPE"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
DATASET_CORRUPT = "DATASET_CORRUPT"
# gRPC clients accept only 8-16 KiB of trailing metadata, where the status and its details travel:
# longer texts are clipped so that a huge offending value cannot turn the answer into a bare error.
MESSAGE_CHARS = 2000
DETAIL_CHARS = 240

log = logging.getLogger(__name__)


def status_for(exc: BaseException) -> grpc.Status:
    """The status to end an RPC with: INVALID_ARGUMENT for ``InputError`` (with BadRequest and
    ErrorInfo details), NOT_FOUND for an unknown dataset, UNAUTHENTICATED / PERMISSION_DENIED for
    a refused caller (ErrorInfo), RESOURCE_EXHAUSTED beyond a limit (ErrorInfo LIMIT_EXCEEDED and
    QuotaFailure), DATA_LOSS for a corrupt stored dataset, INTERNAL (traceback logged) otherwise."""
    if isinstance(exc, InputError):
        field = f"{exc.table}.{exc.column}" if exc.column else exc.table
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=str(exc))
        info = error_details_pb2.ErrorInfo(
            reason=BAD_INPUT,
            domain=DOMAIN,
            metadata={
                "table": exc.table,
                "column": exc.column,
                "row": str(exc.row),
                "value": "" if exc.value is None else str(exc.value),
                "count": str(exc.count),
            },
        )
        details = (error_details_pb2.BadRequest(field_violations=[violation]), info)
        return _status(code_pb2.INVALID_ARGUMENT, str(exc), details)
    if isinstance(exc, UnknownDataset):
        info = error_details_pb2.ErrorInfo(
            reason=DATASET_NOT_FOUND, domain=DOMAIN, metadata={"dataset_id": exc.dataset_id}
        )
        return _status(code_pb2.NOT_FOUND, str(exc), (info,))
    if isinstance(exc, Unauthenticated):
        info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN)
        return _status(code_pb2.UNAUTHENTICATED, str(exc), (info,))
    if isinstance(exc, PermissionDenied):
        tenants = json.dumps(list(exc.tenants)) if exc.tenants else ""  # ids may hold commas
        metadata = {"table": exc.table, "tenants": tenants, "dataset_id": exc.dataset_id}
        info = error_details_pb2.ErrorInfo(
            reason=TENANT_OUT_OF_SCOPE, domain=DOMAIN, metadata={k: v for k, v in metadata.items() if v}
        )
        return _status(code_pb2.PERMISSION_DENIED, str(exc), (info,))
    if isinstance(exc, LimitExceeded):
        metadata = {"limit": exc.limit, "maximum": str(exc.maximum), "value": str(exc.value)}
        if exc.subject:
            metadata["subject"] = exc.subject
        info = error_details_pb2.ErrorInfo(reason=LIMIT_EXCEEDED, domain=DOMAIN, metadata=metadata)
        quota = error_details_pb2.QuotaFailure(violations=[
            error_details_pb2.QuotaFailure.Violation(subject=exc.limit, description=str(exc))
        ])
        return _status(code_pb2.RESOURCE_EXHAUSTED, str(exc), (info, quota))
    if isinstance(exc, DatasetCorrupt):
        info = error_details_pb2.ErrorInfo(
            reason=DATASET_CORRUPT, domain=DOMAIN,
            metadata={"dataset_id": exc.dataset_id, "file": exc.file, "problem": exc.problem},
        )
        return _status(code_pb2.DATA_LOSS, str(exc), (info,))
    if isinstance(exc, CallEnded):  # nobody reads this status; it ends the call cleanly
        return _status(exc.code.value[0], str(exc))
    log.error("internal error while serving an RPC", exc_info=exc)
    return _status(code_pb2.INTERNAL, f"internal error ({type(exc).__name__}); see the server log")


def _status(code: int, message: str, details: tuple = ()) -> grpc.Status:
    packed = []
    for detail in details:
        _clip_detail(detail)
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    status = status_pb2.Status(code=code, message=clipped(message, MESSAGE_CHARS), details=packed)
    return rpc_status.to_status(status)


def _clip_detail(detail) -> None:
    """Clip the free texts of a detail message in place."""
    if isinstance(detail, error_details_pb2.ErrorInfo):
        for key, value in list(detail.metadata.items()):
            detail.metadata[key] = clipped(value, DETAIL_CHARS)
    elif isinstance(detail, error_details_pb2.BadRequest):
        for violation in detail.field_violations:
            violation.description = clipped(violation.description, MESSAGE_CHARS)
    elif isinstance(detail, error_details_pb2.QuotaFailure):
        for violation in detail.violations:
            violation.description = clipped(violation.description, MESSAGE_CHARS)
