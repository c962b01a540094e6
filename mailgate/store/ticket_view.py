"""Tickets as operators read them: newest-first summaries, and one ticket with its messages, files and events."""

from __future__ import annotations

import json
from typing import Any

from mailgate.store import Txn


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


async def summaries(
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


async def detail(tx: Txn, number: int) -> dict[str, Any] | None:
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
    ticket["id"] = row["id"]
    ticket["events"] = [
        {"at": e["at"], "actor": e["actor"], "kind": e["kind"], "data": json.loads(e["data"])}
        for e in await tx.all("SELECT at, actor, kind, data FROM events WHERE ticket_id = ? ORDER BY id", (row["id"],))
    ]
    return ticket
