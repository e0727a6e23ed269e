"""Hypothesis profiles, chosen by the environment variable HYPOTHESIS_PROFILE (default `dev`), the
`server_address` fixture (an in-process server per test module) and the `serve_process` fixture (a
real `licensecore serve` process) of the durability tests.

`deadline=None` because the first engine call JIT-compiles its kernels.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

settings.register_profile("dev", max_examples=200, **_COMMON)
settings.register_profile("ci", max_examples=300, print_blob=True, **_COMMON)
settings.register_profile("deep", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="module")
def server_address() -> Iterator[str]:
    """The address of a server with default limits on a free loopback port, for one test module."""
    from licensecore.server.app import create_server

    server, port = create_server("127.0.0.1:0")
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture
def serve_process(tmp_path) -> Iterator:
    """Start ``licensecore serve --data-dir`` on a free port; returns a starter; kills at the end."""
    processes: list[subprocess.Popen] = []

    def start() -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "licensecore.clients.cli", "serve", "--port", "0",
             "--data-dir", str(tmp_path / "data")],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        processes.append(process)
        line = process.stdout.readline()
        match = re.search(r"serving on (\S+)", line)
        assert match, f"no address in {line!r}"
        return match.group(1)

    yield start, processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)
