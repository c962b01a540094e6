"""The ticket_sla table: one SLA clock per ticket (targets, time used, deadlines, warnings sent)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailgate.clock import iso
from mailgate.store import Row, Txn

TARGETS: tuple[str, ...] = ("first_response", "resolution")
# Each stage is sent once; the time it went out is stored in its own column.
FLAGS: dict[str, str] = {"warning": "warned", "breach": "breached"}


@dataclass(frozen=True, slots=True)
class Target:
    """One deadline of a clock: first response or resolution."""

    minutes: int | None  # the target in force (None: no target)
    due: str | None  # None while paused, met, or without target
    met_at: str | None
    late: bool | None  # met after its deadline (None: not met yet)
    warned: str | None
    breached: str | None

    def flagged(self, stage: str) -> str | None:
        """When the warning or breach of this target went out, if it did."""
        return self.warned if stage == "warning" else self.breached


@dataclass(frozen=True, slots=True)
class SlaClock:
    ticket_id: int
    queue: str | None
    priority: str
    started_at: str
    running_since: datetime | None  # None: paused or stopped
    used_minutes: float  # counted before running_since
    first_response: Target
    resolution: Target

    def target(self, name: str) -> Target:
        return self.first_response if name == "first_response" else self.resolution


@dataclass(frozen=True, slots=True)
class SlaTicket:
    """What of a ticket decides its clock."""

    queue: str | None
    priority: str
    status: str
    quarantined: bool
    created_at: str


def _target(row: Row, name: str) -> Target:
    late = row[f"{name}_late"]
    met = row["first_response_at" if name == "first_response" else "resolved_at"]
    return Target(row[f"{name}_minutes"], row[f"{name}_due"], met, None if late is None else bool(late),
                  row[f"{name}_warned"], row[f"{name}_breached"])


async def get(tx: Txn, ticket_id: int) -> SlaClock | None:
    row = await tx.one("SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket_id,))
    if row is None:
        return None
    since = row["running_since"]
    return SlaClock(
        row["ticket_id"], row["queue"], row["priority"], row["started_at"],
        datetime.fromisoformat(since) if since else None, float(row["used_minutes"]),
        _target(row, "first_response"), _target(row, "resolution"),
    )


async def ticket(tx: Txn, ticket_id: int) -> SlaTicket | None:
    row = await tx.one("SELECT queue, priority, status, quarantined, created_at FROM tickets WHERE id = ?", (ticket_id,))
    if row is None:
        return None
    return SlaTicket(row["queue"], row["priority"], row["status"], bool(row["quarantined"]), row["created_at"])


async def create(
    tx: Txn, ticket_id: int, queue: str | None, priority: str, *, started_at: str, running_since: str | None,
    used_minutes: float = 0.0, first_response: int | None = None, resolution: int | None = None,
) -> None:
    """A ticket's clock; a ticket that has one keeps it."""
    await tx.execute(
        "INSERT INTO ticket_sla (ticket_id, queue, priority, started_at, running_since, used_minutes,"
        " first_response_minutes, resolution_minutes, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (ticket_id, queue, priority, started_at, running_since, used_minutes, first_response, resolution,
         tx.now_iso()),
    )


async def bank(tx: Txn, ticket_id: int, used_minutes: float, since: datetime) -> None:
    """Keep the minutes counted so far and count on from `since` (the hours to count by changed)."""
    await tx.execute("UPDATE ticket_sla SET used_minutes = ?, running_since = ? WHERE ticket_id = ?",
                     (used_minutes, iso(since), ticket_id))


async def set_targets(
    tx: Txn, ticket_id: int, queue: str | None, priority: str, first_response: int | None, resolution: int | None
) -> None:
    await tx.execute(
        "UPDATE ticket_sla SET queue = ?, priority = ?, first_response_minutes = ?, resolution_minutes = ?,"
        " updated_at = ? WHERE ticket_id = ?",
        (queue, priority, first_response, resolution, tx.now_iso(), ticket_id),
    )


async def pause(tx: Txn, ticket_id: int, used_minutes: float) -> None:
    """Stop the clock with the minutes used; no deadline stands while it is stopped."""
    await tx.execute(
        "UPDATE ticket_sla SET used_minutes = ?, running_since = NULL, first_response_due = NULL,"
        " resolution_due = NULL, updated_at = ? WHERE ticket_id = ?",
        (used_minutes, tx.now_iso(), ticket_id),
    )


async def resolved(tx: Txn, ticket_id: int, at: datetime, late: bool) -> None:
    await tx.execute("UPDATE ticket_sla SET resolved_at = ?, resolution_late = ? WHERE ticket_id = ?",
                     (iso(at), int(late), ticket_id))


async def resume(tx: Txn, ticket_id: int, at: datetime) -> None:
    """Run the clock again from `at`; a reopened ticket's resolution is no longer met."""
    await tx.execute(
        "UPDATE ticket_sla SET running_since = ?, resolved_at = NULL, resolution_late = NULL, updated_at = ?"
        " WHERE ticket_id = ?",
        (iso(at), tx.now_iso(), ticket_id),
    )


async def first_response_met(tx: Txn, ticket_id: int, at: datetime, late: bool) -> None:
    await tx.execute(
        "UPDATE ticket_sla SET first_response_at = ?, first_response_late = ?, first_response_due = NULL,"
        " updated_at = ? WHERE ticket_id = ?",
        (iso(at), int(late), tx.now_iso(), ticket_id),
    )


async def set_dues(tx: Txn, ticket_id: int, first_response: str | None, resolution: str | None) -> None:
    await tx.execute("UPDATE ticket_sla SET first_response_due = ?, resolution_due = ? WHERE ticket_id = ?",
                     (first_response, resolution, ticket_id))


async def flag(tx: Txn, ticket_id: int, target: str, stage: str, at: datetime) -> None:
    """Record that a target's warning or breach went out."""
    if target not in TARGETS or stage not in FLAGS:
        raise ValueError(f"no SLA flag {target}.{stage}")
    column = f"{target}_{FLAGS[stage]}"  # one of four fixed names, checked above
    await tx.execute(f"UPDATE ticket_sla SET {column} = ?, updated_at = ? WHERE ticket_id = ?",
                     (iso(at), tx.now_iso(), ticket_id))


async def first_reply_sent_at(tx: Txn, ticket_id: int) -> datetime | None:
    """When the relay first took an agent's reply on the ticket, if it has."""
    sent = await tx.value(
        "SELECT MIN(sent_at) FROM outbox WHERE ticket_id = ? AND kind = 'reply' AND state = 'sent'", (ticket_id,))
    return datetime.fromisoformat(sent) if sent else None
