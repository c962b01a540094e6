"""Where the storm fuse puts held mail: the sender's hour remembers the ticket, a ticket it opened stays hidden."""

from __future__ import annotations

from mailgate.store import Txn


async def remember_ticket(tx: Txn, sender: str, hour: str, ticket_id: int) -> None:
    """The rest of this sender's held mail this hour goes to the same ticket."""
    await tx.execute("UPDATE sender_hours SET ticket_id = ? WHERE sender = ? AND hour = ?", (ticket_id, sender, hour))


async def hide_ticket(tx: Txn, ticket_id: int) -> None:
    """A ticket opened by mail over the cap: quarantined and never acknowledged, like a spam suspect's."""
    await tx.execute("UPDATE tickets SET quarantined = 1, ack_suppressed = 1 WHERE id = ?", (ticket_id,))
