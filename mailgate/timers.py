"""Due things as rows in the timers table, fired by APScheduler (3.x, in memory) rebuilt from that table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from mailgate.store import Row, Store, StoreUnavailable, Txn, now_iso

log = logging.getLogger("mailgate.timers")

OUTBOX_RELEASE = "outbox.release"


@dataclass(frozen=True, slots=True)
class Timer:
    id: int
    kind: str
    ref: int
    due_at: datetime


def iso(moment: datetime) -> str:
    """The one timestamp format of the store (UTC, microseconds): text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _timer(row: Row) -> Timer:
    return Timer(row["id"], row["kind"], row["ref"], datetime.fromisoformat(row["due_at"]))


async def add(tx: Txn, kind: str, ref: int, due_at: datetime) -> int:
    """A due thing, in the caller's transaction: it exists exactly when the change that made it does."""
    return await tx.execute(
        "INSERT INTO timers (kind, ref, due_at, created_at) VALUES (?, ?, ?, ?)", (kind, ref, iso(due_at), now_iso())
    )


async def cancel(tx: Txn, kind: str, ref: int) -> int:
    """Drop the timers of one row (a cancelled send); a scheduled job then finds nothing to do."""
    return await tx.rowcount("DELETE FROM timers WHERE kind = ? AND ref = ?", (kind, ref))


# A handler runs inside the transaction that deletes the timer row; `after` runs once it committed.
Handler = Callable[[Txn, Timer], Awaitable[None]]


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

    def poke(self) -> None:
        """New rows may be in the table (after a commit): load them soon, once for many pokes."""
        if self._scheduler is None or (self._pending_sync is not None and not self._pending_sync.done()):
            return
        self._pending_sync = asyncio.get_running_loop().create_task(self.sync(), name="timers-sync")

    async def sync(self) -> None:
        """Schedule every timer row not scheduled yet (all of them at start)."""
        async with self._sync_lock:
            try:
                async with self.store.read() as tx:
                    rows = await tx.all("SELECT * FROM timers WHERE id > ? ORDER BY id", (self._seen,))
            except StoreUnavailable as exc:
                log.warning("timers.sync_failed error=%s", exc)
                return
            scheduler = self._scheduler
            if scheduler is None:
                return
            for row in rows:
                timer = _timer(row)
                self._seen = max(self._seen, timer.id)
                # A date in the past runs at once (misfire_grace_time=None): nothing is forgotten.
                scheduler.add_job(
                    self._fire, DateTrigger(run_date=timer.due_at, timezone=UTC), args=[timer.id],
                    id=f"timer-{timer.id}", replace_existing=True,
                )

    async def _fire(self, timer_id: int) -> None:
        after: Callable[[], None] | None = None
        try:
            async with self.store.txn() as tx:
                row = await tx.one("SELECT * FROM timers WHERE id = ?", (timer_id,))
                if row is None:
                    return  # cancelled, or fired by another process
                timer = _timer(row)
                registration = self._handlers.get(timer.kind)
                if registration is None:
                    if timer.kind not in self._warned:
                        self._warned.add(timer.kind)
                        log.warning("timers.no_handler kind=%s (kept for a later version)", timer.kind)
                    return
                await registration.handler(tx, timer)
                await tx.execute("DELETE FROM timers WHERE id = ?", (timer_id,))
                after = registration.after
        except StoreUnavailable as exc:
            # The row stays; the next start (or a later sync after a retry) fires it.
            log.warning("timers.fire_failed id=%s error=%s", timer_id, exc)
            self._retry_later(timer_id)
            return
        self.fired += 1
        if after is not None:
            after()

    def _retry_later(self, timer_id: int) -> None:
        scheduler = self._scheduler
        if scheduler is not None:
            retry_at = datetime.now(UTC).timestamp() + 5
            scheduler.add_job(
                self._fire, DateTrigger(run_date=datetime.fromtimestamp(retry_at, UTC), timezone=UTC),
                args=[timer_id], id=f"timer-{timer_id}", replace_existing=True,
            )
