"""Per-call guards: computation slots, and stopping work for a caller that is gone.

Kernels cannot be interrupted (they stay pure), so a call checks its caller between stages: after
the request is read, before computing, and before each message it streams back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

import grpc

from licensecore.server.errors import LicenseCoreError
from licensecore.server.limits import LimitExceeded

log = logging.getLogger(__name__)
T = TypeVar("T")
POLL_SECONDS = 0.05  # how often a call waiting for a slot looks whether its caller is still there


class CallEnded(LicenseCoreError):
    """The caller cancelled or its deadline passed: the work stops, nobody reads the answer."""

    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(f"call ended by the client ({code.name}); work stopped")
        self.code = code


def ensure_active(context: grpc.ServicerContext) -> None:
    """Raise ``CallEnded`` when the caller cancelled or the deadline passed."""
    if not context.is_active():
        expired = context.time_remaining() <= 0
        error = CallEnded(grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED)
        log.info("%s", error)
        raise error


class Slot:
    """One held computation slot; ``release`` is idempotent."""

    def __init__(self, semaphore: threading.Semaphore) -> None:
        self._semaphore = semaphore
        self._held = True
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                self._semaphore.release()


class ComputeSlots:
    """At most ``limit`` computations at once. A call waits up to ``wait_seconds`` (and never past
    its deadline) for a free slot, then gets ``LimitExceeded("max_concurrent")``."""

    def __init__(self, limit: int, wait_seconds: float) -> None:
        self._limit = limit
        self._wait = wait_seconds
        self._semaphore = threading.BoundedSemaphore(limit)

    def acquire(self, context: grpc.ServicerContext) -> Slot:
        """A slot for this call; raises ``CallEnded`` if the caller leaves while waiting."""
        start = time.monotonic()
        give_up, deadline = start + self._wait, start + context.time_remaining()
        while True:
            ensure_active(context)
            now = time.monotonic()
            if now >= deadline:
                raise CallEnded(grpc.StatusCode.DEADLINE_EXCEEDED)
            left = give_up - now
            if self._semaphore.acquire(timeout=max(0.0, min(POLL_SECONDS, left, deadline - now))):
                return Slot(self._semaphore)
            if left <= 0:
                raise LimitExceeded("max_concurrent", self._limit, self._limit + 1)


def streamed(messages: Iterable[T], context: grpc.ServicerContext, slot: Slot) -> Iterator[T]:
    """Yield ``messages`` while the caller listens (each is computed only then); release ``slot``
    when the stream ends, whether finished, failed or abandoned by the caller."""
    try:
        iterator = iter(messages)
        while context.is_active():
            try:
                message = next(iterator)
            except StopIteration:
                return
            yield message
        log.info("caller gone: response stream stopped")
    finally:
        slot.release()
