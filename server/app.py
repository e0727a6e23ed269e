"""Server assembly: the LicenseCore servicer, standard health checking and reflection."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from licensecore.server import bundles, consumption
from licensecore.server.service import SERVICE_NAME, LicenseCoreServicer
from licensecore.v1 import licensecore_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
GRACE_SECONDS = 10.0


def create_server(
    address: str = "127.0.0.1:0", *, max_workers: int = 8
) -> tuple[grpc.Server, int]:
    """Bind ``address``, start serving and warm up the kernels; return the server and its port.

    Health reports NOT_SERVING until the warm-up (JIT compilation) is done, then SERVING for ""
    and for the LicenseCore service. Port 0 picks a free port.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    pb_grpc.add_LicenseCoreServicer_to_server(LicenseCoreServicer(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)  # raises RuntimeError when it cannot bind
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


def serve(host: str = "127.0.0.1", port: int = 50051) -> None:
    """Run the server until SIGINT or SIGTERM, then stop gracefully."""
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host  # IPv6
    server, bound = create_server(f"{bracketed}:{port}")
    log.info("licensecore serving on %s:%d", bracketed, bound)
    print(f"licensecore serving on {bracketed}:{bound}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    log.info("stopping (grace %.0f s)", GRACE_SECONDS)
    server.stop(GRACE_SECONDS).wait()
