"""Ticket domain operations inside a transaction: open, add a message, know its parties, log events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mailgate.models import Address, ParsedMail, ThreadRule
from mailgate.store import Txn, messages, now_iso


@dataclass(frozen=True, slots=True)
class TicketRef:
    id: int
    number: int


async def event(tx: Txn, ticket_id: int, actor: str, kind: str, data: dict[str, Any] | None = None) -> None:
    """Record one change to a ticket; every change writes one."""
    await tx.execute(
        "INSERT INTO events (ticket_id, at, actor, kind, data) VALUES (?, ?, ?, ?, ?)",
        (ticket_id, now_iso(), actor, kind, json.dumps(data or {}, ensure_ascii=False, default=str)),
    )


async def contact_for(tx: Txn, address: Address) -> int:
    """The contact owning an address; an unknown sender becomes a new contact."""
    key = address.address.lower()
    contact_id = await tx.value("SELECT contact_id FROM contact_addresses WHERE address = ?", (key,))
    if contact_id is not None:
        if address.name:
            await tx.execute(
                "UPDATE contacts SET name = ? WHERE id = ? AND name = ''", (address.name, contact_id)
            )
        return int(contact_id)
    now = now_iso()
    contact_id = await tx.execute("INSERT INTO contacts (name, created_at) VALUES (?, ?)", (address.name, now))
    await tx.execute(
        "INSERT INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
        (key, contact_id, now),
    )
    return int(contact_id)


async def open_ticket(
    tx: Txn,
    *,
    subject: str,
    contact_id: int | None,
    first_number: int,
    actor: str,
    channel: str = "email",
    direction: str = "inbound",
) -> TicketRef:
    """A new ticket with the next short human number."""
    number = await tx.value("SELECT MAX(number) FROM tickets")
    number = first_number if number is None else max(int(number) + 1, first_number)
    now = now_iso()
    ticket_id = await tx.execute(
        "INSERT INTO tickets (number, subject, contact_id, channel, direction, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (number, subject or "(no subject)", contact_id, channel, direction, now, now),
    )
    await event(tx, ticket_id, actor, "ticket.created", {"number": number, "subject": subject, "channel": channel})
    return TicketRef(ticket_id, number)


async def add_party(tx: Txn, ticket_id: int, address: str, role: str) -> None:
    await tx.execute(
        "INSERT OR IGNORE INTO ticket_parties (ticket_id, address, role) VALUES (?, ?, ?)",
        (ticket_id, address.lower(), role),
    )


async def latest_requested_by(tx: Txn, address: str) -> int | None:
    """The newest ticket this address opened, if any (where a flood from it is kept, see loops.admit)."""
    value = await tx.value(
        "SELECT ticket_id FROM ticket_parties WHERE address = ? AND role = 'requester' ORDER BY ticket_id DESC LIMIT 1",
        (address.lower(),),
    )
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    sha256: str
    filename: str | None
    content_type: str
    size: int
    inline: bool
    content_id: str | None


async def add_inbound_message(
    tx: Txn,
    ticket_id: int,
    mail: ParsedMail,
    *,
    spool_id: int,
    content_key: str,
    imported: bool,
    rule: ThreadRule,
    detail: str,
    actor: str,
) -> int:
    """Store a parsed inbound message on a ticket, with its Message-ID and attachments."""
    sender = mail.from_[0] if mail.from_ else Address("", "")
    recipients = {
        "to": [a.to_json() for a in mail.to],
        "cc": [a.to_json() for a in mail.cc],
        "reply_to": [a.to_json() for a in mail.reply_to],
    }
    now = now_iso()
    message_row = await messages.insert(tx, messages.NewMessage(
        ticket_id=ticket_id, spool_id=spool_id, direction="in", message_id=mail.message_id,
        content_key=content_key, in_reply_to=mail.in_reply_to, from_name=sender.name,
        from_address=sender.address.lower(), recipients=recipients, subject=mail.subject,
        sent_at=mail.date.isoformat() if mail.date else None, text=mail.text, html=mail.html,
        reply_text=mail.reply_text, kind=str(mail.kind), bounce_of=mail.bounce_of, defects=mail.defects,
        imported=imported, thread_rule=str(rule), thread_detail=detail, created_at=now,
        attachments=mail.attachments,
    ))
    await tx.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (now, ticket_id))
    await event(
        tx,
        ticket_id,
        actor,
        "message.added",
        {
            "message": message_row,
            "message_id": mail.message_id,
            "direction": "in",
            "kind": str(mail.kind),
            "thread_rule": str(rule),
            "thread_detail": detail,
        },
    )
    return message_row


def _ticket_json(row: Any) -> dict[str, Any]:
    return {
        "number": row["number"],
        "subject": row["subject"],
        "status": row["status"],
        "priority": row["priority"],
        "queue": row["queue"],
        "assignee": row["assignee"],
        "channel": row["channel"],
        "direction": row["direction"],
        "contact": row["contact_name"] or None,
        "contact_address": row["contact_address"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "messages": row["message_count"],
    }


_TICKET_SELECT = (
    "SELECT t.*, c.name AS contact_name,"
    " (SELECT address FROM contact_addresses a WHERE a.contact_id = t.contact_id ORDER BY created_at LIMIT 1)"
    " AS contact_address,"
    " (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count"
    " FROM tickets t LEFT JOIN contacts c ON c.id = t.contact_id"
)


async def list_tickets(
    tx: Txn, *, limit: int = 50, status: str | None = None, quarantined: bool = False
) -> list[dict[str, Any]]:
    """Newest activity first; quarantined tickets only when asked for (then only those)."""
    conditions: list[str] = ["t.quarantined = ?"]
    params: list[object] = [int(quarantined)]
    if status:
        conditions.append("t.status = ?")
        params.append(status)
    where = "WHERE " + " AND ".join(conditions)
    rows = await tx.all(f"{_TICKET_SELECT} {where} ORDER BY t.updated_at DESC, t.id DESC LIMIT ?", [*params, limit])
    return [_ticket_json(r) for r in rows]


async def show_ticket(tx: Txn, number: int) -> dict[str, Any] | None:
    """A ticket with its messages in order, attachments and event log."""
    row = await tx.one(f"{_TICKET_SELECT} WHERE t.number = ?", (number,))
    if row is None:
        return None
    ticket = _ticket_json(row)
    ticket["parties"] = [
        {"address": p["address"], "role": p["role"]}
        for p in await tx.all("SELECT address, role FROM ticket_parties WHERE ticket_id = ? ORDER BY role DESC, address", (row["id"],))
    ]
    messages = []
    for m in await tx.all("SELECT * FROM messages WHERE ticket_id = ? ORDER BY id", (row["id"],)):
        attachments = await tx.all(
            "SELECT filename, content_type, size, sha256, inline FROM attachments WHERE message_row = ? ORDER BY id",
            (m["id"],),
        )
        messages.append(
            {
                "id": m["id"],
                "direction": m["direction"],
                "message_id": m["message_id"],
                "from": {"name": m["from_name"], "address": m["from_address"]},
                "date": m["sent_at"],
                "received_at": m["created_at"],
                "subject": m["subject"],
                "kind": m["kind"],
                "imported": bool(m["imported"]),
                "thread_rule": m["thread_rule"],
                "thread_detail": m["thread_detail"],
                "reply_text": m["reply_text"],
                "attachments": [
                    {"filename": a["filename"], "content_type": a["content_type"], "size": a["size"],
                     "sha256": a["sha256"], "inline": bool(a["inline"])}
                    for a in attachments
                ],
            }
        )
    ticket["messages"] = messages
    from mailgate.store.assignment import routing_of

    routing = await routing_of(tx, row["id"])
    ticket.update(routing.to_json() if routing else {})
    ticket["events"] = [
        {"at": e["at"], "actor": e["actor"], "kind": e["kind"], "data": json.loads(e["data"])}
        for e in await tx.all("SELECT at, actor, kind, data FROM events WHERE ticket_id = ? ORDER BY id", (row["id"],))
    ]
    return ticket
