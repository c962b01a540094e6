"""What outgoing mail needs to know of a ticket: its facts, who follows it, the newest inbound mail."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mailgate.store import Txn


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """The ticket's columns outgoing mail uses, with its contact's and its thread's."""

    id: int
    number: int
    subject: str
    status: str
    priority: str
    assignee: str | None
    queue: str | None
    customer_name: str
    customer_address: str
    contact_language: str | None
    ack_suppressed: bool
    quarantined: bool
    detected_language: str | None
    references: tuple[str, ...]  # the ticket's Message-IDs in and out, oldest first
    inbound: tuple[str, ...]  # those of customer mail, oldest first
    written_to: tuple[tuple[str, ...], ...]  # each stored inbound mail's envelope recipients


async def facts(tx: Txn, ticket_id: int) -> TicketFacts | None:
    row = await tx.one("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
    if row is None:
        return None
    contact_id = row["contact_id"]
    contact = await tx.one("SELECT name, language FROM contacts WHERE id = ?", (contact_id,)) if contact_id else None
    customer = await tx.value(
        "SELECT address FROM ticket_parties WHERE ticket_id = ? AND role = 'requester' ORDER BY address LIMIT 1",
        (ticket_id,),
    )
    if not customer and contact_id:
        customer = await tx.value(
            "SELECT address FROM contact_addresses WHERE contact_id = ? ORDER BY created_at LIMIT 1", (contact_id,)
        )
    messages = await tx.all(
        "SELECT m.message_id, m.direction, s.rcpt_to FROM messages m LEFT JOIN spool s ON s.id = m.spool_id"
        " WHERE m.ticket_id = ? AND m.direction IN ('in', 'out') ORDER BY m.id", (ticket_id,)
    )
    return TicketFacts(
        id=ticket_id, number=row["number"], subject=row["subject"], status=row["status"], priority=row["priority"],
        assignee=row["assignee"], queue=row["queue"], customer_name=(contact["name"] if contact else "") or "",
        customer_address=customer or "", contact_language=contact["language"] if contact is not None else None,
        ack_suppressed=bool(row["ack_suppressed"]), quarantined=bool(row["quarantined"]),
        detected_language=row["detected_language"],
        references=tuple(m["message_id"] for m in messages),
        inbound=tuple(m["message_id"] for m in messages if m["direction"] == "in"),
        written_to=tuple(_recipients(m["rcpt_to"]) for m in messages),
    )


def _recipients(stored: str | None) -> tuple[str, ...]:
    try:
        found = json.loads(stored) if stored else []
    except ValueError:
        return ()
    return tuple(str(r) for r in found) if isinstance(found, list) else ()


async def cc_parties(tx: Txn, ticket_id: int) -> list[str]:
    rows = await tx.all("SELECT address FROM ticket_parties WHERE ticket_id = ? AND role = 'cc' ORDER BY address",
                        (ticket_id,))
    return [str(r["address"]) for r in rows]


async def newest_inbound_row(tx: Txn, ticket_id: int) -> int | None:
    value = await tx.value(
        "SELECT id FROM messages WHERE ticket_id = ? AND direction = 'in' ORDER BY id DESC LIMIT 1", (ticket_id,)
    )
    return int(value) if value is not None else None


async def wire_of(tx: Txn, message_id: str) -> bytes:
    """The spooled bytes of the newest stored message with this Message-ID (b"" when none)."""
    raw = await tx.value(
        "SELECT s.raw FROM messages m JOIN spool s ON s.id = m.spool_id WHERE m.message_id = ?"
        " ORDER BY m.id DESC LIMIT 1", (message_id,),
    )
    return bytes(raw or b"")
