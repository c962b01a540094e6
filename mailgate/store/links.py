"""The ticket_links table: tickets that follow up, were split off or were merged into others."""

from __future__ import annotations

from typing import Any

from mailgate.store import Txn


async def add(tx: Txn, ticket_id: int, other_id: int, kind: str) -> None:
    """Link ticket_id to other_id (once per kind)."""
    await tx.execute("INSERT OR IGNORE INTO ticket_links (ticket_id, other_id, kind, created_at) VALUES (?, ?, ?, ?)",
                     (ticket_id, other_id, kind, tx.now_iso()))


async def latest_to(tx: Txn, other_id: int, kind: str) -> int | None:
    """The newest ticket linked to other_id by this kind (its latest follow-up)."""
    value = await tx.value("SELECT ticket_id FROM ticket_links WHERE other_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                           (other_id, kind))
    return None if value is None else int(value)


async def of_ticket(tx: Txn, ticket_id: int) -> list[dict[str, Any]]:
    """The tickets linked to this one, both ways, oldest link first."""
    rows = await tx.all(
        "SELECT l.kind, l.created_at, 'follows' AS way, t.number, t.status, t.subject FROM ticket_links l"
        " JOIN tickets t ON t.id = l.other_id WHERE l.ticket_id = ?"
        " UNION ALL SELECT l.kind, l.created_at, 'followed-by', t.number, t.status, t.subject FROM ticket_links l"
        " JOIN tickets t ON t.id = l.ticket_id WHERE l.other_id = ? ORDER BY 2",
        (ticket_id, ticket_id),
    )
    return [dict(r) for r in rows]
