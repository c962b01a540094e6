"""The PostgreSQL engine: the same Store and Txn as SQLite's, on asyncpg, for several daemons on one database.

Every store module runs unchanged: its statements go through store/dialect.py. What differs is how a
transaction keeps its promises when other daemons write too:
- A write transaction first takes one transaction-scoped advisory lock (WRITE_LOCK); a spool commit,
  which only adds a row, does not wait for it. Writers then
  follow one another as on SQLite (BEGIN IMMEDIATE), so every read-then-write a module does (the next
  ticket number, `[next]`, a timer that fires once, a thread found by its Message-ID) stays as
  race-free across daemons as within one. Waiting for it is PostgreSQL's queue, not SQLite's sleeping
  retries; parsing and composing happen outside transactions, so daemons overlap on the CPU work.
- Claims of spool, outbox and timer rows carry leases (store/spool.py, store/outbox.py), so a daemon
  killed with -9 leaves nothing that another cannot take over.
- A commit that queued work (Txn.touch) sends NOTIFY; every daemon LISTENs and wakes its runners.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from mailgate.clock import Clock
from mailgate.store.counts import Counts
from mailgate.store.dialect import postgresql, with_id
from mailgate.store.schema import migrations
from mailgate.store.sqlite import SchemaTooNew, Store, StoreUnavailable
from mailgate.store.turns import Priority
from mailgate.store.txn import Row, Txn
from mailgate.store.url import Location

if TYPE_CHECKING:
    import asyncpg  # type: ignore[import-untyped]

log = logging.getLogger("mailgate.store")

# Advisory lock keys (any bigint; these spell "mailgate" and a role, so an operator's pg_locks view
# shows whose they are).
WRITE_LOCK = 0x6D61696C67617465
MIGRATE_LOCK = WRITE_LOCK + 1
CHANNEL = "mailgate"
RELISTEN = 10.0  # seconds between tries to listen again after the listening session was lost
# SQLSTATE classes worth trying again: serialization failure, deadlock, lock timeout, connection
# trouble, the server shutting down or out of resources.
_TRANSIENT = ("40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006")


class PgDatabaseError(sqlite3.DatabaseError):
    """A PostgreSQL error, raised as the store's one error family (store.DatabaseError): the rest of
    mailgate catches the store's errors, never a driver's, whichever engine runs."""


class PgIntegrityError(sqlite3.IntegrityError):
    """A unique or foreign key violation, as SQLite's IntegrityError."""


class PgTransientError(sqlite3.OperationalError):
    """Worth trying again later (store.TransientError): a lost connection, a deadlock, a restart.

    lost: the session itself is gone or unusable (the server ended it, the socket broke, the driver
    lost its place in the protocol): the store opens a new one instead of using it again.
    """

    def __init__(self, message: str, *, lost: bool = False) -> None:
        super().__init__(message)
        self.lost = lost


def mapped(exc: BaseException, sql: str = "") -> Exception:
    """The store's error for a driver's error (with the statement's start, for the operator's log)."""
    import asyncpg

    code = getattr(exc, "sqlstate", None) or ""
    if (isinstance(exc, (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, ConnectionError))
            or code.startswith("08") or code in ("57P01", "57P02", "57P03")):
        return PgTransientError(f"{type(exc).__name__}: {exc}", lost=True)
    if code in _TRANSIENT:
        return PgTransientError(str(exc))
    if code.startswith("23"):
        return PgIntegrityError(str(exc))
    return PgDatabaseError(f"{type(exc).__name__}: {exc}" + (f" in: {sql[:300]}" if sql else ""))


