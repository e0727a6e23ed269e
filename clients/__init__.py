"""Thin clients: the Python gRPC client and the command line."""

from licensecore.clients.client import LicenseCoreClient
from licensecore.clients.errors import DatasetNotFound, InputRejected, LicenseCoreServerError

__all__ = ["DatasetNotFound", "InputRejected", "LicenseCoreClient", "LicenseCoreServerError"]
