"""Domain errors. Every bad input names the table, column, first offending row, value and count."""

from __future__ import annotations

from dataclasses import dataclass


VALUE_CHARS = 120  # an offending value is quoted up to this length (an id may be megabytes)


def clipped(text: str, limit: int = VALUE_CHARS) -> str:
    """``text``, or its first ``limit`` characters and how many there were."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


class LicenseCoreError(Exception):
    """Base class of the errors licensecore raises on purpose."""


@dataclass
class InputError(LicenseCoreError):
    """Bad input, rejected whole: nothing is computed or written.

    ``row`` is the 0-based index of the first offending row in ``table`` (-1 when the problem
    is the table or column itself, such as a missing column), ``count`` how many rows are affected.
    """

    table: str
    column: str
    row: int
    value: object
    count: int
    problem: str

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        if self.row < 0:
            return f"{where}: {self.problem}"
        return (
            f"{where}: {self.problem} at row {self.row} (value {clipped(repr(self.value))}); "
            f"{self.count} row(s) affected"
        )


class Unauthenticated(LicenseCoreError):
    """The call carries no bearer token, or one the server does not know (``reason``:
    ``TOKEN_MISSING`` or ``TOKEN_UNKNOWN``)."""

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason


class PermissionDenied(LicenseCoreError):
    """The caller's token does not cover a tenant the call carries (``table``, ``tenants``) or a
    tenant of the stored dataset it names (``dataset_id``; those tenants are not disclosed)."""

    def __init__(
        self, problem: str, *, table: str = "", tenants: tuple[str, ...] = (), dataset_id: str = ""
    ) -> None:
        super().__init__(problem)
        self.table = table
        self.tenants = tenants
        self.dataset_id = dataset_id
