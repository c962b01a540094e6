"""What retention deletes: closed tickets' messages, processed spool bytes, finished outgoing mail."""

from __future__ import annotations

from collections.abc import Sequence

from mailgate.models import TicketStatus
from mailgate.store import Txn


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" for _ in values)


# A ticket closed and untouched since the cutoff: updated_at moves with every change, so a ticket
# someone is still looking at or writing on is never purged under them.
async def closed_before(tx: Txn, cutoff: str) -> list[int]:
    """Closed tickets untouched since the cutoff that still hold messages, oldest first."""
    rows = await tx.all(
        "SELECT id FROM tickets t WHERE status = ? AND updated_at < ?"
        " AND EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id) ORDER BY id",
        (TicketStatus.CLOSED, cutoff),
    )
    return [r["id"] for r in rows]


async def still_closed_before(tx: Txn, ticket_id: int, cutoff: str) -> bool:
    """Still closed and untouched: a reply may have reopened it since the list was read."""
    return await tx.value("SELECT 1 FROM tickets WHERE id = ? AND status = ? AND updated_at < ?",
                          (ticket_id, TicketStatus.CLOSED, cutoff)) is not None


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


SPOOL = "spool"
OUTBOX = "outbox"
# table: (which rows are old enough, what happens to them). Processed spool mail only: 'received'
# is not parsed yet and 'dead' waits for the operator (requeue, replay); the row and its sha256
# stay (dedupe, message links), only the wire bytes go.
_AGED = {
    SPOOL: ("state IN ('done', 'duplicate') AND received_at < ? AND length(raw) > 0", "UPDATE spool SET raw = X''"),
    OUTBOX: ("state IN ('sent', 'cancelled', 'failed') AND created_at < ?", "DELETE FROM outbox"),
}


async def count_aged(tx: Txn, table: str, cutoff: str) -> int:
    """Rows of SPOOL or OUTBOX that retention would treat, older than cutoff."""
    where, _ = _AGED[table]
    return int(await tx.value(f"SELECT COUNT(*) FROM {table} WHERE {where}", (cutoff,)))


async def purge_aged(tx: Txn, table: str, cutoff: str, batch: int) -> int:
    """Treat at most `batch` aged rows of SPOOL or OUTBOX; how many were."""
    where, change = _AGED[table]
    return await tx.rowcount(f"{change} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT ?)", (cutoff, batch))


async def run_booked(tx: Txn, kind: str) -> bool:
    """Whether a live timer of this kind waits (the daily run is booked once)."""
    return await tx.value("SELECT 1 FROM timers WHERE kind = ? AND dead_at IS NULL", (kind,)) is not None
