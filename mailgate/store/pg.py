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
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
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
# SQLSTATE classes worth trying again: serialization failure, deadlock, lock timeout, connection
# trouble, the server shutting down or out of resources.
_TRANSIENT = ("40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006")


class PgDatabaseError(sqlite3.DatabaseError):
    """A PostgreSQL error, raised as the store's one error family (store.DatabaseError): the rest of
    mailgate catches the store's errors, never a driver's, whichever engine runs."""


class PgIntegrityError(sqlite3.IntegrityError):
    """A unique or foreign key violation, as SQLite's IntegrityError."""


class PgTransientError(sqlite3.OperationalError):
    """Worth trying again later (store.TransientError): a lost connection, a deadlock, a restart."""


def mapped(exc: BaseException, sql: str = "") -> Exception:
    """The store's error for a driver's error (with the statement's start, for the operator's log)."""
    import asyncpg

    code = getattr(exc, "sqlstate", None) or ""
    if isinstance(exc, (asyncpg.InterfaceError, OSError, ConnectionError)) or code in _TRANSIENT or code.startswith("08"):
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

    async def _live(self) -> asyncpg.Connection:
        """The transaction connection, opened again if PostgreSQL restarted or the network dropped it."""
        conn = self._pg
        if conn is not None and not conn.is_closed():
            return conn
        async with self._reconnecting:
            if self._pg is None or self._pg.is_closed():
                self._pg = await self._connection()
                log.warning("store.reconnected engine=postgresql")
            return self._pg

    async def schema_version(self) -> int:
        async with self.read() as tx:
            return int(await tx.value("SELECT MAX(version) FROM schema_version") or 0)

    @contextlib.asynccontextmanager
    async def txn(self, *, wait: float | None = None, priority: Priority = Priority.BACKGROUND) -> AsyncIterator[Txn]:
        async with self._locked(wait, priority):
            conn = await self._live()
            tx = PgTxn(conn, self.clock, self.parts, self.counts, self._id_tables)
            try:
                await conn.execute("BEGIN")
                if wait is not None:
                    await conn.execute(f"SET LOCAL lock_timeout = '{max(10, int(wait * 1000))}ms'")
                if priority is not Priority.INTAKE:
                    # A spool commit (the SMTP 250 waits on it) only adds a row: it need not wait for
                    # another daemon's processing. The same bytes at two daemons in one instant make
                    # two spool rows; processing keeps one message (Message-ID and content dedupe).
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise StoreUnavailable(f"cannot begin a transaction: {exc}") from exc
            try:
                yield tx
                if tx.touched:
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, " ".join(sorted(tx.touched)))
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise
            try:
                await conn.execute("COMMIT")
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise StoreUnavailable(f"cannot commit: {exc}") from exc
            self.counts.write_transactions += 1
        if tx.touched and self.on_commit is not None:
            self.on_commit(frozenset(tx.touched))

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Txn]:
        """A read transaction: one snapshot (REPEATABLE READ), no write lock."""
        async with self._locked():
            conn = await self._live()
            try:
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            except Exception as exc:
                raise mapped(exc) from exc
            self.counts.read_transactions += 1
            try:
                yield PgTxn(conn, self.clock, self.parts, self.counts, self._id_tables)
            finally:
                with contextlib.suppress(Exception):
                    await conn.execute("COMMIT")


async def peek(location: Location, timeout: float = 10.0) -> tuple[int | None, dict[str, int]]:
    """A PostgreSQL database's schema version (None: not a mailgate database yet) and rows per table,
    read without migrating or creating anything (`db status` before an upgrade or a rollback)."""
    import asyncpg

    try:
        conn = await asyncpg.connect(**location.connect_args(), timeout=timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(f"cannot connect to {location.display()}: {exc}") from exc
    try:
        if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
            return None, {}
        found = await conn.fetchval("SELECT MAX(version) FROM schema_version")
        names = [r[0] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " AND table_type = 'BASE TABLE' AND table_name <> 'schema_version' ORDER BY table_name")]
        counts = {name: int(await conn.fetchval(f'SELECT COUNT(*) FROM "{name}"')) for name in names}
        return (None if found is None else int(found)), counts
    except asyncpg.PostgresError as exc:
        raise mapped(exc) from exc
    finally:
        await conn.close()
