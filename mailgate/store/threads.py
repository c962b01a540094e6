"""What threading reads: Message-IDs already seen, a tagged ticket, a sender's part in a ticket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.store import Txn
from mailgate.store.spool import CHUNK


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A stored message with the same Message-ID and body: the mail came twice."""

    message_row: int
    ticket_number: int


@dataclass(frozen=True, slots=True)
class Tagged:
    """The ticket a subject tag names, with its contact (whose addresses may use the tag)."""

    id: int
    contact_id: int | None


async def duplicate(tx: Txn, message_id: str, content_key: str) -> Duplicate | None:
    """The message this mail repeats, if one is stored (a resend, or the same mail by two routes)."""
    row = await tx.one(
        "SELECT m.id, t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id"
        " WHERE m.message_id = ? AND m.content_key = ?",
        (message_id, content_key),
    )
    return None if row is None else Duplicate(int(row["id"]), int(row["number"]))


async def claim(tx: Txn, spool_id: int, message_id: str, content_key: str) -> tuple[str | None, Duplicate | None]:
    """The spool row's state now (None: gone), and the stored message this mail repeats: one statement."""
    row = await tx.one(
        "SELECT s.state, d.id, d.number FROM spool s LEFT JOIN (SELECT m.id, t.number FROM messages m"
        " JOIN tickets t ON t.id = m.ticket_id WHERE m.message_id = ? AND m.content_key = ? LIMIT 1) d ON 1 = 1"
        " WHERE s.id = ?",
        (message_id, content_key, spool_id),
    )
    if row is None:
        return None, None
    found = None if row["id"] is None else Duplicate(int(row["id"]), int(row["number"]))
    return str(row["state"]), found


async def tickets_of_message_ids(tx: Txn, message_ids: Sequence[str]) -> dict[str, int]:
    """Message-ID → ticket id, for those of the given IDs that a stored or sent message had."""
    found: dict[str, int] = {}
    for start in range(0, len(message_ids), CHUNK):
        chunk = list(message_ids[start : start + CHUNK])
        marks = ",".join("?" * len(chunk))
        for row in await tx.all(f"SELECT message_id, ticket_id FROM message_ids WHERE message_id IN ({marks})", chunk):
            found[row["message_id"]] = int(row["ticket_id"])
    return found


async def tagged(tx: Txn, number: int) -> Tagged | None:
    row = await tx.one("SELECT id, contact_id FROM tickets WHERE number = ?", (number,))
    return None if row is None else Tagged(int(row["id"]), row["contact_id"])


async def takes_part(tx: Txn, ticket: Tagged, address: str) -> bool:
    """The address is a party of the ticket (not one still pending an agent's word) or its contact's."""
    found = await tx.value(
        "SELECT 1 FROM ticket_parties WHERE ticket_id = ? AND address = ? AND role != 'pending'"
        " UNION ALL SELECT 1 FROM contact_addresses WHERE contact_id = ? AND address = ? LIMIT 1",
        (ticket.id, address, ticket.contact_id, address),
    )
    return bool(found)


async def message_count(tx: Txn) -> int:
    """Every message row (inbound, outbound, notes): what a replay reports it rebuilt."""
    return int(await tx.value("SELECT COUNT(*) FROM messages"))
