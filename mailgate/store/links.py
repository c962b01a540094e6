"""The ticket_links table: tickets that follow up, were split off or were merged into others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailgate.store import Txn


async def add(tx: Txn, ticket_id: int, other_id: int, kind: str) -> None:
    """Link ticket_id to other_id (once per kind)."""
    await tx.execute("INSERT INTO ticket_links (ticket_id, other_id, kind, created_at) VALUES (?, ?, ?, ?)"
                     " ON CONFLICT DO NOTHING",
                     (ticket_id, other_id, kind, tx.now_iso()))


async def latest_to(tx: Txn, other_id: int, kind: str) -> int | None:
    """The newest ticket linked to other_id by this kind (its latest follow-up)."""
    value = await tx.value("SELECT ticket_id FROM ticket_links WHERE other_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                           (other_id, kind))
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class Link:
    """A ticket linked to the one asked about: which way, how, and the other ticket's headline."""

    kind: str
    created_at: str
    way: str  # "follows" (this ticket points at it) or "followed-by"
    number: int
    status: str
    subject: str

    def to_json(self) -> dict[str, Any]:
        """As `tickets links --json` prints it."""
        return {"kind": self.kind, "created_at": self.created_at, "way": self.way, "number": self.number,
                "status": self.status, "subject": self.subject}


async def of_ticket(tx: Txn, ticket_id: int) -> list[Link]:
    """The tickets linked to this one, both ways, oldest link first."""
    rows = await tx.all(
        "SELECT l.kind, l.created_at, 'follows' AS way, t.number, t.status, t.subject FROM ticket_links l"
        " JOIN tickets t ON t.id = l.other_id WHERE l.ticket_id = ?"
        " UNION ALL SELECT l.kind, l.created_at, 'followed-by', t.number, t.status, t.subject FROM ticket_links l"
        " JOIN tickets t ON t.id = l.ticket_id WHERE l.other_id = ? ORDER BY 2",
        (ticket_id, ticket_id),
    )
    return [Link(r["kind"], r["created_at"], r["way"], r["number"], r["status"], r["subject"]) for r in rows]
