"""SLA clocks: first-response and resolution deadlines per ticket, paused while it waits, warned and escalated once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailgate.config import AgentConfig, Config
from mailgate.models import CLOSED_STATUSES, PAUSED_STATUSES
from mailgate.ops.business_hours import Hours, add_minutes, minutes_between
from mailgate.outgoing import notices as outbound
from mailgate.store import Txn, events, timers
from mailgate.store import sla as store
from mailgate.store.sla import TARGETS as TARGETS
from mailgate.store.sla import SlaClock

log = logging.getLogger("mailgate.sla")

# The clock neither runs while the ticket waits (snoozed, or on the customer) nor once it is done.
STOPPED = PAUSED_STATUSES | CLOSED_STATUSES
STAGES: tuple[str, ...] = ("warning", "breach")
KINDS: tuple[str, ...] = tuple(f"sla.{t}.{s}" for t in TARGETS for s in STAGES)
_EPSILON = 1e-6  # minutes; float sums of business minutes


def kind(target: str, stage: str) -> str:
    return f"sla.{target}.{stage}"


def _now(tx: Txn, now: datetime | None) -> datetime:
    return (now or tx.now()).astimezone(UTC)


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


def used_at(clock: SlaClock, now: datetime, hours: Hours | None) -> float:
    """Minutes on the clock at `now`: counted before, plus the running stretch."""
    since = clock.running_since
    return clock.used_minutes + (minutes_between(since, now, hours) if since else 0.0)


async def start(
    tx: Txn, config: Config, ticket_id: int, *, now: datetime | None = None, ticket: store.SlaTicket | None = None
) -> bool:
    """A new ticket: start its clock when its queue has targets for its priority; True if it did."""
    ticket = ticket or await store.ticket(tx, ticket_id)
    if ticket is None or ticket.quarantined:
        return False  # quarantined mail is kept, not worked on: no deadlines for it
    wanted = targets(config, ticket.queue, ticket.priority)
    if wanted["first_response"] is None and wanted["resolution"] is None:
        return False
    moment = _now(tx, now)
    await store.create(
        tx, ticket_id, ticket.queue, ticket.priority, started_at=timers.iso(moment),
        running_since=None if ticket.status in STOPPED else timers.iso(moment),
        first_response=wanted["first_response"], resolution=wanted["resolution"],
    )
    await events.add(tx, ticket_id, "system", "sla.started", {**wanted, "queue": ticket.queue,
                                                                 "priority": ticket.priority})
    await _schedule(tx, config, ticket_id, moment, fresh=True)
    return True


async def recompute(tx: Txn, config: Config, ticket_id: int, *, now: datetime | None = None, actor: str = "system") -> None:
    """Priority or queue changed (or the config): new targets, the time already used kept."""
    moment = _now(tx, now)
    ticket = await store.ticket(tx, ticket_id)
    if ticket is None:
        raise LookupError(f"no ticket with id {ticket_id}")
    wanted = targets(config, ticket.queue, ticket.priority)
    clock = await store.get(tx, ticket_id)
    if clock is None:
        if wanted["first_response"] is None and wanted["resolution"] is None:
            return
        # A ticket that had no targets until now: its clock starts when it was opened.
        created = datetime.fromisoformat(ticket.created_at)
        stopped = ticket.status in STOPPED
        used = minutes_between(created, moment, hours_for(config, ticket.queue)) if stopped else 0.0
        await store.create(tx, ticket_id, ticket.queue, ticket.priority, started_at=ticket.created_at,
                           running_since=None if stopped else ticket.created_at, used_minutes=used)
    elif clock.running_since is not None and clock.queue != ticket.queue:
        # Another queue may have other hours: bank the minutes counted under the old ones.
        await store.bank(tx, ticket_id, used_at(clock, moment, hours_for(config, clock.queue)), moment)
    before = (clock.first_response.minutes, clock.resolution.minutes) if clock is not None else (None, None)
    await store.set_targets(tx, ticket_id, ticket.queue, ticket.priority, wanted["first_response"], wanted["resolution"])
    if before != (wanted["first_response"], wanted["resolution"]):
        await events.add(tx, ticket_id, actor, "sla.recomputed",
                            {**wanted, "queue": ticket.queue, "priority": ticket.priority})
    await _schedule(tx, config, ticket_id, moment)


async def status_changed(
    tx: Txn, config: Config, ticket_id: int, old: str, new: str, *, now: datetime | None = None, actor: str = "system"
) -> None:
    """Pause while waiting, stop (resolution met) when done, run again when the ticket is active."""
    clock = await store.get(tx, ticket_id)
    if clock is None or old == new:
        return
    moment = _now(tx, now)
    hours = hours_for(config, clock.queue)
    if new in STOPPED:
        if clock.running_since is not None:
            await store.pause(tx, ticket_id, used_at(clock, moment, hours))
        await _cancel(tx, ticket_id)
        resolution = clock.resolution
        if new in CLOSED_STATUSES and resolution.met_at is None and resolution.minutes is not None:
            late = resolution.breached is not None or used_at(clock, moment, hours) > resolution.minutes
            await store.resolved(tx, ticket_id, moment, late)
            await events.add(tx, ticket_id, actor, "sla.resolution_met", {"late": late})
        elif new in PAUSED_STATUSES:
            await events.add(tx, ticket_id, actor, "sla.paused", {"status": new})
        return
    if clock.running_since is None:
        await store.resume(tx, ticket_id, moment)
        await events.add(tx, ticket_id, actor, "sla.resumed", {"status": new, "after": old})
    await _schedule(tx, config, ticket_id, moment)


async def first_response_sent(tx: Txn, ticket_id: int, at: datetime) -> None:
    """An agent's reply reached the relay: the first-response target is met (once)."""
    clock = await store.get(tx, ticket_id)
    if clock is None or clock.first_response.met_at is not None or clock.first_response.minutes is None:
        return
    due = clock.first_response.due
    late = clock.first_response.breached is not None or (due is not None and at > datetime.fromisoformat(due))
    await store.first_response_met(tx, ticket_id, at, late)
    for stage in STAGES:
        await timers.cancel(tx, kind("first_response", stage), ticket_id)
    await events.add(tx, ticket_id, "system", "sla.first_response_met", {"late": late})


