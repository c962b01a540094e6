"""Named locks that one daemon holds while it lives: who fetches an IMAP account when several share a database.

    async with locks.hold(store, "imap:support") as held:
        await held.wait()          # this daemon is the one now
        ... work while held ...    # bool(held) turns False if the lock is lost

On PostgreSQL, a session-level advisory lock on a connection of its own: the server keeps it for as
long as that session lives and drops it when the session ends, so a daemon killed with -9 (the kernel
closes its socket, the backend exits) frees it for another within a moment, with no lease to expire.
The daemons that did not get it try again every few seconds. On SQLite one daemon owns the file: held.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from mailgate.store.sqlite import Store

if TYPE_CHECKING:
    import asyncpg  # type: ignore[import-untyped]

log = logging.getLogger("mailgate.store")

RETRY = 3.0  # seconds between tries of a lock another daemon holds
CHECK = 30.0  # seconds between checks that a held lock's session is still there
_FIRST_TRY = 15.0  # seconds hold() waits for its first answer (a connect timeout is 10)


def key_of(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a name: the same in every daemon and every release
    (Python's hash() is salted per process, so two daemons would disagree)."""
    return int.from_bytes(hashlib.blake2b(f"mailgate:{name}".encode(), digest_size=8).digest(), "big", signed=True)


class Held:
    """Whether this daemon holds a named lock now; true or false, it can change while the daemon runs."""

    def __init__(self, name: str, on_change: Callable[[bool], None] | None = None) -> None:
        self.name = name
        self.on_change = on_change
        self._held = asyncio.Event()
        self._lost = asyncio.Event()
        self.tried = asyncio.Event()  # the first try is over, taken or not

    def __bool__(self) -> bool:
        return self._held.is_set()

    async def wait(self) -> None:
        """Until this daemon holds the lock."""
        await self._held.wait()

    async def wait_lost(self) -> None:
        """Until a held lock is lost (its session ended)."""
        await self._lost.wait()

    def _set(self, held: bool) -> None:
        if held == bool(self):
            return
        if held:
            self._lost.clear()
            self._held.set()
        else:
            self._held.clear()
            self._lost.set()
        if self.on_change is not None:
            with contextlib.suppress(Exception):  # a listener's mistake must not stop the lock's task
                self.on_change(held)


@contextlib.asynccontextmanager
async def hold(
    store: Store, name: str, *, on_change: Callable[[bool], None] | None = None, retry: float = RETRY,
) -> AsyncIterator[Held]:
    """Try for the named lock now and every `retry` seconds until this daemon holds it; keep it until exit."""
    held = Held(name, on_change)
    if store.engine != "postgresql":
        held._set(True)  # one daemon per SQLite file: nobody to share with
        yield held
        return
    task = asyncio.get_running_loop().create_task(_keep(store, held, key_of(name), retry), name=f"lock-{name}")
    try:
        # Whoever enters learns the first answer, not "not yet": a lone daemon never looks like one standing by.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(held.tried.wait(), _FIRST_TRY)
        yield held
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        held._set(False)


async def _keep(store: Store, held: Held, key: int, retry: float) -> None:
    conn: asyncpg.Connection | None = None
    try:
        while True:
            try:
                if conn is None or conn.is_closed():
                    conn = await _connect(store)
                    conn.add_termination_listener(lambda _c: held._set(False))
                if not held and await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                    log.info("store.lock_taken name=%s", held.name)
                    held._set(True)
                if held:
                    # The session is the lock: a lost connection ends it on both sides.
                    await conn.fetchval("SELECT 1", timeout=retry)
            except Exception as exc:  # the server restarting, the network, a refused login: try again
                if held:
                    log.warning("store.lock_lost name=%s error=%s", held.name, exc)
                held._set(False)
                await _close(conn)
                conn = None
            held.tried.set()
            if held:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(held.wait_lost(), CHECK)
            else:
                await asyncio.sleep(retry)
    finally:
        if conn is not None and not conn.is_closed() and held:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.execute("SELECT pg_advisory_unlock($1)", key), 5)
        await _close(conn)


async def _connect(store: Store) -> asyncpg.Connection:
    import asyncpg

    from mailgate.store.pg import PgStore

    assert isinstance(store, PgStore)
    return await asyncpg.connect(
        **store.location.connect_args(), timeout=10, server_settings={"application_name": "mailgate-lock"},
    )


async def _close(conn: asyncpg.Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5)

