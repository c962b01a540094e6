"""SLA clocks: first-response and resolution deadlines per ticket, paused while it waits, warned and escalated once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailgate.config import AgentConfig, Config
from mailgate.ops import tickets
from mailgate.ops.business_hours import Hours, add_minutes, minutes_between
from mailgate.outgoing import notices as outbound
from mailgate.store import Row, Txn, now_iso, timers

log = logging.getLogger("mailgate.sla")

# The clock stops while the ticket waits (snoozed, or on the customer) and once it is done.
PAUSED = frozenset({"waiting", "pending"})
DONE = frozenset({"resolved", "closed", "merged", "spam"})
TARGETS: tuple[str, ...] = ("first_response", "resolution")
STAGES: tuple[str, ...] = ("warning", "breach")
KINDS: tuple[str, ...] = tuple(f"sla.{t}.{s}" for t in TARGETS for s in STAGES)
_FLAG = {"warning": "warned", "breach": "breached"}
_EPSILON = 1e-6  # minutes; float sums of business minutes


def kind(target: str, stage: str) -> str:
    return f"sla.{target}.{stage}"


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def hours_for(config: Config, queue_name: str | None) -> Hours | None:
    """The queue's business hours, or None when every minute counts."""
    queue = config.queue(queue_name) if queue_name else None
    if queue is None or queue.business_hours is None:
        return None
    return Hours.from_config(queue.business_hours)


def targets(config: Config, queue_name: str | None, priority: str) -> dict[str, int | None]:
    """Minutes per target from the queue's action times for this priority (None: no target)."""
    queue = config.queue(queue_name) if queue_name else None
    times = queue.sla.get(priority) if queue is not None else None  # type: ignore[call-overload]
    return {
        "first_response": times.first_response if times else None,
        "resolution": times.resolution if times else None,
    }


def used_at(row: Row, now: datetime, hours: Hours | None) -> float:
    """Minutes on the clock at `now`: counted before, plus the running stretch."""
    since = _time(row["running_since"])
    return float(row["used_minutes"]) + (minutes_between(since, now, hours) if since else 0.0)


async def _row(tx: Txn, ticket_id: int) -> Row | None:
    return await tx.one("SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket_id,))


async def start(tx: Txn, config: Config, ticket_id: int, *, now: datetime | None = None) -> bool:
    """A new ticket: start its clock when its queue has targets for its priority; True if it did."""
    ticket = await tx.one("SELECT queue, priority, status, quarantined FROM tickets WHERE id = ?", (ticket_id,))
    if ticket is None or ticket["quarantined"]:
        return False  # quarantined mail is kept, not worked on: no deadlines for it
    wanted = targets(config, ticket["queue"], ticket["priority"])
    if wanted["first_response"] is None and wanted["resolution"] is None:
        return False
    moment = timers.iso(_now(now))
    running = None if ticket["status"] in PAUSED | DONE else moment
    await tx.execute(
        "INSERT OR IGNORE INTO ticket_sla (ticket_id, queue, priority, started_at, running_since,"
        " first_response_minutes, resolution_minutes, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (ticket_id, ticket["queue"], ticket["priority"], moment, running, wanted["first_response"],
         wanted["resolution"], now_iso()),
    )
    await tickets.event(tx, ticket_id, "system", "sla.started", {**wanted, "queue": ticket["queue"],
                                                                 "priority": ticket["priority"]})
    await _schedule(tx, config, ticket_id, _now(now))
    return True


async def recompute(tx: Txn, config: Config, ticket_id: int, *, now: datetime | None = None, actor: str = "system") -> None:
    """Priority or queue changed (or the config): new targets, the time already used kept."""
    moment = _now(now)
    ticket = await tx.one("SELECT queue, priority, status, created_at FROM tickets WHERE id = ?", (ticket_id,))
    if ticket is None:
        raise LookupError(f"no ticket with id {ticket_id}")
    wanted = targets(config, ticket["queue"], ticket["priority"])
    row = await _row(tx, ticket_id)
    if row is None:
        if wanted["first_response"] is None and wanted["resolution"] is None:
            return
        # A ticket that had no targets until now: its clock starts when it was opened.
        created = datetime.fromisoformat(ticket["created_at"])
        stopped = ticket["status"] in PAUSED | DONE
        used = minutes_between(created, moment, hours_for(config, ticket["queue"])) if stopped else 0.0
        await tx.execute(
            "INSERT INTO ticket_sla (ticket_id, queue, priority, started_at, running_since, used_minutes, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ticket_id, ticket["queue"], ticket["priority"], ticket["created_at"],
             None if stopped else ticket["created_at"], used, now_iso()),
        )
    elif row["running_since"] is not None and row["queue"] != ticket["queue"]:
        # Another queue may have other hours: bank the minutes counted under the old ones.
        used = used_at(row, moment, hours_for(config, row["queue"]))
        await tx.execute("UPDATE ticket_sla SET used_minutes = ?, running_since = ? WHERE ticket_id = ?",
                         (used, timers.iso(moment), ticket_id))
    before = (row["first_response_minutes"], row["resolution_minutes"]) if row is not None else (None, None)
    await tx.execute(
        "UPDATE ticket_sla SET queue = ?, priority = ?, first_response_minutes = ?, resolution_minutes = ?,"
        " updated_at = ? WHERE ticket_id = ?",
        (ticket["queue"], ticket["priority"], wanted["first_response"], wanted["resolution"], now_iso(), ticket_id),
    )
    if before != (wanted["first_response"], wanted["resolution"]):
        await tickets.event(tx, ticket_id, actor, "sla.recomputed",
                            {**wanted, "queue": ticket["queue"], "priority": ticket["priority"]})
    await _schedule(tx, config, ticket_id, moment)


