"""Retention: closed tickets' messages and files, old spool bytes and old outgoing mail deleted in small batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from mailgate.config import Config, RetentionConfig
from mailgate.ops import tickets
from mailgate.store import Store, Txn, timers
from mailgate.store.blobs import BlobStore

log = logging.getLogger("mailgate.retention")

RUN = "retention.run"
EVERY = timedelta(days=1)


def clock() -> datetime:
    """Now, in UTC; the one place tests turn the clock."""
    return datetime.now(UTC)


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
    moment = now or clock()
    purged = Purged()
    blobs = BlobStore(config.attachments_path)
    if settings.closed_after_days is not None:
        await _closed_tickets(store, blobs, settings, _cutoff(moment, settings.closed_after_days), purged, dry_run)
    if settings.spool_after_days is not None:
        purged.spool += await _in_batches(store, _SPOOL, _cutoff(moment, settings.spool_after_days),
                                          settings.batch_size, dry_run)
    if settings.outbox_after_days is not None:
        purged.outbox += await _in_batches(store, _OUTBOX, _cutoff(moment, settings.outbox_after_days),
                                           settings.batch_size, dry_run)
    log.info("retention.run dry_run=%s %s", dry_run, " ".join(f"{k}={v}" for k, v in purged.as_dict().items()))
    return purged


# A ticket closed (status 'closed') and untouched since the cutoff: updated_at moves with every change,
# so a ticket someone is still looking at or writing on is never purged under them.
_CLOSED = ("SELECT id FROM tickets t WHERE status = 'closed' AND updated_at < ?"
           " AND EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id) ORDER BY id")


async def _closed_tickets(
    store: Store, blobs: BlobStore, settings: RetentionConfig, cutoff: str, purged: Purged, dry_run: bool
) -> None:
    async with store.read() as tx:
        ticket_ids = [r["id"] for r in await tx.all(_CLOSED, (cutoff,))]
    for ticket_id in ticket_ids:
        if dry_run:
            async with store.read() as tx:
                purged.messages += int(await tx.value("SELECT COUNT(*) FROM messages WHERE ticket_id = ?", (ticket_id,)))
                purged.attachments += int(await tx.value(
                    "SELECT COUNT(*) FROM attachments a JOIN messages m ON m.id = a.message_row WHERE m.ticket_id = ?",
                    (ticket_id,)))
            purged.tickets += 1
            continue
        count = 0
        while True:
            async with store.txn() as tx:
                # Still closed and untouched: a reply may have reopened it since the list was read.
                if await tx.value("SELECT 1 FROM tickets WHERE id = ? AND status = 'closed' AND updated_at < ?",
                                  (ticket_id, cutoff)) is None:
                    break
                rows = await tx.all("SELECT id FROM messages WHERE ticket_id = ? ORDER BY id LIMIT ?",
                                    (ticket_id, settings.batch_size))
                if not rows:
                    break
                ids = [r["id"] for r in rows]
                gone, hashes = await delete_messages(tx, ids)
                purged.attachments += gone
                count += len(ids)
                unreferenced = await drop_unreferenced_blobs(tx, hashes)
            purged.files += await asyncio.to_thread(unlink_blobs, blobs, unreferenced)
        if count:
            async with store.txn() as tx:
                await tickets.event(tx, ticket_id, "system", "retention.purged",
                                    {"messages": count, "text": f"purged {count} messages"})
            purged.tickets += 1
            purged.messages += count


def _marks(values: Iterable[object]) -> str:
    return ",".join("?" for _ in values)


async def delete_messages(tx: Txn, ids: list[int]) -> tuple[int, set[str]]:
    """Delete message rows with their attachment rows and spool rows; (attachments deleted, their sha256s)."""
    marks = _marks(ids)
    hashes = {r["sha256"] for r in await tx.all(f"SELECT sha256 FROM attachments WHERE message_row IN ({marks})", ids)}
    gone = await tx.rowcount(f"DELETE FROM attachments WHERE message_row IN ({marks})", ids)
    spool_ids = [r["spool_id"] for r in await tx.all(
        f"SELECT spool_id FROM messages WHERE id IN ({marks}) AND spool_id IS NOT NULL", ids)]
    # spool and messages point at each other; both links are cut before either row goes.
    await tx.execute(f"UPDATE spool SET message_row = NULL WHERE message_row IN ({marks})", ids)
    await tx.execute(f"UPDATE outbox SET message_row = NULL WHERE message_row IN ({marks})", ids)
    await tx.execute(f"UPDATE messages SET spool_id = NULL WHERE id IN ({marks})", ids)
    await tx.execute(f"DELETE FROM messages WHERE id IN ({marks})", ids)
    if spool_ids:
        # A dead row is the operator's to look at, never purged with its ticket.
        await tx.execute(f"DELETE FROM spool WHERE state != 'dead' AND id IN ({_marks(spool_ids)})", spool_ids)
    return gone, hashes


async def drop_unreferenced_blobs(tx: Txn, hashes: Iterable[str]) -> list[str]:
    """The blob rows of these hashes that no attachment names any more, deleted; their hashes returned."""
    dropped = []
    for sha256 in sorted(hashes):
        if await tx.value("SELECT 1 FROM attachments WHERE sha256 = ? LIMIT 1", (sha256,)) is None:
            await tx.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
            dropped.append(sha256)
    return dropped


def unlink_blobs(blobs: BlobStore, hashes: Iterable[str]) -> int:
    """Remove the files of blobs no row references (after the commit that dropped them); count removed."""
    removed = 0
    for sha256 in hashes:
        try:
            blobs.path(sha256).unlink()
            removed += 1
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:  # one file that cannot go must not stop the rest
            log.warning("retention.unlink_failed sha256=%s error=%s", sha256, exc)
    return removed


# Processed mail only: 'received' is not parsed yet and 'dead' waits for the operator (requeue, replay).
# The row and its sha256 stay (dedupe, message links); only the wire bytes go.
_SPOOL = ("spool", "state IN ('done', 'duplicate') AND received_at < ? AND length(raw) > 0", "UPDATE spool SET raw = X''")
_OUTBOX = ("outbox", "state IN ('sent', 'cancelled', 'failed') AND created_at < ?", "DELETE FROM outbox")


async def _in_batches(store: Store, target: tuple[str, str, str], cutoff: str, batch: int, dry_run: bool) -> int:
    """The rows of a table older than cutoff: counted (dry run), or changed batch_size at a time,
    each batch its own short transaction so intake never waits long."""
    table, where, change = target
    if dry_run:
        async with store.read() as tx:
            return int(await tx.value(f"SELECT COUNT(*) FROM {table} WHERE {where}", (cutoff,)))
    total = 0
    while True:
        async with store.txn() as tx:
            done = await tx.rowcount(
                f"{change} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT ?)", (cutoff, batch))
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
            await timers.add(tx, RUN, 0, clock() + EVERY)

    def after() -> None:
        task = asyncio.get_running_loop().create_task(_run_logged(store, current_config()), name="retention")
        running.add(task)
        task.add_done_callback(running.discard)

    registry.register(RUN, due, after)
    if not enabled(current_config().retention):
        return
    try:
        async with store.txn() as tx:
            if await tx.value("SELECT 1 FROM timers WHERE kind = ? AND dead_at IS NULL", (RUN,)) is None:
                await timers.add(tx, RUN, 0, clock() + timedelta(minutes=5))
    except Exception as exc:  # the daemon starts anyway; the next start books it
        log.error("retention.schedule_failed error=%s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])


async def _run_logged(store: Store, config: Config) -> None:
    try:
        await run(store, config)
    except Exception as exc:  # the next day's run tries again
        log.error("retention.failed error=%s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
