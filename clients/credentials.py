"""Channel credentials of the client: TLS (optionally with a client certificate) and the bearer
token, which is sent as ``authorization`` metadata on every call by a client interceptor, so it
works on TLS and on loopback plain-text channels alike (gRPC's call credentials refuse the latter).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Sequence
from pathlib import Path

import grpc

TOKEN_ENV = "LICENSECORE_TOKEN"  # the bearer token the command line sends


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials",
                                            "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    """``grpc.ClientCallDetails`` with other metadata (gRPC's own class is not public)."""


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call."""

    def __init__(self, token: str) -> None:
        self._entry = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        return _CallDetails(details.method, details.timeout, [*(details.metadata or ()), self._entry],
                            details.credentials, details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


def open_channel(
    target: str,
    options: Sequence[tuple[str, object]],
    *,
    token: str | None = None,
    root_certificates: bytes | None = None,
    private_key: bytes | None = None,
    certificate_chain: bytes | None = None,
) -> grpc.Channel:
    """A TLS channel when any certificate is given (PEM bytes), plain text otherwise; with
    ``token``, every call carries it."""
    if root_certificates or private_key or certificate_chain:
        credentials = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
        channel = grpc.secure_channel(target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    return grpc.intercept_channel(channel, BearerToken(token)) if token else channel


def from_environment(tls_ca: str | os.PathLike | None = None) -> dict[str, object]:
    """Client keyword arguments of the command line: the token in ``$LICENSECORE_TOKEN`` and the
    CA file ``tls_ca`` to trust (TLS when given)."""
    return {
        "token": os.environ.get(TOKEN_ENV) or None,
        "root_certificates": Path(tls_ca).read_bytes() if tls_ca else None,
    }
