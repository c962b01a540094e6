"""Due things as rows in the timers table, fired by APScheduler (3.x, in memory) rebuilt from that table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from mailgate.clock import Clock, SystemClock
from mailgate.store import Store, StoreUnavailable, TransientError, Txn
from mailgate.store import timers as rows
from mailgate.store.timers import Handler, Timer

log = logging.getLogger("mailgate.timers")

# APScheduler 3 compares run dates with the real time itself (datetime.now in its wake-up loop), so
# a run date is real time: the daemon's clock says how far off a row is, this one when that is.
SCHEDULER_CLOCK: Clock = SystemClock()

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
    A row is due by the daemon's clock: a test that moves a ManualClock past it and pokes sees it fire.
    """

    def __init__(self, store: Store, poll_seconds: float = 5.0, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or store.clock
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
                    found, unreadable = await rows.newer_than(tx, self._seen)
            except Exception as exc:  # StoreUnavailable, sqlite3 errors: the next sync tries again
                log.warning("timers.sync_failed error=%s", _reason(exc))
                return
            scheduler = self._scheduler
            if scheduler is None:
                return
            for timer_id, error in unreadable.items():  # one bad row must not keep the rest out
                self._seen = max(self._seen, timer_id)
                log.error("timers.schedule_failed id=%s error=%s", timer_id, error[:500])
            for timer in found:
                self._seen = max(self._seen, timer.id)
                if timer.dead:
                    continue
                try:
                    # A date in the past runs at once (misfire_grace_time=None): nothing is forgotten.
                    scheduler.add_job(
                        self._fire, DateTrigger(run_date=self._run_date(timer.due_at), timezone=UTC),
                        args=[timer.id], id=f"timer-{timer.id}", replace_existing=True,
                    )
                except Exception as exc:  # one row the scheduler refuses must not keep the rest out
                    log.error("timers.schedule_failed id=%s error=%s", timer.id, _reason(exc))

    async def reschedule(self) -> None:
        """Schedule every row again by the clock as it is now (it was moved: a test's ManualClock)."""
        async with self._sync_lock:
            self._seen = 0
        await self.sync()

    def _run_date(self, due_at: datetime) -> datetime:
        """When APScheduler (which reads the real time) must run a row due at `due_at` by our clock."""
        return SCHEDULER_CLOCK.now() + max(due_at - self.clock.now(), timedelta(0))

    async def _fire(self, timer_id: int) -> None:
        """Run one timer's handler in its own transaction; never raises into the scheduler."""
        after: Callable[[], None] | None = None
        try:
            async with self.store.txn() as tx:
                timer = await rows.get(tx, timer_id)
                if timer is None or timer.dead:
                    return  # cancelled, fired by another process, or given up on
                registration = self._handlers.get(timer.kind)
                if registration is None:
                    if timer.kind not in self._warned:
                        self._warned.add(timer.kind)
                        log.warning("timers.no_handler kind=%s (kept for a later version)", timer.kind)
                    return
                await registration.handler(tx, timer)
                await rows.done(tx, timer_id)
                after = registration.after
        except (StoreUnavailable, TransientError) as exc:
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
                row = await rows.failed(tx, timer_id, reason, MAX_TRIES)
        except Exception as store_exc:
            log.error("timers.fire_error id=%s error=%s (not recorded: %s)", timer_id, reason, _reason(store_exc))
            self._retry_later(timer_id, _RETRY_MAX)
            return
        if row is None:
            return
        if row.dead:
            log.error("timers.dead id=%s kind=%s ref=%s attempts=%s error=%s",
                      timer_id, row.kind, row.ref, row.attempts, reason)
            return
        wait = min(self.retry_base * 2 ** (row.attempts - 1), _RETRY_MAX)
        log.warning("timers.fire_error id=%s kind=%s ref=%s attempts=%s retry_in=%.0fs error=%s",
                    timer_id, row.kind, row.ref, row.attempts, wait, reason)
        self._retry_later(timer_id, wait)

    def _retry_later(self, timer_id: int, seconds: float) -> None:
        scheduler = self._scheduler
        if scheduler is None:
            return
        retry_at = SCHEDULER_CLOCK.now() + timedelta(seconds=seconds)
        try:
            scheduler.add_job(
                self._fire, DateTrigger(run_date=retry_at, timezone=UTC),
                args=[timer_id], id=f"timer-{timer_id}", replace_existing=True,
            )
        except Exception as exc:  # a scheduler shutting down: the row stays and loads at the next start
            log.warning("timers.retry_not_scheduled id=%s error=%s", timer_id, _reason(exc))


def _reason(exc: BaseException) -> str:
    """One line for the log and the row: the exception's type and text, bounded."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
