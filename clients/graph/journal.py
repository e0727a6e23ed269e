"""The apply journal: one SQLite row per change of a plan, so a crash loses nothing.

Before a ``$batch`` goes out its changes are recorded ``sent`` (committed); when the answer is
read they become ``done`` or ``failed`` (committed). A re-run with the same journal skips what is
``done`` and sends everything else again: changes that were in flight at a crash (still ``sent``)
are absorbed by the idempotent handling (an add of a member already there, a remove of a member
already gone, both count as done), and ``failed`` ones are tried again.

The database runs in WAL mode with ``synchronous=NORMAL``: a commit survives a crash of the
process; a power failure may lose the last commits, which only makes a re-run send those changes
again (absorbed as above). A change is never recorded done before Graph said so.

Rows are scoped by ``plan_id`` (the SHA-256 of the plan file), so one journal can serve many
plans and a later plan that repeats a change (a user removed, then added back) still makes it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Self

SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    plan_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    license_group_id TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
    account_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sent', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    detail TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (plan_id, tenant_id, license_group_id, op, account_id)
)
"""


class Change(NamedTuple):
    """One membership change of a plan."""

    tenant_id: str
    license_group_id: str
    op: str  # add | remove
    account_id: str


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Journal:
    """The journal at ``path`` (created if needed), seen through one plan."""

    def __init__(self, path: str | Path, plan_id: str) -> None:
        self.plan_id = plan_id
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            self._db.execute(SCHEMA)

    @staticmethod
    def done_in(path: str | Path, plan_id: str) -> set[Change]:
        """The changes recorded done for ``plan_id``, read without writing (empty if no file)."""
        if not Path(path).is_file():
            return set()
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            return _done(db, plan_id)
        finally:
            db.close()

    def done(self) -> set[Change]:
        """The changes of this plan already recorded done."""
        return _done(self._db, self.plan_id)

    def sent(self, changes: Iterable[Change]) -> None:
        """Record the intent: these changes are about to be sent."""
        now = _now()
        with self._db:  # one transaction, committed on exit
            self._db.executemany(
                "INSERT INTO changes VALUES (?, ?, ?, ?, ?, 'sent', 1, NULL, ?) "
                "ON CONFLICT (plan_id, tenant_id, license_group_id, op, account_id) DO UPDATE "
                "SET state = 'sent', attempts = attempts + 1, updated_at = excluded.updated_at",
                [(self.plan_id, *c, now) for c in changes])

    def record(self, outcomes: Iterable[tuple[Change, str, str | None]]) -> None:
        """Record outcomes: (change, ``done`` or ``failed``, detail)."""
        now = _now()
        with self._db:  # one transaction, committed on exit
            self._db.executemany(
                "UPDATE changes SET state = ?, detail = ?, updated_at = ? WHERE plan_id = ? "
                "AND tenant_id = ? AND license_group_id = ? AND op = ? AND account_id = ?",
                [(state, detail, now, self.plan_id, *c) for c, state, detail in outcomes])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _done(db: sqlite3.Connection, plan_id: str) -> set[Change]:
    rows = db.execute("SELECT tenant_id, license_group_id, op, account_id FROM changes "
                      "WHERE plan_id = ? AND state = 'done'", (plan_id,))
    return {Change(*row) for row in rows}
