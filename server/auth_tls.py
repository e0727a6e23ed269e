"""TLS for the server and the rule that keeps an unprotected server on loopback."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from licensecore.server.errors import LicenseCoreError


class ExposureRefused(LicenseCoreError):
    """The server would listen beyond loopback without both TLS and tokens."""


@dataclass(frozen=True)
class ServerTls:
    """PEM server certificate chain and private key; with ``client_ca``, clients must present a
    certificate signed by it (mutual TLS)."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None = None

    @classmethod
    def from_files(
        cls, certificate: str | os.PathLike, key: str | os.PathLike,
        client_ca: str | os.PathLike | None = None,
    ) -> ServerTls:
        """Read the PEM files (an unreadable file raises ``OSError`` naming it)."""
        return cls(Path(certificate).read_bytes(), Path(key).read_bytes(),
                   Path(client_ca).read_bytes() if client_ca else None)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


def is_loopback(address: str) -> bool:
    """Whether a gRPC bind address (``host:port``, ``[v6]:port``, ``unix:path``) stays on this
    machine. Host names other than ``localhost`` count as exposed: they may resolve anywhere."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address.rsplit(":", 1)[0] if not address.startswith("[") else address[1:address.find("]")]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(address: str, *, tls: bool, tokens: bool, insecure: bool) -> None:
    """Raise ``ExposureRefused`` for a non-loopback ``address`` without both TLS and tokens,
    unless ``insecure`` (the operator accepts plain text or anonymous callers)."""
    if insecure or is_loopback(address) or (tls and tokens):
        return
    missing = " and ".join(name for name, present in (("TLS", tls), ("tokens", tokens)) if not present)
    raise ExposureRefused(
        f"refusing to listen on {address} without {missing}: give --tls-cert/--tls-key and --tokens, "
        "listen on 127.0.0.1, or pass --insecure to expose the server anyway"
    )