def _value(value: Any) -> Any:
    """A parameter as PostgreSQL takes it: TEXT cannot hold NUL (SQLite's can: mail from anyone has
    them), a bool goes into the integer flag columns as 0/1, buffers as bytes."""
    if isinstance(value, str):
        if type(value) is not str:  # a str enum (TicketStatus): its text, as sqlite3 binds it
            value = str.__str__(value)
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class PgTxn(Txn):
    """One open PostgreSQL transaction's statements, with SQLite's answers (lastrowid, rowcount)."""

    engine = "postgresql"

    def __init__(self, conn: asyncpg.Connection, clock: Clock, parts: dict[type[Any], object], counts: Counts,
                 id_tables: frozenset[str]) -> None:
        super().__init__(cast(sqlite3.Connection, None), clock, parts, counts)
        self._pg = conn
        self._id_tables = id_tables

    async def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        """Run a statement; return the new row's id (an INSERT into a table with ids) or the rowcount."""
        statement = postgresql(sql)
        self.counts.statements += 1
        args = [_value(v) for v in statement.args(params)]
        try:
            if statement.table in self._id_tables and not statement.returns:
                row = await self._pg.fetchrow(with_id(statement), *args)
                return int(row[0]) if row is not None else 0
            return _rowcount(await self._pg.execute(statement.text, *args))
        except Exception as exc:
            raise mapped(exc, statement.text) from exc

    async def rowcount(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> int:
        statement = postgresql(sql)
        self.counts.statements += 1
        try:
            return _rowcount(await self._pg.execute(statement.text, *[_value(v) for v in statement.args(params)]))
        except Exception as exc:
            raise mapped(exc, statement.text) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        statement = postgresql(sql)
        batch = [[_value(v) for v in statement.args(row)] for row in self.counts.rows(rows)]
        if not batch:
            return
        try:
            await self._pg.executemany(statement.text, batch)
        except Exception as exc:
            raise mapped(exc, statement.text) from exc

    async def one(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Row | None:
        statement = postgresql(sql)
        self.counts.statements += 1
        try:
            row = await self._pg.fetchrow(statement.text, *[_value(v) for v in statement.args(params)])
        except Exception as exc:
            raise mapped(exc, statement.text) from exc
        return cast(Row | None, row)

    async def all(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Row]:
        statement = postgresql(sql)
        self.counts.statements += 1
        try:
            rows = await self._pg.fetch(statement.text, *[_value(v) for v in statement.args(params)])
        except Exception as exc:
            raise mapped(exc, statement.text) from exc
        return cast(list[Row], rows)


def _rowcount(status: str) -> int:
    """asyncpg's command tag ("UPDATE 3", "INSERT 0 1") as a rowcount; 0 for tags without one."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PgStore(Store):
    """The store on PostgreSQL: one connection for transactions, one that listens for other daemons."""

    engine = "postgresql"

    def __init__(self, location: Location, *, clock: Clock | None = None, connect_timeout: float = 10.0) -> None:
        super().__init__(location.display_path(), clock=clock)
        self.location = location
        self._connect_timeout = connect_timeout
        self._pg: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._id_tables: frozenset[str] = frozenset()
        self._reconnecting = asyncio.Lock()
        self._relisten: asyncio.Task[None] | None = None
        self._relisten_at = 0.0

    @property
    def where(self) -> str:
        return self.location.display()

    async def _connection(self) -> asyncpg.Connection:
        import asyncpg

        try:
            return await asyncpg.connect(
                **self.location.connect_args(), timeout=self._connect_timeout,
                statement_cache_size=1024, server_settings={"application_name": "mailgate"},
            )
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"cannot connect to {self.location.display()}: {exc}") from exc

    async def open(self) -> PgStore:
        self._pg = await self._connection()
        try:
            await self._migrate()
            self._id_tables = frozenset(
                r[0] for r in await self._pg.fetch(
                    "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
                    " AND column_name = 'id' AND is_identity = 'YES'")
            )
            self._listener = await self._connection()
            await self._listener.add_listener(CHANNEL, self._heard)
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        if self._relisten is not None:
            self._relisten.cancel()
            with contextlib.suppress(BaseException):
                await self._relisten
            self._relisten = None
        for conn in (self._listener, self._pg):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5)
        self._listener = self._pg = None

    def _heard(self, _conn: object, pid: int, _channel: str, payload: str) -> None:
        """Another daemon (or a CLI command) committed work this one's runners wait for."""
        own = self._pg.get_server_pid() if self._pg is not None else None
        if pid != own and self.on_commit is not None:
            with contextlib.suppress(Exception):  # a runner's wake-up must not break the listener
                self.on_commit(frozenset(payload.split()))

    async def _migrate(self) -> None:
        """Apply the PostgreSQL migrations under an advisory lock: daemons starting together migrate once."""
        conn = self._pg
        assert conn is not None
        shipped = migrations("postgresql")
        known = shipped[-1][0] if shipped else 0
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK)
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
            if current > known:
                raise SchemaTooNew(self.where, current, known)
            for version, name, sql in shipped:
                if version <= current:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)  # the whole file: plpgsql bodies hold semicolons
                    await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
                log.info("store.migrated engine=postgresql version=%s name=%s", version, name)
        except (SchemaTooNew, StoreUnavailable):
            raise
        except Exception as exc:
            raise StoreUnavailable(f"cannot prepare {self.location.display()}: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK)

    def _check_listener(self) -> None:
        """After a restart or failover the listening session is gone too: open it again, in the background
        and at most every RELISTEN seconds (a server refusing connections must not slow every transaction)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        if self._relisten is not None and not self._relisten.done():
            return
        now = asyncio.get_running_loop().time()
        if now - self._relisten_at < RELISTEN:
            return
        self._relisten_at = now
        self._relisten = asyncio.get_running_loop().create_task(self._listen(), name="store-listen")

    async def _listen(self) -> None:
        try:
            conn = await self._connection()
            await conn.add_listener(CHANNEL, self._heard)
        except Exception as exc:
            log.warning("store.listen_failed engine=postgresql error=%s (other daemons' work is found by polling)", exc)
            return
        old, self._listener = self._listener, conn
        if old is not None:
            with contextlib.suppress(Exception):
                old.terminate()
        log.info("store.listening engine=postgresql")
        if self.on_commit is not None:  # what other daemons queued while nobody listened
            with contextlib.suppress(Exception):
                self.on_commit(frozenset({"outbox", "timers"}))

    def _drop_if_lost(self, conn: asyncpg.Connection, exc: BaseException) -> bool:
        """After an error that left the session unusable, close it: the next transaction opens a new one."""
        error = exc if isinstance(exc, PgTransientError) else mapped(exc) if isinstance(exc, Exception) else None
        if isinstance(error, PgTransientError) and error.lost:
            with contextlib.suppress(Exception):
                conn.terminate()
            return True
        return False

    async def _live(self) -> asyncpg.Connection:
        """The transaction connection, opened again if PostgreSQL restarted or the network dropped it."""
        conn = self._pg
        if conn is not None and not conn.is_closed():
            self._check_listener()
            return conn
        async with self._reconnecting:
            if self._pg is None or self._pg.is_closed():
                self._pg = await self._connection()
                log.warning("store.reconnected engine=postgresql")
            self._check_listener()
            return self._pg

    async def schema_version(self) -> int:
        async with self.read() as tx:
            return int(await tx.value("SELECT MAX(version) FROM schema_version") or 0)

    @contextlib.asynccontextmanager
    async def txn(self, *, wait: float | None = None, priority: Priority = Priority.BACKGROUND) -> AsyncIterator[Txn]:
        async with self._locked(wait, priority):
            conn = await self._live()
            tx = PgTxn(conn, self.clock, self.parts, self.counts, self._id_tables)
            async with self._step(conn, lambda exc: StoreUnavailable(f"cannot begin a transaction: {exc}")):
                await conn.execute("BEGIN")
                if wait is not None:
                    await conn.execute(f"SET LOCAL lock_timeout = '{max(10, int(wait * 1000))}ms'")
                if priority is not Priority.INTAKE:
                    # A spool commit (the SMTP 250 waits on it) only adds a row: it need not wait for
                    # another daemon's processing. The same bytes at two daemons in one instant make
                    # two spool rows; processing keeps one message (Message-ID and content dedupe).
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            async with self._step(conn):
                yield tx
                if tx.touched:
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, " ".join(sorted(tx.touched)))
            async with self._step(conn, lambda exc: StoreUnavailable(f"cannot commit: {exc}")):
                await conn.execute("COMMIT")
            self.counts.write_transactions += 1
        if tx.touched and self.on_commit is not None:
            self.on_commit(frozenset(tx.touched))

    @contextlib.asynccontextmanager
    async def _step(
        self, conn: asyncpg.Connection, failed: Callable[[Exception], Exception] | None = None,
    ) -> AsyncIterator[None]:
        """A part of a transaction: if it fails, the transaction is undone first (_undo), then the error
        goes on, as `failed` makes it (None: as it was)."""
        try:
            yield
        except BaseException as exc:
            await self._undo(conn, exc)
            if failed is not None and isinstance(exc, Exception):
                raise failed(exc) from exc
            raise

    async def _undo(self, conn: asyncpg.Connection, exc: BaseException) -> None:
        """Roll back after a failure; a session that cannot be trusted to have done so is closed instead.

        A lost session, or one interrupted mid-statement (a cancelled task: an SMTP session's
        timeout, a shutdown), could otherwise carry an open transaction into the next BEGIN, which
        PostgreSQL only warns about: the next change would join this one's fate.
        """
        if self._drop_if_lost(conn, exc):
            return
        try:
            await asyncio.shield(conn.execute("ROLLBACK"))
        except BaseException:
            with contextlib.suppress(Exception):
                conn.terminate()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Txn]:
        """A read transaction: one snapshot (REPEATABLE READ), no write lock."""
        async with self._locked():
            conn = await self._live()
            async with self._step(conn, mapped):
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            self.counts.read_transactions += 1
            async with self._step(conn):
                yield PgTxn(conn, self.clock, self.parts, self.counts, self._id_tables)
            # A read that cannot commit has nothing to lose: its session is undone (or closed) all the same.
            with contextlib.suppress(Exception):
                async with self._step(conn):
                    await conn.execute("COMMIT")
