"""Marks on stored messages: mail in an agent's name without proof, and messages deleted from a thread."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.store import Txn


@dataclass(frozen=True, slots=True)
class Deletable:
    """A message an agent may delete: its ticket, and whether it is deleted already."""

    id: int
    ticket_id: int
    direction: str
    deleted_at: str | None


async def mark_unproven(tx: Txn, row: int, agent_id: str) -> None:
    """The message's From names this agent, but the mail did not prove it: a person reading it must know."""
    await tx.execute("UPDATE messages SET unproven_agent = ? WHERE id = ?", (agent_id, row))


async def unproven_agent(tx: Txn, row: int) -> str | None:
    """The agent a message claimed to be from without proof, or None."""
    value = await tx.value("SELECT unproven_agent FROM messages WHERE id = ?", (row,))
    return None if value is None else str(value)


async def deletable(tx: Txn, row: int) -> Deletable | None:
    found = await tx.one("SELECT id, ticket_id, direction, deleted_at FROM messages WHERE id = ?", (row,))
    if found is None:
        return None
    return Deletable(int(found["id"]), int(found["ticket_id"]), found["direction"], found["deleted_at"])


async def delete(tx: Txn, row: int, agent_id: str) -> None:
    """Hidden from the thread from now on; the row and its files stay until retention."""
    await tx.execute("UPDATE messages SET deleted_at = ?, deleted_by = ? WHERE id = ? AND deleted_at IS NULL",
                     (tx.now_iso(), agent_id, row))


async def deleted_before(tx: Txn, cutoff: str, limit: int) -> list[int]:
    """Message rows deleted before the cutoff (retention removes them), oldest first."""
    rows = await tx.all("SELECT id FROM messages WHERE deleted_at IS NOT NULL AND deleted_at < ? ORDER BY id LIMIT ?",
                        (cutoff, limit))
    return [int(r["id"]) for r in rows]


async def count_deleted(tx: Txn, ticket_id: int) -> int:
    """How many of the ticket's messages are deleted (hidden)."""
    return int(await tx.value("SELECT COUNT(*) FROM messages WHERE ticket_id = ? AND deleted_at IS NOT NULL",
                              (ticket_id,)) or 0)
