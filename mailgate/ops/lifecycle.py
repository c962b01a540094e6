"""Ticket life: status changes and their SLA effects, waiting and waking, customer replies that reopen or follow up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mailgate.config import Config
from mailgate.errors import Refused
from mailgate.models import CLOSED_STATUSES, Correlation, MailKind, ParsedMail, ThreadRule, TicketStatus
from mailgate.ops import sla
from mailgate.outgoing import notices as outbound
from mailgate.store import Txn, events, links, timers
from mailgate.store import tickets as ticket_store
from mailgate.store.sla import SlaTicket

log = logging.getLogger("mailgate.lifecycle")

WAKE = "snooze.wake"
WAITING = TicketStatus.WAITING
OPEN = TicketStatus.OPEN
FOLLOW_UP = "follow-up"
# A reply to a ticket in one of these states never changes it (merge and spam belong to others).
_UNTOUCHED = frozenset({TicketStatus.MERGED, TicketStatus.SPAM})
_MAX_CHAIN = 20  # follow-ups of follow-ups: a safety bound, not a real limit


def _now(tx: Txn, now: datetime | None) -> datetime:
    return (now or tx.now()).astimezone(UTC)


async def _status(tx: Txn, ticket_id: int) -> TicketStatus:
    ticket = await ticket_store.get(tx, ticket_id)
    if ticket is None:
        raise Refused(f"no ticket with id {ticket_id}")
    return ticket.status


# -- status ---------------------------------------------------------------------------------------


async def status_changed(
    tx: Txn, config: Config, ticket_id: int, old: str, new: str, *, actor: str, now: datetime | None = None
) -> None:
    """Call after any status change: ends a wait, remembers when it was resolved, moves the SLA clock."""
    if old == new:
        return
    moment = _now(tx, now)
    if old == WAITING:
        await timers.cancel(tx, WAKE, ticket_id)
        await ticket_store.update(tx, ticket_id, touch=False, snoozed_until=None)
    if new == TicketStatus.RESOLVED:
        await ticket_store.update(tx, ticket_id, touch=False, resolved_at=timers.iso(moment))
    await sla.status_changed(tx, config, ticket_id, old, new, now=moment, actor=actor)


async def set_status(
    tx: Txn, config: Config, ticket_id: int, status: str, *, actor: str, now: datetime | None = None,
    reason: str | None = None,
) -> str:
    """Change the status (with its event and hooks); returns the old one."""
    old = await _status(tx, ticket_id)
    if old == status:
        return old
    data: dict[str, Any] = {"from": old, "to": status}
    if reason:
        data["reason"] = reason
    await ticket_store.set_status(tx, ticket_id, TicketStatus(status), actor=actor, data=data)
    await status_changed(tx, config, ticket_id, old, status, actor=actor, now=now)
    return old


async def answered(tx: Txn, config: Config, ticket_id: int, *, actor: str, now: datetime | None = None) -> None:
    """An agent answered the customer: a ticket still "new" is open from now on (tags set any other status first)."""
    if await _status(tx, ticket_id) == "new":
        await set_status(tx, config, ticket_id, OPEN, actor=actor, now=now, reason="answered")
        log.info("ticket.answered ticket_id=%s status=new->open actor=%s", ticket_id, actor)


# -- waiting --------------------------------------------------------------------------------------


async def snooze(
    tx: Txn, config: Config, ticket_id: int, until: datetime, *, actor: str, now: datetime | None = None
) -> None:
    """The ticket leaves the inbox until `until`; the wake-up timer brings it back (status open)."""
    moment = _now(tx, now)
    if until.tzinfo is None:
        raise Refused("the wake-up time needs a time zone")
    if until <= moment:
        raise Refused(f"{until.isoformat()} is in the past")
    old = await _status(tx, ticket_id)
    if old in CLOSED_STATUSES:
        raise Refused(f"the ticket is {old}: only an open ticket can wait")
    await timers.cancel(tx, WAKE, ticket_id)
    await ticket_store.update(tx, ticket_id, snoozed_until=timers.iso(until))
    await ticket_store.set_status(tx, ticket_id, TicketStatus.WAITING, actor=actor, kind="ticket.snoozed",
                                  data={"from": old, "until": timers.iso(until)})
    await timers.add(tx, WAKE, ticket_id, until)
    if old != WAITING:
        await sla.status_changed(tx, config, ticket_id, old, WAITING, now=moment, actor=actor)


async def wake(tx: Txn, config: Config, ticket_id: int, *, actor: str, reason: str, now: datetime | None = None) -> bool:
    """A waiting ticket comes back (status open); False when it was not waiting."""
    if await _status(tx, ticket_id) != WAITING:
        return False
    await set_status(tx, config, ticket_id, OPEN, actor=actor, now=now, reason=reason)
    await events.add(tx, ticket_id, actor, "ticket.woken", {"reason": reason})
    return True


async def on_wake_timer(tx: Txn, config: Config, timer: timers.Timer, *, now: datetime | None = None) -> None:
    """The wake-up time came: open the ticket and tell its assignee (else its queue) it is back."""
    row = await ticket_store.get(tx, timer.ref)
    if row is None or row.status != WAITING:
        return  # woken already (a customer reply, an agent): the timer was only left over
    moment = _now(tx, now)
    until = datetime.fromisoformat(row.snoozed_until) if row.snoozed_until else moment
    if until > moment + timedelta(seconds=1):
        await timers.add(tx, WAKE, timer.ref, until)  # snoozed again meanwhile, by another process
        return
    await wake(tx, config, timer.ref, actor="system", reason="time", now=moment)
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, timer.ref)
    for agent in mailer.agents_to_tell(info):
        await mailer.queue_mail(
            tx, info, kind="notify", template="waiting_over", to_name=agent.name, to_address=agent.addresses[0],
            language=mailer.agent_language(info, agent), auto_kind="auto-generated",
            data=mailer.data(info, agent_name=agent.name, agent_id=agent.id),
        )


# -- customer replies -----------------------------------------------------------------------------


async def customer_reply(
    tx: Txn, config: Config, found: Correlation, mail: ParsedMail, *, actor: str, imported: bool,
    now: datetime | None = None,
) -> tuple[Correlation, int | None]:
    """Where a customer's reply to an existing ticket lands, after waking or reopening it.

    Returns the correlation to store the mail under and, when that says "new ticket", the id of
    the ticket it follows up (closed, or resolved longer than tickets.reopen_days ago).
    Automatic mail (bounces, out-of-office) and imported mail change nothing.
    """
    if found.ticket_id is None or imported or mail.kind is not MailKind.MESSAGE or _from_agent(config, mail):
        return found, None
    moment = _now(tx, now)
    ticket_id = found.ticket_id
    for _ in range(_MAX_CHAIN):
        row = await ticket_store.get(tx, ticket_id)
        if row is None or row.status in _UNTOUCHED:
            return found, None
        status = row.status
        if status == WAITING:
            await wake(tx, config, ticket_id, actor=actor, reason="customer-reply", now=moment)
        elif status == "pending":
            await set_status(tx, config, ticket_id, OPEN, actor=actor, now=moment, reason="customer-reply")
        elif status == "resolved" and _recent(config, row.resolved_at or row.updated_at, moment):
            await set_status(tx, config, ticket_id, OPEN, actor=actor, now=moment, reason="customer-reply")
            await events.add(tx, ticket_id, actor, "ticket.reopened", {"after": "resolved"})
        elif status in ("resolved", "closed", TicketStatus.DELETED):
            # An earlier reply may have opened a follow-up already: this one belongs there too.
            # A deleted ticket is never brought back silently by mail: the customer's new words get
            # a new ticket, linked to it, so an agent sees there was one (and may [restore] it).
            later = await links.latest_to(tx, ticket_id, FOLLOW_UP)
            if later is not None:
                ticket_id = later
                continue
            detail = f"reply to {status} ticket #{row.number}: a new ticket follows it up"
            return Correlation(None, ThreadRule.NEW, detail), ticket_id
        if ticket_id == found.ticket_id:
            return found, None
        return Correlation(ticket_id, found.rule, f"{found.detail}; follow-up ticket of a closed one"), None
    log.warning("lifecycle.follow_up_chain_too_long ticket=%s", found.ticket_id)
    return found, None


def _from_agent(config: Config, mail: ParsedMail) -> bool:
    """An agent's mail is never a customer reply, whatever the agent-mail path decides about it."""
    sender = mail.from_[0].address.lower() if mail.from_ else ""
    return any(sender in agent.addresses for agent in config.agents)


