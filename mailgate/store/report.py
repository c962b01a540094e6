"""What `mailgate report` counts: tickets opened, answered, resolved, SLA outcomes and the backlog in a period.

Each reader returns one row per ticket with the fields a report groups by (queue, assignee, channel,
category, tags); counting, grouping and percentiles happen in ops.report. Times are the stored UTC
ISO strings, which sort as text, so a period is `start <= at < end`. json_extract() reads a status
event's "to"/"from" (PostgreSQL: data::json->>'to').
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.store import Row, Txn

# The fields every reader returns, and the ticket's tags as one space-separated string (tags hold no spaces).
_FACTS = (
    "t.id, t.number, t.queue, t.assignee, t.channel, t.category, t.created_at,"
    " (SELECT group_concat(g.tag, ' ') FROM ticket_tags g WHERE g.ticket_id = t.id) AS tags"
)
# A status event's new and old status.
_TO = "json_extract(e.data, '$.to')"
_FROM = "json_extract(e.data, '$.from')"


@dataclass(frozen=True, slots=True)
class Facts:
    """One ticket as a report groups it."""

    id: int
    number: int
    queue: str | None
    assignee: str | None
    channel: str
    category: str | None
    created_at: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Timed:
    """A ticket and when something happened to it (its first reply, its resolution)."""

    ticket: Facts
    at: str


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    """A ticket's SLA clock as far as a report reads it: when each target was met, late or breached."""

    ticket: Facts
    first_response_at: str | None
    first_response_late: bool | None
    first_response_breached: str | None
    resolved_at: str | None
    resolution_late: bool | None
    resolution_breached: str | None


def _facts(row: Row) -> Facts:
    return Facts(int(row["id"]), int(row["number"]), row["queue"], row["assignee"], row["channel"], row["category"],
                 row["created_at"], tuple(sorted((row["tags"] or "").split())))


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


async def opened(tx: Txn, start: str, end: str, left_out: Sequence[str]) -> list[Facts]:
    """Tickets opened in the period; quarantined ones and those now in a `left_out` status are not counted."""
    rows = await tx.all(
        f"SELECT {_FACTS} FROM tickets t WHERE t.quarantined = 0 AND t.created_at >= ? AND t.created_at < ?"
        f" AND t.status NOT IN ({_marks(left_out)}) ORDER BY t.id",
        (start, end, *left_out),
    )
    return [_facts(r) for r in rows]


async def resolved(tx: Txn, start: str, end: str, done: Sequence[str]) -> list[Timed]:
    """Tickets that went from an active status to a `done` one in the period, with the last time they did."""
    rows = await tx.all(
        f"SELECT {_FACTS}, MAX(e.at) AS at FROM events e JOIN tickets t ON t.id = e.ticket_id"
        f" WHERE e.kind = 'ticket.status' AND e.at >= ? AND e.at < ? AND t.quarantined = 0"
        f" AND {_TO} IN ({_marks(done)}) AND {_FROM} NOT IN ({_marks(done)}) GROUP BY t.id ORDER BY t.id",
        (start, end, *done, *done),
    )
    return [Timed(_facts(r), r["at"]) for r in rows]


async def first_replies(tx: Txn, start: str, end: str) -> list[Timed]:
    """Tickets a customer opened whose first agent reply reached the relay in the period, and when.

    The sent reply's message row is read, not the outbox: retention deletes old outbox rows.
    """
    rows = await tx.all(
        f"SELECT {_FACTS}, f.at FROM tickets t JOIN (SELECT ticket_id, MIN(sent_at) AS at FROM messages"
        " WHERE direction = 'out' AND thread_detail = 'reply' GROUP BY ticket_id) f ON f.ticket_id = t.id"
        " WHERE t.quarantined = 0 AND t.direction = 'inbound' AND f.at >= ? AND f.at < ? ORDER BY t.id",
        (start, end),
    )
    return [Timed(_facts(r), r["at"]) for r in rows]


async def sla(tx: Txn, start: str, end: str) -> list[SlaOutcome]:
    """SLA clocks with a target met or breached in the period."""
    window = "({0} >= ? AND {0} < ?)"
    columns = ("first_response_at", "first_response_breached", "resolved_at", "resolution_breached")
    rows = await tx.all(
        f"SELECT {_FACTS}, s.first_response_at, s.first_response_late, s.first_response_breached, s.resolved_at,"
        " s.resolution_late, s.resolution_breached FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id"
        f" WHERE t.quarantined = 0 AND ({' OR '.join(window.format('s.' + c) for c in columns)}) ORDER BY t.id",
        tuple(v for _ in columns for v in (start, end)),
    )
    return [SlaOutcome(
        _facts(r), r["first_response_at"], None if r["first_response_late"] is None else bool(r["first_response_late"]),
        r["first_response_breached"], r["resolved_at"],
        None if r["resolution_late"] is None else bool(r["resolution_late"]), r["resolution_breached"],
    ) for r in rows]


async def backlog(tx: Txn, at: str, done: Sequence[str]) -> list[Facts]:
    """Tickets open at that moment: opened before it, and their last status change before it not to a `done` one."""
    rows = await tx.all(
        f"SELECT {_FACTS} FROM tickets t WHERE t.quarantined = 0 AND t.created_at < ?"
        f" AND COALESCE((SELECT {_TO} FROM events e WHERE e.ticket_id = t.id AND e.kind = 'ticket.status'"
        f" AND e.at < ? ORDER BY e.id DESC LIMIT 1), 'new') NOT IN ({_marks(done)}) ORDER BY t.id",
        (at, at, *done),
    )
    return [_facts(r) for r in rows]


async def claim_weekly(tx: Txn, queue: str, period: str) -> bool:
    """Record that a queue's report for the period goes out; False when it already did (send nothing)."""
    return await tx.rowcount(
        "INSERT INTO report_sent (queue, period, sent_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (queue, period, tx.now_iso()),
    ) == 1
