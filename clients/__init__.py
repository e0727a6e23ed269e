"""Thin clients: the Python gRPC client and the command line."""

from licensecore.clients.client import LicenseCoreClient
from licensecore.clients.errors import (
    DataLoss,
    DatasetNotFound,
    InputRejected,
    LicenseCoreServerError,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)

__all__ = [
    "DataLoss",
    "DatasetNotFound",
    "InputRejected",
    "LicenseCoreClient",
    "LicenseCoreServerError",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
]
