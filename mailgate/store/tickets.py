"""The tickets table."""

from __future__ import annotations

from mailgate.store import Txn


async def survivor(tx: Txn, ticket_id: int) -> int:
    """The ticket a merged one lives on in (merging moves the thread there): its tokens and tag lead there."""
    for _ in range(20):  # merges of merged tickets; a bound, never a loop
        into = await tx.value("SELECT merged_into FROM tickets WHERE id = ?", (ticket_id,))
        if into is None:
            break
        ticket_id = int(into)
    return ticket_id
