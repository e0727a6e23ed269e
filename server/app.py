"""Server assembly: the LicenseCore servicer, standard health checking and reflection."""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from licensecore.server import bundles, consumption
from licensecore.server.auth import TokenInterceptor, TokenRegistry
from licensecore.server.auth_tls import ServerTls, check_exposure
from licensecore.server.datasets import DatasetStore
from licensecore.server.limits import Limits
from licensecore.server.service import SERVICE_NAME, LicenseCoreServicer, add_servicer

log = logging.getLogger(__name__)

HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
GRACE_SECONDS = 10.0


def create_server(
    address: str = "127.0.0.1:0",
    *,
    tokens: TokenRegistry | None = None,
    tls: ServerTls | None = None,
    insecure: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    limits: Limits | None = None,
    max_workers: int = 8,
) -> tuple[grpc.Server, int]:
    """Bind ``address``, start serving and warm up the kernels; return the server and its port.

    Health reports NOT_SERVING until the warm-up (JIT compilation) is done, then SERVING for ""
    and for the LicenseCore service. Port 0 picks a free port. With ``tokens`` every call but
    health needs a bearer token and sees only its tenants; with ``tls`` the port speaks TLS. A
    non-loopback ``address`` needs both, or ``insecure`` (else ``ExposureRefused``).
    Uploaded datasets are kept in memory only, or also under ``data_dir`` (kept across restarts);
    ``limits`` (default ``Limits()``) bounds what one caller may ask.
    """
    limits = limits if limits is not None else Limits()
    check_exposure(address, tls=tls is not None, tokens=tokens is not None, insecure=insecure)
    interceptors = [TokenInterceptor(tokens)] if tokens is not None else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), interceptors=interceptors,
                         options=limits.server_options())
    store = DatasetStore(data_dir, memory_budget_bytes=limits.memory_budget_bytes)
    add_servicer(LicenseCoreServicer(store, limits), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    # raises RuntimeError when it cannot bind
    port = server.add_secure_port(address, tls.credentials()) if tls else server.add_insecure_port(address)
    for service in ("", SERVICE_NAME):
        health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    server.start()
    try:
        consumption.warm_up()
        bundles.warm_up()
    except BaseException:
        server.stop(None)
        raise
    for service in ("", SERVICE_NAME):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, port


def serve(
    host: str = "127.0.0.1",
    port: int = 50051,
    *,
    tokens: TokenRegistry | None = None,
    tls: ServerTls | None = None,
    insecure: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    limits: Limits | None = None,
) -> None:
    """Run the server until SIGINT or SIGTERM, then stop gracefully."""
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host  # IPv6
    server, bound = create_server(f"{bracketed}:{port}", tokens=tokens, tls=tls, insecure=insecure,
                                  data_dir=data_dir, limits=limits)
    log.info("datasets: %s; %s", data_dir or "in memory only", limits or Limits())
    log.info("licensecore serving on %s:%d (%s, %s)", bracketed, bound,
             "TLS" if tls else "plain text", f"{len(tokens)} token(s)" if tokens is not None else "no tokens")
    print(f"licensecore serving on {bracketed}:{bound}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    log.info("stopping (grace %.0f s)", GRACE_SECONDS)
    server.stop(GRACE_SECONDS).wait()