def _recent(config: Config, resolved_at: str | None, now: datetime) -> bool:
    if not resolved_at:
        return True
    return now - datetime.fromisoformat(resolved_at) <= timedelta(days=config.tickets.reopen_days)


async def opened(
    tx: Txn, config: Config, ticket_id: int, *, follows: int | None, actor: str, now: datetime | None = None,
    placed: SlaTicket | None = None,
) -> None:
    """A routed new ticket: start its SLA clock; link it to the ticket it follows up, with an event on both.

    placed: the ticket as routing just wrote it, when the caller has it (saves reading it back).
    """
    await sla.start(tx, config, ticket_id, now=now, ticket=placed)
    if follows is None:
        return
    await links.add(tx, ticket_id, follows, FOLLOW_UP)
    await events.add(tx, ticket_id, actor, "ticket.follows_up", {"ticket": await ticket_store.number_of(tx, follows)})
    await events.add(tx, follows, actor, "ticket.followed_up", {"ticket": await ticket_store.number_of(tx, ticket_id)})


async def linked(tx: Txn, ticket_id: int) -> list[links.Link]:
    """The tickets linked to this one, both ways."""
    return await links.of_ticket(tx, ticket_id)


# -- the daemon's timers --------------------------------------------------------------------------


def register_timers(registry: timers.Registry, current_config: Callable[[], Config]) -> None:
    """Handlers for the wake-up and SLA timers; the config is read at firing time (it may be reloaded)."""

    async def on_wake(tx: Txn, timer: timers.Timer) -> None:
        await on_wake_timer(tx, current_config(), timer)

    async def on_sla(tx: Txn, timer: timers.Timer) -> None:
        await sla.fire(tx, current_config(), timer)

    registry.register(WAKE, on_wake)
    for kind in sla.KINDS:
        registry.register(kind, on_sla)
