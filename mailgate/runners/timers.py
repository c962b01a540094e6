"""Due things as rows in the timers table, fired by APScheduler (3.x, in memory) rebuilt from that table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from mailgate.store import Store, StoreUnavailable, Txn, now_iso
from mailgate.store.timers import Handler, Timer, timer_of

log = logging.getLogger("mailgate.timers")

# Like the spool's: a timer whose handler raised this often is kept but no longer scheduled (dead).
MAX_TRIES = 5
_RETRY_BASE = 5.0  # seconds before the second try, doubling up to _RETRY_MAX
_RETRY_MAX = 600.0




@dataclass(frozen=True, slots=True)
class _Registration:
    handler: Handler
    after: Callable[[], None] | None


async def _nothing(tx: Txn, timer: Timer) -> None:
    return None


class Timers:
    """Loads timer rows into an in-memory APScheduler and fires each one once.

    APScheduler 3's persistent job store would mean sync SQLAlchemy I/O on the loop and pickled
    jobs; the table is the truth instead, and the scheduler only holds what the table says.
    """

    def __init__(self, store: Store, poll_seconds: float = 5.0) -> None:
        self.store = store
        self.poll_seconds = poll_seconds  # catches rows other processes (the CLI) wrote
        self._handlers: dict[str, _Registration] = {}
        self._seen = 0
        self._scheduler: AsyncIOScheduler | None = None
        self._sync_lock = asyncio.Lock()
        self._pending_sync: asyncio.Task[None] | None = None
        self._warned: set[str] = set()
        self.fired = 0  # for tests and metrics
        self.retry_base = _RETRY_BASE  # seconds before a failed handler's second try, then doubling

    def register(self, kind: str, handler: Handler | None = None, after: Callable[[], None] | None = None) -> None:
        self._handlers[kind] = _Registration(handler or _nothing, after)

    async def start(self) -> None:
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            # The defaults (1 s grace) silently drop a job that fell due while the daemon was
            # down: a snooze would never wake. None = run however late; coalesce = run once.
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        scheduler.start()
        self._scheduler = scheduler
        await self.sync()
        scheduler.add_job(self.sync, "interval", seconds=self.poll_seconds, id="timers-sync")

    async def stop(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=False)  # cancels jobs in flight: their transactions roll back
        task, self._pending_sync = self._pending_sync, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def alive(self) -> bool:
        """The scheduler runs: due timers (snooze wake-ups, SLA, retries) fire."""
        return self._scheduler is not None and bool(self._scheduler.running)

    def poke(self) -> None:
        """New rows may be in the table (after a commit): load them soon, once for many pokes."""
        if self._scheduler is None or (self._pending_sync is not None and not self._pending_sync.done()):
            return
        self._pending_sync = asyncio.get_running_loop().create_task(self.sync(), name="timers-sync")

    async def sync(self) -> None:
        """Schedule every timer row not scheduled yet (all of them at start); never raises."""
        async with self._sync_lock:
            try:
                async with self.store.read() as tx:
                    rows = await tx.all("SELECT * FROM timers WHERE id > ? ORDER BY id", (self._seen,))
            except Exception as exc:  # StoreUnavailable, sqlite3 errors: the next sync tries again
                log.warning("timers.sync_failed error=%s", _reason(exc))
                return
            scheduler = self._scheduler
            if scheduler is None:
                return
            for row in rows:
                self._seen = max(self._seen, row["id"])
                if row["dead_at"] is not None:
                    continue
                try:
                    timer = timer_of(row)
                    # A date in the past runs at once (misfire_grace_time=None): nothing is forgotten.
                    scheduler.add_job(
                        self._fire, DateTrigger(run_date=timer.due_at, timezone=UTC), args=[timer.id],
                        id=f"timer-{timer.id}", replace_existing=True,
                    )
                except Exception as exc:  # one unreadable row (a bad due_at) must not keep the rest out
                    log.error("timers.schedule_failed id=%s error=%s", row["id"], _reason(exc))

    async def _fire(self, timer_id: int) -> None:
        """Run one timer's handler in its own transaction; never raises into the scheduler."""
        after: Callable[[], None] | None = None
        try:
            async with self.store.txn() as tx:
                row = await tx.one("SELECT * FROM timers WHERE id = ?", (timer_id,))
                if row is None or row["dead_at"] is not None:
                    return  # cancelled, fired by another process, or given up on
                timer = timer_of(row)
                registration = self._handlers.get(timer.kind)
                if registration is None:
                    if timer.kind not in self._warned:
                        self._warned.add(timer.kind)
                        log.warning("timers.no_handler kind=%s (kept for a later version)", timer.kind)
                    return
                await registration.handler(tx, timer)
                await tx.execute("DELETE FROM timers WHERE id = ?", (timer_id,))
                after = registration.after
        except (StoreUnavailable, sqlite3.OperationalError) as exc:
            # The row stays; the next start (or a later sync after a retry) fires it.
            log.warning("timers.fire_failed id=%s error=%s", timer_id, exc)
            self._retry_later(timer_id, self.retry_base)
            return
        except Exception as exc:  # the handler's bug or a row it cannot handle: rolled back, counted
            await self._failed(timer_id, exc)
            return
        self.fired += 1
        if after is not None:
            try:
                after()
            except Exception as exc:  # the effect is committed; only the wake-up went wrong
                log.error("timers.after_failed id=%s error=%s", timer_id, _reason(exc))

    async def _failed(self, timer_id: int, exc: Exception) -> None:
        """Count a failed try on the row; dead after MAX_TRIES, else tried again later."""
        reason = _reason(exc)
        try:
            async with self.store.txn() as tx:
                row = await tx.one(
                    "UPDATE timers SET attempts = attempts + 1, last_error = ?,"
                    " dead_at = CASE WHEN attempts + 1 >= ? THEN ? END WHERE id = ?"
                    " RETURNING kind, ref, attempts, dead_at",
                    (reason[:2000], MAX_TRIES, now_iso(), timer_id),
                )
        except Exception as store_exc:
            log.error("timers.fire_error id=%s error=%s (not recorded: %s)", timer_id, reason, _reason(store_exc))
            self._retry_later(timer_id, _RETRY_MAX)
            return
        if row is None:
            return
        if row["dead_at"] is not None:
            log.error("timers.dead id=%s kind=%s ref=%s attempts=%s error=%s",
                      timer_id, row["kind"], row["ref"], row["attempts"], reason)
            return
        wait = min(self.retry_base * 2 ** (row["attempts"] - 1), _RETRY_MAX)
        log.warning("timers.fire_error id=%s kind=%s ref=%s attempts=%s retry_in=%.0fs error=%s",
                    timer_id, row["kind"], row["ref"], row["attempts"], wait, reason)
        self._retry_later(timer_id, wait)

    def _retry_later(self, timer_id: int, seconds: float) -> None:
        scheduler = self._scheduler
        if scheduler is None:
            return
        retry_at = datetime.now(UTC).timestamp() + seconds
        try:
            scheduler.add_job(
                self._fire, DateTrigger(run_date=datetime.fromtimestamp(retry_at, UTC), timezone=UTC),
                args=[timer_id], id=f"timer-{timer_id}", replace_existing=True,
            )
        except Exception as exc:  # a scheduler shutting down: the row stays and loads at the next start
            log.warning("timers.retry_not_scheduled id=%s error=%s", timer_id, _reason(exc))


def _reason(exc: BaseException) -> str:
    """One line for the log and the row: the exception's type and text, bounded."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
