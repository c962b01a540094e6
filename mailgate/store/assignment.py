"""Where a new ticket is put: its routed fields, tags and trace, agents' open load and the round-robin position."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailgate.models import CLOSED_STATUSES
from mailgate.store import Txn


@dataclass(frozen=True, slots=True)
class StoredRouting:
    """A ticket's routing as stored: its fields, tags and the trace (None before routing was recorded)."""

    category: str | None
    tags: tuple[str, ...]
    quarantined: bool
    ack_suppressed: bool
    detected_language: str | None
    trace: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """As `tickets show` prints it."""
        return {
            "category": self.category,
            "tags": list(self.tags),
            "quarantined": self.quarantined,
            "ack_suppressed": self.ack_suppressed,
            "detected_language": self.detected_language,
            "routing": self.trace,
        }


async def last_in_rotation(tx: Txn, queue: str) -> str | None:
    """The agent a queue's round-robin gave the last ticket to."""
    value = await tx.value("SELECT last_agent FROM queue_rotation WHERE queue = ?", (queue,))
    return None if value is None else str(value)


async def rotate_to(tx: Txn, queue: str, agent_id: str) -> None:
    await tx.execute(
        "INSERT INTO queue_rotation (queue, last_agent, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (queue) DO UPDATE SET last_agent = excluded.last_agent, updated_at = excluded.updated_at",
        (queue, agent_id, tx.now_iso()),
    )


async def open_load(tx: Txn, agent_ids: Sequence[str]) -> dict[str, int]:
    """Open (not closed, not quarantined) tickets per agent; agents without any are left out.

    One row per agent from agent_open, which triggers on tickets keep in step (0014_open_counts.sql):
    the cost does not grow with an agent's open tickets.
    """
    if not agent_ids:
        return {}
    rows = await tx.all(
        f"SELECT agent, open FROM agent_open WHERE agent IN ({', '.join('?' for _ in agent_ids)}) AND open > 0",
        list(agent_ids),
    )
    return {r["agent"]: int(r["open"]) for r in rows}


async def recount(tx: Txn) -> dict[str, int]:
    """Open tickets per agent counted from the tickets themselves (what agent_open must equal)."""
    closed = sorted(CLOSED_STATUSES)
    rows = await tx.all(
        f"SELECT assignee, COUNT(*) AS n FROM tickets WHERE assignee IS NOT NULL"
        f" AND status NOT IN ({', '.join('?' for _ in closed)}) AND quarantined = 0 GROUP BY assignee",
        closed,
    )
    return {r["assignee"]: int(r["n"]) for r in rows}


async def save_trace(tx: Txn, ticket_id: int, trace: Mapping[str, Any]) -> None:
    """The routing trace shown by `tickets explain`; a later decision replaces it."""
    await tx.execute(
        "INSERT INTO ticket_routing (ticket_id, decided_at, trace) VALUES (?, ?, ?)"
        " ON CONFLICT (ticket_id) DO UPDATE SET decided_at = excluded.decided_at, trace = excluded.trace",
        (ticket_id, tx.now_iso(), json.dumps(trace, ensure_ascii=False)),
    )


async def routing_of(tx: Txn, ticket_id: int) -> StoredRouting | None:
    row = await tx.one(
        "SELECT t.category, t.quarantined, t.ack_suppressed, t.detected_language, r.trace"
        " FROM tickets t LEFT JOIN ticket_routing r ON r.ticket_id = t.id WHERE t.id = ?",
        (ticket_id,),
    )
    if row is None:
        return None
    tags = tuple(r["tag"] for r in await tx.all("SELECT tag FROM ticket_tags WHERE ticket_id = ? ORDER BY tag",
                                                (ticket_id,)))
    return StoredRouting(row["category"], tags, bool(row["quarantined"]), bool(row["ack_suppressed"]),
                         row["detected_language"], json.loads(row["trace"]) if row["trace"] else None)


async def set_trace_text(tx: Txn, ticket_id: int, trace: str | None) -> None:
    """The stored trace's JSON text as given (an erasure scrubbed it)."""
    await tx.execute("UPDATE ticket_routing SET trace = ? WHERE ticket_id = ?", (trace, ticket_id))
