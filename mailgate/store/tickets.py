"""The tickets table: reading a ticket, changing its fields, and the one writer of its status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailgate.models import TicketStatus
from mailgate.store import Row, Txn, events


@dataclass(frozen=True, slots=True)
class Ticket:
    """One ticket row."""

    id: int
    number: int
    subject: str
    status: TicketStatus
    priority: str
    queue: str | None
    assignee: str | None
    category: str | None
    contact_id: int | None
    channel: str
    direction: str
    merged_into: int | None
    snoozed_until: str | None
    resolved_at: str | None
    created_at: str
    updated_at: str
    deleted_from: str | None = None  # the status a deleted ticket had: [restore] gives it back


@dataclass(frozen=True, slots=True)
class Placed:
    """The routed fields a ticket is given when it is opened."""

    queue: str | None
    priority: str
    category: str | None
    assignee: str | None
    quarantined: bool
    ack_suppressed: bool
    language: str | None


@dataclass(frozen=True, slots=True)
class MovedTicket:
    id: int
    number: int


def _ticket(row: Row) -> Ticket:
    return Ticket(
        id=int(row["id"]), number=int(row["number"]), subject=row["subject"], status=TicketStatus(row["status"]),
        priority=row["priority"], queue=row["queue"], assignee=row["assignee"], category=row["category"],
        contact_id=row["contact_id"], channel=row["channel"], direction=row["direction"],
        merged_into=row["merged_into"], snoozed_until=row["snoozed_until"], resolved_at=row["resolved_at"],
        created_at=row["created_at"], updated_at=row["updated_at"], deleted_from=row["deleted_from"],
    )


@dataclass(frozen=True, slots=True)
class Created:
    """A new ticket row as the INSERT left it: the SLA clock starts from its status and created_at."""

    id: int
    number: int
    status: str
    created_at: str


async def create(
    tx: Txn, *, subject: str, contact_id: int | None, first_number: int, channel: str, direction: str,
    placed: Placed | None = None,
) -> Created:
    """A new ticket row with the next short human number, routed already when placed is given.

    One statement: the number is taken under the write lock the INSERT holds, never from an
    earlier read. A routed mail's ticket is written with its queue, priority and assignee in
    the INSERT instead of an UPDATE after it (which ran the open-count triggers and rewrote the
    row's index entries a second time).
    """
    now = tx.now_iso()
    p = placed or Placed(None, "normal", None, None, False, False, None)
    row = await tx.one(
        "INSERT INTO tickets (number, subject, contact_id, channel, direction, created_at, updated_at,"
        " queue, priority, category, assignee, quarantined, ack_suppressed, detected_language)"
        " SELECT CASE WHEN MAX(number) IS NULL OR MAX(number) + 1 < ? THEN ? ELSE MAX(number) + 1 END,"
        " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM tickets RETURNING id, number, status, created_at",
        (first_number, first_number, subject, contact_id, channel, direction, now, now,
         p.queue, p.priority, p.category, p.assignee, int(p.quarantined), int(p.ack_suppressed), p.language),
    )
    assert row is not None  # an INSERT … SELECT over an aggregate always yields its one row
    return Created(int(row["id"]), int(row["number"]), str(row["status"]), str(row["created_at"]))


async def get(tx: Txn, ticket_id: int) -> Ticket | None:
    row = await tx.one("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
    return None if row is None else _ticket(row)


async def by_number(tx: Txn, number: int) -> Ticket | None:
    row = await tx.one("SELECT * FROM tickets WHERE number = ?", (number,))
    return None if row is None else _ticket(row)


async def id_of(tx: Txn, number: int) -> int | None:
    """The row id of ticket #number."""
    value = await tx.value("SELECT id FROM tickets WHERE number = ?", (number,))
    return None if value is None else int(value)


async def number_of(tx: Txn, ticket_id: int) -> int | None:
    value = await tx.value("SELECT number FROM tickets WHERE id = ?", (ticket_id,))
    return None if value is None else int(value)


async def number_and_queue(tx: Txn, ticket_id: int) -> tuple[int, str | None] | None:
    """A ticket's number and the queue it is in, in one read (None: no such ticket)."""
    row = await tx.one("SELECT number, queue FROM tickets WHERE id = ?", (ticket_id,))
    return None if row is None else (int(row["number"]), row["queue"])


async def queue_of(tx: Txn, ticket_id: int) -> str | None:
    """The queue a ticket is in now (None: none, or no such ticket)."""
    value = await tx.value("SELECT queue FROM tickets WHERE id = ?", (ticket_id,))
    return None if value is None else str(value)


async def queue_by_number(tx: Txn, number: int | None) -> str | None:
    value = await tx.value("SELECT queue FROM tickets WHERE number = ?", (number,))
    return None if value is None else str(value)


async def survivor(tx: Txn, ticket_id: int) -> int:
    """The ticket a merged one lives on in (merging moves the thread there): its tokens and tag lead there."""
    for _ in range(20):  # merges of merged tickets; a bound, never a loop
        into = await tx.value("SELECT merged_into FROM tickets WHERE id = ?", (ticket_id,))
        if into is None:
            break
        ticket_id = int(into)
    return ticket_id


# Fields an operation may set; status is not among them (set_status writes it, with its event).
_FIELDS = frozenset({"priority", "queue", "assignee", "category", "merged_into", "snoozed_until", "resolved_at",
                     "contact_id", "deleted_at", "deleted_from"})


async def update(tx: Txn, ticket_id: int, *, touch: bool = True, **fields: Any) -> None:
    """Set some of the ticket's fields (and updated_at, unless touch=False)."""
    unknown = set(fields) - _FIELDS
    if unknown:
        raise ValueError(f"not a settable ticket field: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(fields)
    if touch:
        values["updated_at"] = tx.now_iso()
    if not values:
        return
    assignments = ", ".join(f"{name} = ?" for name in values)
    await tx.execute(f"UPDATE tickets SET {assignments} WHERE id = ?", (*values.values(), ticket_id))


async def touch(tx: Txn, ticket_id: int) -> None:
    """Something happened on the ticket: it rises in "newest activity first" lists."""
    await update(tx, ticket_id)


async def set_status(
    tx: Txn, ticket_id: int, status: TicketStatus, *, actor: str, kind: str = "ticket.status",
    data: dict[str, Any] | None = None,
) -> TicketStatus | None:
    """THE writer of tickets.status: the new status and its event in one step; the old status, None for no ticket.

    kind/data: the event, "ticket.status" {"from", "to"} unless the caller names another (a snooze).
    """
    old = await tx.value("SELECT status FROM tickets WHERE id = ?", (ticket_id,))
    if old is None:
        return None
    await tx.execute("UPDATE tickets SET status = ?, updated_at = ? WHERE id = ?", (status, tx.now_iso(), ticket_id))
    await events.add(tx, ticket_id, actor, kind, {"from": old, "to": status} if data is None else data)
    return TicketStatus(old)


async def claim_next(tx: Txn, agent_id: str, queues: Sequence[str], rank: Sequence[str]) -> Ticket | None:
    """The most urgent unassigned new or open ticket of these queues, assigned to the agent in one statement.

    The claim is one UPDATE guarded by "assignee IS NULL" inside a BEGIN IMMEDIATE transaction,
    so two agents asking at once get two different tickets (or one gets none).
    """
    marks = ", ".join("?" for _ in queues)
    row = await tx.one(
        "UPDATE tickets SET assignee = ?, updated_at = ?"
        " WHERE id = (SELECT t.id FROM tickets t WHERE t.assignee IS NULL AND t.quarantined = 0"
        f" AND t.status IN ('new', 'open') AND t.queue IN ({marks}) ORDER BY {_rank(rank)}, t.created_at, t.id LIMIT 1)"
        " AND assignee IS NULL RETURNING *",
        (agent_id, tx.now_iso(), *queues),
    )
    return None if row is None else _ticket(row)


def _rank(priorities: Sequence[str]) -> str:
    """An ORDER BY term: the most urgent priority first (priorities are config words, never user text)."""
    cases = " ".join(f"WHEN '{p}' THEN {i}" for i, p in enumerate(priorities))
    return f"CASE t.priority {cases} ELSE {len(priorities)} END"


@dataclass(frozen=True, slots=True)
class InboxLine:
    """One ticket in an agent's folder listing."""

    number: int
    subject: str
    status: str
    priority: str
    queue: str | None
    assignee: str | None
    snoozed_until: str | None
    updated_at: str
    flagged: int  # 1: an answer to this agent's [help]/[forward] came in
    unread: int  # 1: the customer wrote since this agent last read it

    def to_json(self) -> dict[str, Any]:
        """As the [list] answer's template reads it."""
        return {"number": self.number, "subject": self.subject, "status": self.status, "priority": self.priority,
                "queue": self.queue, "assignee": self.assignee, "snoozed_until": self.snoozed_until,
                "updated_at": self.updated_at, "flagged": self.flagged, "unread": self.unread}


async def inbox(
    tx: Txn, agent_id: str, queues: Sequence[str], which: str, closed: Sequence[str], rank: Sequence[str],
    unread_sql: str, limit: int,
) -> list[InboxLine]:
    """The folders of a help-desk inbox for one agent: inbox, waiting, mine, all (not closed)."""
    queues = list(queues) or ["\x00"]
    marks = ", ".join("?" for _ in queues)
    closed_marks = ", ".join("?" for _ in closed)
    mine_or_queue = f"(t.queue IN ({marks}) OR t.assignee = ?)"
    # An answer to this agent's [help]/[forward] came in: the ticket is in their inbox, on top.
    flagged = "EXISTS (SELECT 1 FROM ticket_flags f WHERE f.ticket_id = t.id AND f.agent = ?)"
    where, params = {
        "inbox": (f"((t.queue IN ({marks}) AND t.status IN ('new', 'open') AND (t.assignee IS NULL OR t.assignee = ?))"
                  f" OR {flagged})", [*queues, agent_id, agent_id]),
        "waiting": (f"{mine_or_queue} AND t.status IN ('pending', 'waiting')", [*queues, agent_id]),
        "mine": (f"t.assignee = ? AND t.status NOT IN ({closed_marks})", [agent_id, *closed]),
        "all": (f"{mine_or_queue} AND t.status NOT IN ({closed_marks})", [*queues, agent_id, *closed]),
    }[which]
    # What this agent has not read since the customer wrote comes first in the inbox.
    unread_first = "unread DESC, " if which == "inbox" else ""
    rows = await tx.all(
        "SELECT t.number, t.subject, t.status, t.priority, t.queue, t.assignee, t.snoozed_until, t.updated_at,"
        f" {flagged} AS flagged, {unread_sql} AS unread"
        f" FROM tickets t WHERE t.quarantined = 0 AND {where}"
        f" ORDER BY flagged DESC, {unread_first}{_rank(rank)}, t.updated_at DESC LIMIT ?",
        [agent_id, agent_id, *params, limit],
    )
    return [InboxLine(r["number"], r["subject"], r["status"], r["priority"], r["queue"], r["assignee"],
                      r["snoozed_until"], r["updated_at"], int(r["flagged"]), int(r["unread"] or 0)) for r in rows]


async def place(tx: Txn, ticket_id: int, placed: Placed) -> tuple[str, str] | None:
    """Write a routing decision; the ticket's (status, created_at) as they are now, which the SLA clock needs."""
    p = placed
    row = await tx.one(
        "UPDATE tickets SET queue = ?, priority = ?, category = ?, assignee = ?, quarantined = ?,"
        " ack_suppressed = ?, detected_language = ? WHERE id = ? RETURNING status, created_at",
        (p.queue, p.priority, p.category, p.assignee, int(p.quarantined), int(p.ack_suppressed), p.language, ticket_id),
    )
    return None if row is None else (str(row["status"]), str(row["created_at"]))


async def hide(tx: Txn, ticket_id: int) -> None:
    """A ticket opened by mail over the storm cap: quarantined and never acknowledged, like a spam suspect's."""
    await tx.execute("UPDATE tickets SET quarantined = 1, ack_suppressed = 1 WHERE id = ?", (ticket_id,))


async def move_requested_tickets(tx: Txn, address: str, old: int, new: int) -> list[MovedTicket]:
    """The old contact's tickets on which this address is the requester now belong to the new contact."""
    rows = await tx.all(
        "UPDATE tickets SET contact_id = ? WHERE contact_id = ? AND id IN"
        " (SELECT ticket_id FROM ticket_parties WHERE address = ? AND role = 'requester') RETURNING id, number",
        (new, old, address),
    )
    return [MovedTicket(r["id"], r["number"]) for r in rows]


async def set_subjects(tx: Txn, ticket_ids: Sequence[int], subject: str) -> None:
    """One subject for these tickets (an erased customer's own words go), updated_at unchanged."""
    if ticket_ids:
        marks = ",".join("?" for _ in ticket_ids)
        await tx.execute(f"UPDATE tickets SET subject = ? WHERE id IN ({marks})", [subject, *ticket_ids])


async def delete_requested(tx: Txn, ticket_id: int, actor: str, kind: str, since: str) -> bool:
    """Whether this actor asked to delete the ticket since then, and it was neither deleted nor restored after."""
    return await tx.value(
        "SELECT 1 FROM events r WHERE r.ticket_id = ? AND r.actor = ? AND r.kind = ? AND r.at > ?"
        " AND r.id > COALESCE((SELECT MAX(id) FROM events e WHERE e.ticket_id = r.ticket_id"
        " AND e.kind IN ('ticket.deleted', 'ticket.restored')), 0) LIMIT 1",
        (ticket_id, actor, kind, since),
    ) is not None
