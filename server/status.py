"""Domain errors -> gRPC status with ``google.rpc`` details."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from licensecore.server.datasets import UnknownDataset
from licensecore.server.errors import InputError

DOMAIN = "licensecore"
BAD_INPUT = "BAD_INPUT"
DATASET_NOT_FOUND = "DATASET_NOT_FOUND"

log = logging.getLogger(__name__)


def status_for(exc: BaseException) -> grpc.Status:
    """The status to end an RPC with: INVALID_ARGUMENT for ``InputError`` (with BadRequest and
    ErrorInfo details), NOT_FOUND for an unknown dataset, INTERNAL (traceback logged) otherwise."""
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
    log.error("internal error while serving an RPC", exc_info=exc)
    return _status(code_pb2.INTERNAL, f"internal error ({type(exc).__name__}); see the server log")


def _status(code: int, message: str, details: tuple = ()) -> grpc.Status:
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=packed))
