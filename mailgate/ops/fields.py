"""An agent sets a ticket's fields: status, priority, queue, category, tags, assignee, a snooze, held replies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.models import CLOSED_STATUSES, TicketStatus
from mailgate.ops import inbox, lifecycle, sla, tasks
from mailgate.ops.base import Change, actor, ticket, who
from mailgate.outgoing import notices as outbound
from mailgate.outgoing import outbox
from mailgate.store import Txn, events, tags, timers
from mailgate.store import tickets as ticket_store


async def set_status(tx: Txn, config: Config, ticket_id: int, status: str, agent: AgentConfig) -> Change:
    """A new status through the ticket's life rules (ends a wait, moves the SLA clock); resolved tells the customer."""
    new = TicketStatus(status)
    old = await lifecycle.set_status(tx, config, ticket_id, new, actor=actor(agent))
    if new is TicketStatus.RESOLVED and old != new:
        await outbound.notify_resolved(tx, config, ticket_id)
    if new in CLOSED_STATUSES and old != new:
        # Whoever resolves a ticket hears that tasks on it are still open: other queues still work on it.
        warning = await tasks.open_warning(tx, config, ticket_id)
        if warning:
            return Change("status", f"{old} → {new}; {warning}")
    return Change("status", f"{old} → {new}")


async def set_priority(tx: Txn, config: Config, ticket_id: int, priority: str, agent: AgentConfig) -> Change:
    row = await ticket(tx, ticket_id)
    await ticket_store.update(tx, ticket_id, priority=priority)
    await events.add(tx, ticket_id, actor(agent), "ticket.priority", {"from": row.priority, "to": priority})
    await sla.recompute(tx, config, ticket_id, actor=actor(agent))  # other targets for another priority
    return Change("priority", f"{row.priority} → {priority}")


async def set_queue(tx: Txn, config: Config, ticket_id: int, queue: str, agent: AgentConfig) -> Change:
    if config.queue(queue) is None:
        raise Refused(f"unknown queue {queue!r}")
    row = await ticket(tx, ticket_id)
    await ticket_store.update(tx, ticket_id, queue=queue)
    await events.add(tx, ticket_id, actor(agent), "ticket.queue", {"from": row.queue, "to": queue})
    await sla.recompute(tx, config, ticket_id, actor=actor(agent))  # the new queue's targets and hours
    return Change("queue", f"{row.queue or '-'} → {queue}")


async def set_category(tx: Txn, ticket_id: int, category: str, agent: AgentConfig) -> Change:
    row = await ticket(tx, ticket_id)
    await ticket_store.update(tx, ticket_id, category=category)
    await events.add(tx, ticket_id, actor(agent), "ticket.category", {"from": row.category, "to": category})
    return Change("category", f"{row.category or '-'} → {category}")


async def tag(tx: Txn, ticket_id: int, add: Sequence[str], remove: Sequence[str], agent: AgentConfig) -> Change:
    await tags.add(tx, ticket_id, add)
    await tags.remove(tx, ticket_id, remove)
    await events.add(tx, ticket_id, actor(agent), "ticket.tags", {"add": list(add), "remove": list(remove)})
    return Change("tag", ", ".join(await tags.of_ticket(tx, ticket_id)) or "(no tags)")


async def assign(tx: Txn, config: Config, ticket_id: int, assignee: str | None, agent: AgentConfig) -> Change:
    """Assign to an agent id, or None to unassign."""
    if assignee is not None and config.agent(assignee) is None:
        raise Refused(f"unknown agent {assignee!r}")
    row = await ticket(tx, ticket_id)
    await ticket_store.update(tx, ticket_id, assignee=assignee)
    await events.add(tx, ticket_id, actor(agent), "ticket.assigned" if assignee else "ticket.unassigned",
                     {"from": row.assignee, "assignee": assignee, "by": agent.id})
    if assignee is not None and assignee != agent.id and assignee != row.assignee:
        await _tell_assignee(tx, config, ticket_id, assignee, agent)
    return Change("assign", f"{row.assignee or '-'} → {assignee or '-'}")


async def _tell_assignee(tx: Txn, config: Config, ticket_id: int, assignee: str, by: AgentConfig) -> None:
    """The new assignee hears of it, with the customer's latest words; answering the mail answers the customer."""
    target = config.agent(assignee)
    if target is None or target.away:
        return  # away: like every other notification, it would only wait for them (or wake an out-of-office)
    await inbox.mail_ticket_to(tx, config, ticket_id, target, kind="notify", template="assigned",
                               outcome={"by": by.name})


async def take(tx: Txn, config: Config, ticket_id: int, agent: AgentConfig) -> Change:
    """Assigned to me; a new ticket is open from now on."""
    change = await assign(tx, config, ticket_id, agent.id, agent)
    if (await ticket(tx, ticket_id)).status is TicketStatus.NEW:
        await lifecycle.set_status(tx, config, ticket_id, TicketStatus.OPEN, actor=actor(agent))
    return Change("take", change.summary)


async def snooze(tx: Txn, config: Config, ticket_id: int, until: datetime, agent: AgentConfig | None) -> Change:
    """Status 'waiting' until then; the wake-up timer row is written in the same transaction (lifecycle)."""
    await lifecycle.snooze(tx, config, ticket_id, until, actor=who(agent)[0])
    return Change("snooze", f"waiting until {timers.iso(until)[:16].replace('T', ' ')} UTC")


async def wake(tx: Txn, config: Config, ticket_id: int, agent: AgentConfig | None, *, reason: str = "cli") -> bool:
    """A waiting ticket back to open before its time; False when it was not waiting."""
    return await lifecycle.wake(tx, config, ticket_id, actor=who(agent)[0], reason=reason)


async def cancel(tx: Txn, ticket_id: int, agent: AgentConfig) -> Change:
    """Withdraw this agent's replies on the ticket that have not gone yet."""
    count = await outbox.cancel_pending(tx, ticket_id, agent.id)
    return Change("cancel", f"{count} waiting repl{'y' if count == 1 else 'ies'} withdrawn" if count
                  else "nothing was waiting to be sent")


async def send_held(tx: Txn, ticket_id: int, agent: AgentConfig) -> Change:
    """Send the agent's held replies now (the customer wrote again while they waited)."""
    count = await outbox.release_held(tx, ticket_id, agent.id)
    return Change("send", f"{count} held repl{'y' if count == 1 else 'ies'} sent" if count else "nothing was held")
