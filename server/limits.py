"""What one caller may ask of the server, and the error a caller gets beyond it.

The defaults leave room for the XL benchmark (10 M installations, 12.8 M rows and ~1.5 GB of Arrow
in all) in one upload, while a stream that never ends or a table of a billion empty rows is cut off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from licensecore.server.errors import LicenseCoreError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Limits:
    """Server limits; each field name is the ``limit`` a refused caller is told about."""

    max_message_bytes: int = 16 * MiB  # one gRPC message (chunks are < 4 MiB; WhatIf carries scenarios)
    max_request_bytes: int = 4 * GiB  # all messages of one request stream together
    max_rows: int = 100_000_000  # rows of one table
    max_concurrent: int = 4  # computations running at once
    slot_wait_seconds: float = 5.0  # how long a computation waits for a free slot (within its deadline)
    memory_budget_bytes: int = 4 * GiB  # uploaded datasets kept in memory (pa.Table.nbytes)

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "max_request_bytes", "max_rows", "max_concurrent"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.slot_wait_seconds < 0 or self.memory_budget_bytes < 0:
            raise ValueError("slot_wait_seconds and memory_budget_bytes cannot be negative")

    def server_options(self) -> list[tuple[str, int]]:
        """The gRPC server options that enforce the per-message limit (checked by gRPC itself)."""
        return [("grpc.max_receive_message_length", self.max_message_bytes)]


class LimitExceeded(LicenseCoreError):
    """A request went beyond ``limit`` (a ``Limits`` field): ``value`` is what was asked, ``maximum``
    what is allowed. ``subject`` names what the limit applied to (a table), when there is one."""

    def __init__(self, limit: str, maximum: int, value: int, subject: str = "") -> None:
        where = f" ({subject})" if subject else ""
        super().__init__(f"limit {limit} exceeded{where}: {value} > {maximum}")
        self.limit = limit
        self.maximum = maximum
        self.value = value
        self.subject = subject


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*", re.IGNORECASE)
_POWERS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_bytes(text: str) -> int:
    """A byte count written as ``1073741824``, ``2GiB``, ``512MiB``, ``1.5GB`` or ``64k``.

    ``KiB/MiB/GiB/TiB`` (and bare ``k/m/g/t``) are powers of 1024, ``KB/MB/GB/TB`` powers of 1000.
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a byte count: {text!r} (examples: 1048576, 512MiB, 2GiB, 1.5GB)")
    number, unit = match.group(1), (match.group(2) or "").lower()
    base = 1000 if unit.endswith("b") and not unit.endswith("ib") and unit != "b" else 1024
    return int(float(number) * base ** _POWERS[unit[:1]])
