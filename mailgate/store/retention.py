"""What retention deletes: closed tickets' messages, processed spool bytes, finished outgoing mail."""

from __future__ import annotations

from collections.abc import Sequence

from mailgate.models import TicketStatus
from mailgate.store import Txn, messages, outbox, spool


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" for _ in values)


# A ticket closed (or deleted) and untouched since the cutoff: updated_at moves with every change,
# so a ticket someone is still looking at or writing on (or restored) is never purged under them.
_GONE = (TicketStatus.CLOSED, TicketStatus.DELETED)


async def closed_before(tx: Txn, cutoff: str) -> list[int]:
    """Closed or deleted tickets untouched since the cutoff that still hold messages, oldest first."""
    rows = await tx.all(
        "SELECT id FROM tickets t WHERE status IN (?, ?) AND updated_at < ?"
        " AND EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id) ORDER BY id",
        (*_GONE, cutoff),
    )
    return [r["id"] for r in rows]


async def still_closed_before(tx: Txn, ticket_id: int, cutoff: str) -> bool:
    """Still closed (or deleted) and untouched: a reply may have reopened it since the list was read."""
    return await tx.value("SELECT 1 FROM tickets WHERE id = ? AND status IN (?, ?) AND updated_at < ?",
                          (ticket_id, *_GONE, cutoff)) is not None


async def count_messages(tx: Txn, ticket_id: int) -> int:
    return int(await tx.value("SELECT COUNT(*) FROM messages WHERE ticket_id = ?", (ticket_id,)))


async def count_attachments(tx: Txn, ticket_id: int) -> int:
    return int(await tx.value(
        "SELECT COUNT(*) FROM attachments a JOIN messages m ON m.id = a.message_row WHERE m.ticket_id = ?",
        (ticket_id,)))


async def first_messages(tx: Txn, ticket_id: int, limit: int) -> list[int]:
    """The oldest `limit` message rows of a ticket."""
    rows = await tx.all("SELECT id FROM messages WHERE ticket_id = ? ORDER BY id LIMIT ?", (ticket_id, limit))
    return [r["id"] for r in rows]


async def delete_messages(tx: Txn, ids: Sequence[int]) -> tuple[int, set[str]]:
    """Delete message rows with their attachment rows and spool rows; (attachments deleted, their sha256s)."""
    gone, hashes = await messages.drop_attachments(tx, ids)
    spool_ids = await messages.spool_rows_of(tx, ids)
    # spool and messages point at each other; both links are cut before either row goes.
    await spool.unlink_messages(tx, ids)
    await outbox.unlink_messages(tx, ids)
    await messages.delete(tx, ids)
    await spool.delete_processed(tx, spool_ids)
    return gone, set(hashes)


SPOOL = "spool"
OUTBOX = "outbox"
# table: which rows are old enough (spool: only the bytes of processed mail go; outbox: finished rows).
_AGED = {SPOOL: spool.AGED, OUTBOX: outbox.AGED}


async def count_aged(tx: Txn, table: str, cutoff: str) -> int:
    """Rows of SPOOL or OUTBOX that retention would treat, older than cutoff."""
    return int(await tx.value(f"SELECT COUNT(*) FROM {table} WHERE {_AGED[table]}", (cutoff,)))


async def purge_aged(tx: Txn, table: str, cutoff: str, batch: int) -> int:
    """Treat at most `batch` aged rows of SPOOL or OUTBOX; how many were."""
    if table == SPOOL:
        return await spool.blank_aged(tx, cutoff, batch)
    return await outbox.delete_aged(tx, cutoff, batch)


async def run_booked(tx: Txn, kind: str) -> bool:
    """Whether a live timer of this kind waits (the daily run is booked once)."""
    return await tx.value("SELECT 1 FROM timers WHERE kind = ? AND dead_at IS NULL", (kind,)) is not None
