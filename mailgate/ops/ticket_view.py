"""Tickets as operators read them (`mailgate tickets list|show`): summaries, and one ticket with how it was routed."""

from __future__ import annotations

from typing import Any

from mailgate.ops.assign import routing_of
from mailgate.store import Txn, ticket_view


async def list_tickets(
    tx: Txn, *, limit: int = 50, status: str | None = None, quarantined: bool = False
) -> list[dict[str, Any]]:
    """Newest activity first; quarantined tickets only when asked for (then only those)."""
    return [t.to_json() for t in await ticket_view.summaries(tx, limit=limit, status=status, quarantined=quarantined)]


async def show_ticket(tx: Txn, number: int) -> dict[str, Any] | None:
    """A ticket with its messages in order, attachments, routing (category, tags, why this queue) and event log."""
    ticket = await ticket_view.detail(tx, number)
    if ticket is None:
        return None
    shown = ticket.to_json()
    events = shown.pop("events")
    shown.update(await routing_of(tx, ticket.id) or {})
    shown["events"] = events
    return shown
