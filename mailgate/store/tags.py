"""The ticket_tags table: the words agents and rules hang on a ticket."""

from __future__ import annotations

from collections.abc import Sequence

from mailgate.store import Txn


async def add(tx: Txn, ticket_id: int, tags: Sequence[str]) -> None:
    await tx.executemany("INSERT INTO ticket_tags (ticket_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
                         [(ticket_id, t) for t in tags])


async def remove(tx: Txn, ticket_id: int, tags: Sequence[str]) -> None:
    await tx.executemany("DELETE FROM ticket_tags WHERE ticket_id = ? AND tag = ?", [(ticket_id, t) for t in tags])


async def of_ticket(tx: Txn, ticket_id: int) -> list[str]:
    return [r["tag"] for r in await tx.all("SELECT tag FROM ticket_tags WHERE ticket_id = ? ORDER BY tag", (ticket_id,))]


async def move_all(tx: Txn, from_ticket: int, to_ticket: int) -> None:
    """Every tag of one ticket onto another (a merge)."""
    await tx.execute("INSERT INTO ticket_tags (ticket_id, tag) SELECT ?, tag FROM ticket_tags"
                     " WHERE ticket_id = ? ON CONFLICT DO NOTHING", (to_ticket, from_ticket))
    await tx.execute("DELETE FROM ticket_tags WHERE ticket_id = ?", (from_ticket,))