async def status_changed(
    tx: Txn, config: Config, ticket_id: int, old: str, new: str, *, now: datetime | None = None, actor: str = "system"
) -> None:
    """Pause while waiting, stop (resolution met) when done, run again when the ticket is active."""
    row = await _row(tx, ticket_id)
    if row is None or old == new:
        return
    moment = _now(now)
    hours = hours_for(config, row["queue"])
    if new in PAUSED or new in DONE:
        if row["running_since"] is not None:
            await tx.execute(
                "UPDATE ticket_sla SET used_minutes = ?, running_since = NULL, first_response_due = NULL,"
                " resolution_due = NULL, updated_at = ? WHERE ticket_id = ?",
                (used_at(row, moment, hours), now_iso(), ticket_id),
            )
        await _cancel(tx, ticket_id)
        if new in DONE and row["resolved_at"] is None and row["resolution_minutes"] is not None:
            late = row["resolution_breached"] is not None or used_at(row, moment, hours) > row["resolution_minutes"]
            await tx.execute("UPDATE ticket_sla SET resolved_at = ?, resolution_late = ? WHERE ticket_id = ?",
                             (timers.iso(moment), int(late), ticket_id))
            await tickets.event(tx, ticket_id, actor, "sla.resolution_met", {"late": late})
        elif new in PAUSED:
            await tickets.event(tx, ticket_id, actor, "sla.paused", {"status": new})
        return
    if row["running_since"] is None:
        await tx.execute(
            "UPDATE ticket_sla SET running_since = ?, resolved_at = NULL, resolution_late = NULL, updated_at = ?"
            " WHERE ticket_id = ?",
            (timers.iso(moment), now_iso(), ticket_id),
        )
        await tickets.event(tx, ticket_id, actor, "sla.resumed", {"status": new, "after": old})
    await _schedule(tx, config, ticket_id, moment)


async def first_response_sent(tx: Txn, ticket_id: int, at: datetime) -> None:
    """An agent's reply reached the relay: the first-response target is met (once)."""
    row = await _row(tx, ticket_id)
    if row is None or row["first_response_at"] is not None or row["first_response_minutes"] is None:
        return
    due = _time(row["first_response_due"])
    late = row["first_response_breached"] is not None or (due is not None and at > due)
    await tx.execute(
        "UPDATE ticket_sla SET first_response_at = ?, first_response_late = ?, first_response_due = NULL,"
        " updated_at = ? WHERE ticket_id = ?",
        (timers.iso(at), int(late), now_iso(), ticket_id),
    )
    for stage in STAGES:
        await timers.cancel(tx, kind("first_response", stage), ticket_id)
    await tickets.event(tx, ticket_id, "system", "sla.first_response_met", {"late": late})


async def _cancel(tx: Txn, ticket_id: int) -> None:
    for timer_kind in KINDS:
        await timers.cancel(tx, timer_kind, ticket_id)


def _met(row: Row, target: str) -> bool:
    return row["first_response_at" if target == "first_response" else "resolved_at"] is not None


async def _schedule(tx: Txn, config: Config, ticket_id: int, now: datetime) -> None:
    """Replace the ticket's SLA timers with ones for the current state; store the deadlines."""
    await _cancel(tx, ticket_id)
    row = await _row(tx, ticket_id)
    assert row is not None
    since = _time(row["running_since"])
    hours = hours_for(config, row["queue"])
    share = config.tickets.sla_warning_percent / 100
    dues: dict[str, str | None] = {}
    for target in TARGETS:
        limit = row[f"{target}_minutes"]
        if since is None or limit is None or _met(row, target):
            dues[target] = None
            continue
        used = float(row["used_minutes"])
        due = add_minutes(since, limit - used, hours)
        dues[target] = timers.iso(due)
        for stage, threshold in (("warning", limit * share), ("breach", float(limit))):
            if row[f"{target}_{_FLAG[stage]}"] is None:
                await timers.add(tx, kind(target, stage), ticket_id, add_minutes(since, threshold - used, hours))
    await tx.execute(
        "UPDATE ticket_sla SET first_response_due = ?, resolution_due = ? WHERE ticket_id = ?",
        (dues["first_response"], dues["resolution"], ticket_id),
    )


