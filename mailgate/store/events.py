"""The events table: one row per change to a ticket, who made it and what it was."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mailgate.store import Txn


async def add(tx: Txn, ticket_id: int, actor: str, kind: str, data: dict[str, Any] | None = None) -> None:
    """Record one change to a ticket; every change writes one."""
    await tx.execute(
        "INSERT INTO events (ticket_id, at, actor, kind, data) VALUES (?, ?, ?, ?, ?)",
        (ticket_id, tx.now_iso(), actor, kind, json.dumps(data or {}, ensure_ascii=False, default=str)),
    )


# One change to a ticket as add_many takes it: (ticket_id, actor, kind, data).
Event = tuple[int, str, str, dict[str, Any] | None]


async def add_many(tx: Txn, changes: Sequence[Event]) -> None:
    """Record several changes in one statement (a step that writes a few at once, a sender's batch)."""
    if not changes:
        return
    now = tx.now_iso()
    values: list[Any] = []
    for ticket_id, actor, kind, data in changes:
        values += [ticket_id, now, actor, kind, json.dumps(data or {}, ensure_ascii=False, default=str)]
    await tx.execute(
        "INSERT INTO events (ticket_id, at, actor, kind, data) VALUES "
        + ", ".join("(?, ?, ?, ?, ?)" for _ in changes),
        values,
    )


async def count_since(tx: Txn, ticket_id: int, actor: str, kind: str, since: str) -> int:
    """How many events of this kind by this actor the ticket has had since then."""
    return int(await tx.value(
        "SELECT COUNT(*) FROM events WHERE ticket_id = ? AND actor = ? AND kind = ? AND at > ?",
        (ticket_id, actor, kind, since)) or 0)


async def rewrite(tx: Txn, event_id: int, actor: str | None, data: str | None) -> None:
    """An event's actor and data JSON as given (an erasure scrubbed them); what happened and when stay."""
    await tx.execute("UPDATE events SET actor = ?, data = ? WHERE id = ?", (actor, data, event_id))
