"""Tickets as operators read them: newest-first summaries, and one ticket with its messages, files and events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mailgate.models import TicketStatus
from mailgate.store import Row, Txn


@dataclass(frozen=True, slots=True)
class TicketSummary:
    """One line of `tickets list`: the ticket, its contact and how many messages it holds."""

    number: int
    subject: str
    status: str
    priority: str
    queue: str | None
    assignee: str | None
    channel: str
    direction: str
    contact: str | None
    contact_address: str | None
    created_at: str
    updated_at: str
    messages: int

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "subject": self.subject, "status": self.status, "priority": self.priority,
                "queue": self.queue, "assignee": self.assignee, "channel": self.channel, "direction": self.direction,
                "contact": self.contact, "contact_address": self.contact_address, "created_at": self.created_at,
                "updated_at": self.updated_at, "messages": self.messages}


@dataclass(frozen=True, slots=True)
class AttachmentView:
    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool

    def to_json(self) -> dict[str, Any]:
        return {"filename": self.filename, "content_type": self.content_type, "size": self.size,
                "sha256": self.sha256, "inline": self.inline}


@dataclass(frozen=True, slots=True)
class MessageView:
    """One stored message of the ticket as `tickets show` prints it (the text itself stays out)."""

    id: int
    direction: str
    message_id: str
    from_name: str
    from_address: str
    date: str | None
    received_at: str
    subject: str
    kind: str
    imported: bool
    thread_rule: str
    thread_detail: str
    reply_text: str | None
    attachments: tuple[AttachmentView, ...]
    unproven_agent: str | None = None  # the From names this agent, but the mail did not prove it

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "direction": self.direction, "message_id": self.message_id,
                "from": {"name": self.from_name, "address": self.from_address}, "unproven_agent": self.unproven_agent,
                "date": self.date,
                "received_at": self.received_at, "subject": self.subject, "kind": self.kind,
                "imported": self.imported, "thread_rule": self.thread_rule, "thread_detail": self.thread_detail,
                "reply_text": self.reply_text, "attachments": [a.to_json() for a in self.attachments]}


@dataclass(frozen=True, slots=True)
class EventView:
    at: str
    actor: str
    kind: str
    data: Any  # the stored JSON, decoded

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "actor": self.actor, "kind": self.kind, "data": self.data}


@dataclass(frozen=True, slots=True)
class TicketDetail:
    """A ticket with its parties, messages in order (with attachments) and event log."""

    id: int
    summary: TicketSummary
    parties: tuple[tuple[str, str], ...]  # (address, role)
    messages: tuple[MessageView, ...]
    events: tuple[EventView, ...]

    def to_json(self) -> dict[str, Any]:
        """As `tickets show --json` prints it (the routing, read elsewhere, goes in before the events)."""
        return {**self.summary.to_json(), "parties": [{"address": a, "role": r} for a, r in self.parties],
                "messages": [m.to_json() for m in self.messages], "events": [e.to_json() for e in self.events]}


def _summary(row: Row) -> TicketSummary:
    return TicketSummary(
        number=row["number"], subject=row["subject"], status=row["status"], priority=row["priority"],
        queue=row["queue"], assignee=row["assignee"], channel=row["channel"], direction=row["direction"],
        contact=row["contact_name"] or None, contact_address=row["contact_address"], created_at=row["created_at"],
        updated_at=row["updated_at"], messages=row["message_count"],
    )


_TICKET_SELECT = (
    "SELECT t.*, c.name AS contact_name,"
    " (SELECT address FROM contact_addresses a WHERE a.contact_id = t.contact_id ORDER BY created_at LIMIT 1)"
    " AS contact_address,"
    " (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id AND m.deleted_at IS NULL) AS message_count"
    " FROM tickets t LEFT JOIN contacts c ON c.id = t.contact_id"
)


async def summaries(
    tx: Txn, *, limit: int = 50, status: str | None = None, quarantined: bool = False
) -> list[TicketSummary]:
    """Newest activity first; quarantined tickets only when asked for (then only those); deleted ones only by status."""
    conditions: list[str] = ["t.quarantined = ?"]
    params: list[object] = [int(quarantined)]
    if status:
        conditions.append("t.status = ?")
        params.append(status)
    else:
        conditions.append(f"t.status != '{TicketStatus.DELETED}'")
    where = "WHERE " + " AND ".join(conditions)
    rows = await tx.all(f"{_TICKET_SELECT} {where} ORDER BY t.updated_at DESC, t.id DESC LIMIT ?", [*params, limit])
    return [_summary(r) for r in rows]


async def detail(tx: Txn, number: int) -> TicketDetail | None:
    """A ticket with its messages in order (deleted ones left out), attachments and event log."""
    row = await tx.one(f"{_TICKET_SELECT} WHERE t.number = ?", (number,))
    if row is None:
        return None
    ticket_id = int(row["id"])
    parties = await tx.all(
        "SELECT address, role FROM ticket_parties WHERE ticket_id = ? ORDER BY role DESC, address", (ticket_id,))
    messages = []
    # In the order things happened: a sent mail's row is written when its batch is recorded, which
    # may come after mail that arrived meanwhile, but its time is when the relay took it.
    for m in await tx.all("SELECT * FROM messages WHERE ticket_id = ? AND deleted_at IS NULL ORDER BY created_at, id",
                          (ticket_id,)):
        attachments = await tx.all(
            "SELECT filename, content_type, size, sha256, inline FROM attachments WHERE message_row = ? ORDER BY id",
            (m["id"],),
        )
        messages.append(MessageView(
            id=m["id"], direction=m["direction"], message_id=m["message_id"], from_name=m["from_name"],
            from_address=m["from_address"], date=m["sent_at"], received_at=m["created_at"], subject=m["subject"],
            kind=m["kind"], imported=bool(m["imported"]), thread_rule=m["thread_rule"],
            thread_detail=m["thread_detail"], reply_text=m["reply_text"], unproven_agent=m["unproven_agent"],
            attachments=tuple(AttachmentView(a["filename"], a["content_type"], a["size"], a["sha256"],
                                             bool(a["inline"])) for a in attachments),
        ))
    events = await tx.all("SELECT at, actor, kind, data FROM events WHERE ticket_id = ? ORDER BY id", (ticket_id,))
    return TicketDetail(
        id=ticket_id, summary=_summary(row), parties=tuple((p["address"], p["role"]) for p in parties),
        messages=tuple(messages),
        events=tuple(EventView(e["at"], e["actor"], e["kind"], json.loads(e["data"])) for e in events),
    )
