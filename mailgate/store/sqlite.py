"""The SQLite engine: one connection, WAL, versioned migrations, one transaction per change."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from mailgate.clock import Clock, SystemClock
from mailgate.store.counts import Counts
from mailgate.store.schema import migrations, statements
from mailgate.store.turns import Priority, Turns
from mailgate.store.txn import Txn

# The engine's errors, named once here: the rest of mailgate catches these, never the driver's own
# classes, so a second engine only has to map its errors in store/.
DatabaseError = sqlite3.Error
# A statement that failed this time ("database is locked", a full disk): worth trying again later.
TransientError = sqlite3.OperationalError
T = TypeVar("T")
# Told after a write transaction committed, with what it touched (e.g. {"outbox", "timers"}).
CommitListener = Callable[[frozenset[str]], None]


class StoreUnavailable(Exception):
    """The store cannot be opened or written now; the caller should ask the sender to retry."""


class SchemaTooNew(StoreUnavailable):
    """The database was migrated by a newer mailgate; this one would misread or corrupt it.

    A StoreUnavailable, so mail handed over meanwhile (`ingest`) stays with the sender; retrying
    alone will not help, though: `run` exits with EX_CONFIG.
    """

    def __init__(self, path: Path | str, found: int, known: int) -> None:
        self.found, self.known = found, known
        super().__init__(
            f"{path}: this database was written by a newer mailgate (schema {found}, this one knows {known});"
            " upgrade mailgate or restore a backup"
        )


class Store:
    """The database behind every module: open, migrate, run transactions (SQLite; store/pg.py: PostgreSQL)."""

    engine = "sqlite"

    def __init__(
        self, path: Path, *, synchronous: str = "NORMAL", busy_timeout_ms: int = 10_000, clock: Clock | None = None
    ) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        # Set by whoever runs the store (the daemon): parts every Txn can reach, and who hears of commits.
        self.parts: dict[type[Any], object] = {}
        self.on_commit: CommitListener | None = None
        self.counts = Counts()  # statements and transactions run, for /metrics
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._db: aiosqlite.Connection | None = None
        self._conn: sqlite3.Connection | None = None
        # One connection: writes serialize in SQLite anyway, and one lock keeps transactions whole.
        # It serves by priority (store/turns.py): an SMTP session's spool commit goes before
        # processing, processing before delivery and timers.
        self._lock = Turns()
        self._holder: asyncio.Task[Any] | None = None

    @property
    def where(self) -> str:
        """The database for logs and messages: the SQLite file, or PostgreSQL's URL without secrets."""
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        # Python 3.11's sqlite3 has no autocommit=; isolation_level=None + explicit BEGIN.
        # check_same_thread=False: aiosqlite's thread opens it, the loop's thread runs statements;
        # the store's lock makes sure never both at once.
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        self._conn = conn
        return conn

    async def open(self) -> Store:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Private even when the caller's umask is 022 (a library user, a test): SQLite gives
            # the -wal and -shm files the database file's mode, so creating it 0600 covers all three.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            db = await aiosqlite.Connection(self._connect, 64)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._db = db
        try:
            await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            await db.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL survives kill -9 (the OS keeps the WAL); FULL also survives power loss.
            await db.execute(f"PRAGMA synchronous = {'FULL' if self._synchronous == 'FULL' else 'NORMAL'}")
            await db.execute("PRAGMA foreign_keys = ON")
            await self._migrate()
        except sqlite3.Error as exc:
            await self.close()
            raise StoreUnavailable(f"cannot prepare {self.path}: {exc}") from exc
        except BaseException:
            await self.close()  # an open connection's thread would keep the process from exiting
            raise
        return self

    async def close(self) -> None:
        if self._db is not None:
            db, self._db, self._conn = self._db, None, None
            await db.close()

    async def __aenter__(self) -> Store:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _migrate(self) -> None:
        db = self._require()
        await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        async with db.execute("SELECT MAX(version) FROM schema_version") as cursor:
            row = await cursor.fetchone()
        current = (row[0] if row else None) or 0
        shipped = migrations()
        known = shipped[-1][0] if shipped else 0
        if current > known:
            # An older mailgate started on a database a newer one migrated (a rollback of the
            # package without the backup): its queries would miss columns or misread states.
            raise SchemaTooNew(self.path, current, known)
        for version, _name, sql in shipped:
            if version <= current:
                continue
            # executescript would COMMIT first; run the statements ourselves inside one transaction.
            await db.execute("BEGIN IMMEDIATE")
            try:
                # Re-check under the write lock: another process may have migrated meanwhile.
                async with db.execute("SELECT MAX(version) FROM schema_version") as cursor:
                    row = await cursor.fetchone()
                if ((row[0] if row else None) or 0) >= version:
                    await db.execute("ROLLBACK")
                    continue
                for statement in statements(sql):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise

    def _require(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreUnavailable("the store is not open")
        return self._db

    async def schema_version(self) -> int:
        async with self.read() as tx:
            return int(await tx.value("SELECT MAX(version) FROM schema_version") or 0)

    def contended(self, priority: Priority) -> bool:
        """Someone more urgent than `priority` waits for the store: a holder of that class should let go."""
        return self._lock.waiting(above=priority)

    @contextlib.asynccontextmanager
    async def _locked(self, wait: float | None = None, priority: Priority = Priority.BACKGROUND) -> AsyncIterator[None]:
        """The store's lock; asking for it again from the task that holds it is a bug, not a wait."""
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            # asyncio.Lock is not re-entrant: this would hang forever. Use the open Txn instead.
            raise RuntimeError("a transaction is already open in this task; use its Txn")
        try:
            async with asyncio.timeout(wait):
                await self._lock.acquire(priority)
        except TimeoutError:
            raise StoreUnavailable(f"the database is busy (waited {wait:g}s for it)") from None
        try:
            self._holder = task
            yield
        finally:
            self._holder = None
            self._lock.release()

    @contextlib.asynccontextmanager
    async def txn(self, *, wait: float | None = None, priority: Priority = Priority.BACKGROUND) -> AsyncIterator[Txn]:
        """A write transaction (BEGIN IMMEDIATE): committed on exit, rolled back on error.

        wait: seconds to get the write lock, instead of busy_timeout, then StoreUnavailable.
        For intake, whose sender retries: when another process holds the lock, SMTP sessions
        would otherwise each wait busy_timeout in turn behind one another.
        priority: whose turn comes first when several tasks wait (Priority.INTAKE for sources).
        """
        deadline = None if wait is None else asyncio.get_running_loop().time() + wait
        async with self._locked(wait, priority):
            db = self._require()
            assert self._conn is not None
            await self._begin(db, deadline)
            tx = Txn(self._conn, self.clock, self.parts, self.counts)
            try:
                yield tx
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                raise
            try:
                await db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                raise StoreUnavailable(f"cannot commit: {exc}") from exc
            self.counts.write_transactions += 1
        if tx.touched and self.on_commit is not None:
            self.on_commit(frozenset(tx.touched))

    async def _begin(self, db: aiosqlite.Connection, deadline: float | None) -> None:
        """BEGIN IMMEDIATE, which may wait for another process's writer: busy_timeout, or until the deadline.

        The statement runs in aiosqlite's thread whatever happens to the awaiting task. Cancelled
        while it waits (a shutdown, an SMTP session's timeout), the BEGIN would still run later and
        leave the one connection inside a transaction nobody owns: every later BEGIN would fail with
        "cannot start a transaction within a transaction". So it is awaited to the end and undone;
        and a deadline is SQLite's own busy timeout, never a timeout around the await.

        Most of the time no other process writes: BEGIN is tried first right here without waiting
        (busy_timeout 0), which spares the hop to the driver's thread (an idle store's spool commit
        went from ~320 to ~180 µs); only a failure (another writer: SQLITE_BUSY) takes the waiting path.
        """
        conn = self._conn
        assert conn is not None
        conn.execute("PRAGMA busy_timeout = 0").close()
        try:
            conn.execute("BEGIN IMMEDIATE").close()
            return
        except sqlite3.Error:
            pass  # busy: wait below, where an error that stays is reported
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}").close()
        if deadline is not None:
            left_ms = max(10, int((deadline - asyncio.get_running_loop().time()) * 1000))
            conn.execute(f"PRAGMA busy_timeout = {left_ms}").close()
        begin = asyncio.ensure_future(db.execute("BEGIN IMMEDIATE"))
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await begin
                await db.execute("ROLLBACK")
            raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot begin a transaction: {exc}") from exc
        finally:
            if deadline is not None:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}").close()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Txn]:
        """A read transaction: one consistent snapshot (WAL readers never wait for writers)."""
        async with self._locked():
            self._require()
            conn = self._conn
            assert conn is not None
            conn.execute("BEGIN").close()
            self.counts.read_transactions += 1
            try:
                yield Txn(conn, self.clock, self.parts, self.counts)
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("COMMIT").close()
