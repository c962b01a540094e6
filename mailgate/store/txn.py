"""One open transaction's statements: what every store module is handed as `tx`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from mailgate.clock import Clock, SystemClock, iso
from mailgate.store.counts import Counts

Row = sqlite3.Row
T = TypeVar("T")


class Txn:
    """Statements inside one open transaction.

    They run inline on the event loop's thread: once BEGIN has taken the lock, a statement on
    these small indexed tables takes microseconds, while a hop to a driver thread costs ~80 µs.
    Measured on the corpus, per-statement hops were 60% of the processing time of a message.
    Only BEGIN IMMEDIATE (which may wait for another process) and COMMIT (which may fsync) go
    through aiosqlite's thread.
    """

    # Which SQL dialect runs the statements: "sqlite" or "postgresql". Store modules write portable
    # SQL; the few statements that must differ (row locks another daemon skips) look here.
    engine = "sqlite"

    def __init__(
        self, conn: sqlite3.Connection, clock: Clock | None = None, parts: dict[type[Any], object] | None = None,
        counts: Counts | None = None,
    ) -> None:
        self._conn = conn
        self.counts = counts if counts is not None else Counts()
        self.clock: Clock = clock or SystemClock()
        self._parts = parts if parts is not None else {}
        self.touched: set[str] = set()

    def touch(self, what: str) -> None:
        """This transaction queued work a runner waits for ("outbox", "timers"): its owner hears after COMMIT."""
        self.touched.add(what)

    def part(self, kind: type[T]) -> T | None:
        """A part the store's owner handed every transaction (the daemon's mailer), found by its type."""
        found = self._parts.get(kind)
        return found if isinstance(found, kind) else None

    def now(self) -> datetime:
        """The store's clock: the daemon's, or a test's that it moves."""
        return self.clock.now()

    def now_iso(self) -> str:
        return iso(self.clock.now())

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run a statement; return lastrowid (for INSERT) or rowcount."""
        self.counts.statements += 1
        cursor = self._conn.execute(sql, params)
        try:
            if sql.lstrip()[:6].upper() == "INSERT":
                return int(cursor.lastrowid or 0)
            return cursor.rowcount
        finally:
            cursor.close()

    async def rowcount(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        self.counts.statements += 1
        cursor = self._conn.execute(sql, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, self.counts.rows(rows)).close()

    async def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        self.counts.statements += 1
        cursor = self._conn.execute(sql, params)
        try:
            row: Row | None = cursor.fetchone()
            return row
        finally:
            cursor.close()  # an unfinished statement would make COMMIT fail

    async def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        self.counts.statements += 1
        cursor = self._conn.execute(sql, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    async def value(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = await self.one(sql, params)
        return None if row is None else row[0]