async def fire(tx: Txn, config: Config, timer: timers.Timer, *, now: datetime | None = None) -> None:
    """A warning or breach timer fell due: check it still holds, mark it, tell the agents once."""
    _, target, stage = timer.kind.split(".")
    moment = _now(now)
    row = await _row(tx, timer.ref)
    if row is None or _met(row, target) or row[f"{target}_{_FLAG[stage]}"] is not None:
        return
    if target == "first_response":
        sent = await tx.value(
            "SELECT MIN(sent_at) FROM outbox WHERE ticket_id = ? AND kind = 'reply' AND state = 'sent'", (timer.ref,)
        )
        if sent:  # answered, though the sender's hook did not record it (an older version sent it)
            await first_response_sent(tx, timer.ref, datetime.fromisoformat(sent))
            return
    limit = row[f"{target}_minutes"]
    if row["running_since"] is None or limit is None:
        return  # paused or no target: resuming schedules anew
    hours = hours_for(config, row["queue"])
    threshold = limit * (config.tickets.sla_warning_percent / 100 if stage == "warning" else 1.0)
    used = used_at(row, moment, hours)
    if used + _EPSILON < threshold:
        # Early (the config's hours changed since it was scheduled): come back when it is due.
        await timers.add(tx, timer.kind, timer.ref, add_minutes(moment, threshold - used, hours))
        return
    column = f"{target}_{_FLAG[stage]}"
    await tx.execute(f"UPDATE ticket_sla SET {column} = ?, updated_at = ? WHERE ticket_id = ?",
                     (timers.iso(moment), now_iso(), timer.ref))
    due = row[f"{target}_due"]
    if stage == "warning" and used >= limit:
        # Already past the deadline itself: the breach notice says it all, one mail not two.
        await tickets.event(tx, timer.ref, "system", "sla.warning_skipped", {"target": target, "due": due})
        return
    sent = await _tell(tx, config, timer.ref, target, stage, due, limit, hours)
    await tickets.event(tx, timer.ref, "system", "sla.warning" if stage == "warning" else "sla.breached",
                        {"target": target, "due": due, "minutes": limit, "told": sent})


async def _tell(
    tx: Txn, config: Config, ticket_id: int, target: str, stage: str, due: str | None, limit: int, hours: Hours | None
) -> list[str]:
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, ticket_id)
    agents: list[AgentConfig] = mailer.agents_to_tell(info)
    if stage == "breach" and info.queue is not None:
        # Escalation goes to the whole queue (the assignee too), not only to whoever was late.
        agents = [*agents, *(a for a in config.queue_members(info.queue) if not a.away and a not in agents)]
    zone = hours.zone if hours is not None else ZoneInfo(getattr(config.gateway, "timezone", "UTC"))
    shown = datetime.fromisoformat(due).astimezone(zone).strftime(f"%Y-%m-%d %H:%M ({zone.key})") if due else ""
    for agent in agents:
        await mailer.queue_mail(
            tx, info, kind="sla", template="sla_warning" if stage == "warning" else "sla_breach",
            to_name=agent.name, to_address=agent.addresses[0], language=mailer.agent_language(info, agent),
            auto_kind="auto-generated",
            data=mailer.data(info, agent_name=agent.name, agent_id=agent.id, deadline_kind=target,
                             deadline_due=shown, deadline_minutes=limit),
        )
    return [a.id for a in agents]


async def report(tx: Txn, config: Config, ticket_id: int, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The clock as a person reads it: targets, deadlines, minutes used and left, warnings sent."""
    row = await _row(tx, ticket_id)
    if row is None:
        return None
    moment = _now(now)
    hours = hours_for(config, row["queue"])
    used = used_at(row, moment, hours)
    out: dict[str, Any] = {
        "queue": row["queue"], "priority": row["priority"], "started_at": row["started_at"],
        "running": row["running_since"] is not None, "business_hours": hours is not None,
        "used_minutes": round(used, 1),
    }
    for target in TARGETS:
        limit = row[f"{target}_minutes"]
        met = row["first_response_at" if target == "first_response" else "resolved_at"]
        out[target] = {
            "minutes": limit, "due": row[f"{target}_due"], "met_at": met,
            "late": None if row[f"{target}_late"] is None else bool(row[f"{target}_late"]),
            "left_minutes": None if limit is None or met else round(limit - used, 1),
            "warned_at": row[f"{target}_warned"], "breached_at": row[f"{target}_breached"],
        }
    return out
