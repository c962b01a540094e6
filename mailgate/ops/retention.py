"""Retention: closed tickets' messages and files, old spool bytes and old outgoing mail deleted in small batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from mailgate.config import Config, RetentionConfig
from mailgate.store import Store, Txn, events, message_marks, timers
from mailgate.store import retention as rows
from mailgate.store.blobs import BlobStore, drop_unreferenced, unlink_unreferenced
from mailgate.store.retention import OUTBOX, SPOOL

log = logging.getLogger("mailgate.retention")

RUN = "retention.run"
EVERY = timedelta(days=1)


@dataclass
class Purged:
    """What one run deleted (or, dry, would delete)."""

    tickets: int = 0
    messages: int = 0
    attachments: int = 0
    files: int = 0
    spool: int = 0
    outbox: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def enabled(settings: RetentionConfig) -> bool:
    return any(v is not None for v in (settings.closed_after_days, settings.spool_after_days, settings.outbox_after_days))


def _cutoff(now: datetime, days: float) -> str:
    return timers.iso(now - timedelta(days=days))


async def run(store: Store, config: Config, *, now: datetime | None = None, dry_run: bool = False) -> Purged:
    """Apply every [retention] limit once; each batch is its own short transaction, so intake goes on."""
    settings = config.retention
    moment = now or store.clock.now()
    purged = Purged()
    blobs = BlobStore(config.attachments_path)
    if settings.closed_after_days is not None:
        await _closed_tickets(store, blobs, settings, _cutoff(moment, settings.closed_after_days), purged, dry_run)
        await _deleted_messages(store, blobs, settings, _cutoff(moment, settings.closed_after_days), purged, dry_run)
    if settings.spool_after_days is not None:
        purged.spool += await _in_batches(store, SPOOL, _cutoff(moment, settings.spool_after_days),
                                          settings.batch_size, dry_run)
    if settings.outbox_after_days is not None:
        purged.outbox += await _in_batches(store, OUTBOX, _cutoff(moment, settings.outbox_after_days),
                                           settings.batch_size, dry_run)
    log.info("retention.run dry_run=%s %s", dry_run, " ".join(f"{k}={v}" for k, v in purged.as_dict().items()))
    return purged


async def _closed_tickets(
    store: Store, blobs: BlobStore, settings: RetentionConfig, cutoff: str, purged: Purged, dry_run: bool
) -> None:
    async with store.read() as tx:
        ticket_ids = await rows.closed_before(tx, cutoff)
    for ticket_id in ticket_ids:
        if dry_run:
            async with store.read() as tx:
                purged.messages += await rows.count_messages(tx, ticket_id)
                purged.attachments += await rows.count_attachments(tx, ticket_id)
            purged.tickets += 1
            continue
        count = 0
        while True:
            async with store.txn() as tx:
                if not await rows.still_closed_before(tx, ticket_id, cutoff):
                    break
                ids = await rows.first_messages(tx, ticket_id, settings.batch_size)
                if not ids:
                    break
                gone, hashes = await rows.delete_messages(tx, ids)
                purged.attachments += gone
                count += len(ids)
                unreferenced = await drop_unreferenced(tx, hashes)
            purged.files += await asyncio.to_thread(unlink_unreferenced, blobs, unreferenced)
        if count:
            async with store.txn() as tx:
                await events.add(tx, ticket_id, "system", "retention.purged",
                                    {"messages": count, "text": f"purged {count} messages"})
            purged.tickets += 1
            purged.messages += count


async def _deleted_messages(
    store: Store, blobs: BlobStore, settings: RetentionConfig, cutoff: str, purged: Purged, dry_run: bool
) -> None:
    """Single messages an agent deleted from a thread, as long ago as a closed ticket's messages go."""
    while True:
        async with store.txn() as tx:
            ids = await message_marks.deleted_before(tx, cutoff, settings.batch_size)
            if dry_run or not ids:
                purged.messages += len(ids)
                return
            gone, hashes = await rows.delete_messages(tx, ids)
            unreferenced = await drop_unreferenced(tx, hashes)
        purged.messages += len(ids)
        purged.attachments += gone
        purged.files += await asyncio.to_thread(unlink_unreferenced, blobs, unreferenced)


async def _in_batches(store: Store, table: str, cutoff: str, batch: int, dry_run: bool) -> int:
    """The rows of a table older than cutoff: counted (dry run), or changed batch_size at a time,
    each batch its own short transaction so intake never waits long."""
    if dry_run:
        async with store.read() as tx:
            return await rows.count_aged(tx, table, cutoff)
    total = 0
    while True:
        async with store.txn() as tx:
            done = await rows.purge_aged(tx, table, cutoff, batch)
        total += done
        if done < batch:
            return total


# -- the daily timer -------------------------------------------------------------------------------


async def start(registry: timers.Registry, store: Store, current_config: Callable[[], Config]) -> None:
    """Register the daily run and, when any limit is set, make sure one timer row waits for it.

    The run itself cannot happen inside the timer's transaction (it takes many short ones of its
    own), so the handler only books the next day and the run follows once that committed.
    """
    running: set[asyncio.Task[None]] = set()

    async def due(tx: Txn, timer: timers.Timer) -> None:
        if enabled(current_config().retention):
            await timers.add(tx, RUN, 0, tx.now() + EVERY)

    def after() -> None:
        task = asyncio.get_running_loop().create_task(_run_logged(store, current_config()), name="retention")
        running.add(task)
        task.add_done_callback(running.discard)

    registry.register(RUN, due, after)
    if not enabled(current_config().retention):
        return
    try:
        async with store.txn() as tx:
            if not await rows.run_booked(tx, RUN):
                await timers.add(tx, RUN, 0, tx.now() + timedelta(minutes=5))
    except Exception as exc:  # the daemon starts anyway; the next start books it
        log.error("retention.schedule_failed error=%s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])


async def _run_logged(store: Store, config: Config) -> None:
    try:
        await run(store, config)
    except Exception as exc:  # the next day's run tries again
        log.error("retention.failed error=%s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