async def _cancel(tx: Txn, ticket_id: int) -> None:
    for timer_kind in KINDS:
        await timers.cancel(tx, timer_kind, ticket_id)


async def _schedule(tx: Txn, config: Config, ticket_id: int, now: datetime, *, fresh: bool = False) -> None:
    """Replace the ticket's SLA timers with ones for the current state; store the deadlines.

    fresh: the clock was created just now, in this transaction, so it has no timers to replace.
    """
    if not fresh:
        await _cancel(tx, ticket_id)
    clock = await store.get(tx, ticket_id)
    assert clock is not None
    since = clock.running_since
    hours = hours_for(config, clock.queue)
    share = config.tickets.sla_warning_percent / 100
    dues: dict[str, str | None] = {}
    for name in TARGETS:
        target = clock.target(name)
        limit = target.minutes
        if since is None or limit is None or target.met_at is not None:
            dues[name] = None
            continue
        used = clock.used_minutes
        dues[name] = timers.iso(add_minutes(since, limit - used, hours))
        for stage, threshold in (("warning", limit * share), ("breach", float(limit))):
            if target.flagged(stage) is None:
                await timers.add(tx, kind(name, stage), ticket_id, add_minutes(since, threshold - used, hours))
    await store.set_dues(tx, ticket_id, dues["first_response"], dues["resolution"])


async def fire(tx: Txn, config: Config, timer: timers.Timer, *, now: datetime | None = None) -> None:
    """A warning or breach timer fell due: check it still holds, mark it, tell the agents once."""
    _, target, stage = timer.kind.split(".")
    moment = _now(tx, now)
    clock = await store.get(tx, timer.ref)
    if clock is None or clock.target(target).met_at is not None or clock.target(target).flagged(stage) is not None:
        return
    if target == "first_response":
        sent = await store.first_reply_sent_at(tx, timer.ref)
        if sent:  # answered, though the sender's hook did not record it (an older version sent it)
            await first_response_sent(tx, timer.ref, sent)
            return
    limit = clock.target(target).minutes
    if clock.running_since is None or limit is None:
        return  # paused or no target: resuming schedules anew
    hours = hours_for(config, clock.queue)
    threshold = limit * (config.tickets.sla_warning_percent / 100 if stage == "warning" else 1.0)
    used = used_at(clock, moment, hours)
    if used + _EPSILON < threshold:
        # Early (the config's hours changed since it was scheduled): come back when it is due.
        await timers.add(tx, timer.kind, timer.ref, add_minutes(moment, threshold - used, hours))
        return
    await store.flag(tx, timer.ref, target, stage, moment)
    due = clock.target(target).due
    if stage == "warning" and used >= limit:
        # Already past the deadline itself: the breach notice says it all, one mail not two.
        await events.add(tx, timer.ref, "system", "sla.warning_skipped", {"target": target, "due": due})
        return
    told = await _tell(tx, config, timer.ref, target, stage, due, limit, hours)
    await events.add(tx, timer.ref, "system", "sla.warning" if stage == "warning" else "sla.breached",
                        {"target": target, "due": due, "minutes": limit, "told": told})


async def _tell(
    tx: Txn, config: Config, ticket_id: int, target: str, stage: str, due: str | None, limit: int, hours: Hours | None
) -> list[str]:
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, ticket_id)
    agents: list[AgentConfig] = mailer.agents_to_tell(info)
    if stage == "breach" and info.queue is not None:
        # Escalation goes to the whole queue (the assignee too), not only to whoever was late.
        agents = [*agents, *(a for a in config.queue_members(info.queue) if not a.away and a not in agents)]
    zone = hours.zone if hours is not None else ZoneInfo(config.gateway.timezone)
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
    clock = await store.get(tx, ticket_id)
    if clock is None:
        return None
    moment = _now(tx, now)
    hours = hours_for(config, clock.queue)
    used = used_at(clock, moment, hours)
    out: dict[str, Any] = {
        "queue": clock.queue, "priority": clock.priority, "started_at": clock.started_at,
        "running": clock.running_since is not None, "business_hours": hours is not None,
        "used_minutes": round(used, 1),
    }
    for name in TARGETS:
        target = clock.target(name)
        limit, met = target.minutes, target.met_at
        out[name] = {
            "minutes": limit, "due": target.due, "met_at": met, "late": target.late,
            "left_minutes": None if limit is None or met else round(limit - used, 1),
            "warned_at": target.warned, "breached_at": target.breached,
        }
    return out
