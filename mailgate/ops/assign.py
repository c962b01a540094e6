"""Put a routed new ticket in its queue: pick the assignee (none/round-robin/least-open), store tags and the trace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.rules import Routing
from mailgate.store import Txn, events, tags
from mailgate.store import assignment as store
from mailgate.store import tickets as ticket_store
from mailgate.store.sla import SlaTicket


class UnknownAgent(Refused):
    """An assignee that is not a configured agent: refused, never stored."""


def check_agent(config: Config, agent_id: str) -> AgentConfig:
    """The configured agent with this id, or UnknownAgent with a clear message."""
    agent = config.agent(agent_id)
    if agent is None:
        known = ", ".join(a.id for a in config.agents) or "none configured"
        raise UnknownAgent(f"no agent {agent_id!r} in the config (agents: {known})")
    return agent


@dataclass(frozen=True, slots=True)
class Assignment:
    agent: str | None
    strategy: str  # rule | none | round-robin | least-open | refused
    why: str
    placed: SlaTicket | None = None  # the ticket as apply() left it: the SLA clock starts from it


async def choose(tx: Txn, config: Config, queue_name: str | None, explicit: str | None = None) -> Assignment:
    """Who gets a new ticket: a rule's explicit agent, else the queue's strategy among members not away."""
    if explicit is not None:
        try:
            agent = check_agent(config, explicit)
        except UnknownAgent as exc:
            return Assignment(None, "refused", str(exc))
        note = " (marked away)" if agent.away else ""
        return Assignment(agent.id, "rule", f"a rule assigns {agent.id!r}{note}")
    queue = config.queue(queue_name) if queue_name else None
    if queue is None or queue.assignment == "none":
        return Assignment(None, "none", "no assignment strategy" if queue else "no queue")
    members = config.queue_members(queue)
    present = [a for a in members if not a.away]
    if not present:
        return Assignment(None, queue.assignment, f"no member of queue {queue.name!r} is available (all away)")
    if queue.assignment == "round-robin":
        last = await store.last_in_rotation(tx, queue.name)
        ids = [a.id for a in members]
        # Walk the member list from the one after the last assignee, skipping those away; a
        # member who left the queue restarts the round at the top.
        start = ids.index(last) + 1 if last in ids else 0
        order = members[start:] + members[:start]
        agent = next(a for a in order if not a.away)
        await store.rotate_to(tx, queue.name, agent.id)
        return Assignment(agent.id, "round-robin", f"round-robin in queue {queue.name!r} after {last or 'nobody'!r}")
    load = await store.open_load(tx, [a.id for a in present])
    agent = min(present, key=lambda a: load.get(a.id, 0))  # ties: the first in member order
    return Assignment(agent.id, "least-open", f"least open tickets in queue {queue.name!r} ({load.get(agent.id, 0)})")


async def decide(tx: Txn, config: Config, routing: Routing) -> Assignment:
    """Who gets a routed new ticket (before it is written: the choice reads no ticket row)."""
    if routing.quarantined:
        return Assignment(None, "none", "quarantined tickets are not assigned")
    return await choose(tx, config, routing.queue, routing.assignee)


def placement(routing: Routing, assignment: Assignment) -> ticket_store.Placed:
    """The ticket's routed fields, as the INSERT that opens it (or place()) writes them."""
    return ticket_store.Placed(
        routing.queue, routing.priority, routing.category, assignment.agent, routing.quarantined,
        routing.ack_suppressed, routing.language,
    )


async def apply(
    tx: Txn, config: Config, ticket_id: int, routing: Routing, actor: str = "system",
    earlier: Sequence[events.Event] = (),
) -> Assignment:
    """Write a routing decision onto a new ticket: fields, tags, assignee, trace, events.

    earlier: events of the ticket not written yet (its ticket.created), written first in the same statement.
    """
    assignment = await decide(tx, config, routing)
    placed = await ticket_store.place(tx, ticket_id, placement(routing, assignment))
    return await record(tx, ticket_id, routing, assignment, placed, actor=actor, earlier=earlier)


async def record(
    tx: Txn, ticket_id: int, routing: Routing, assignment: Assignment, placed: tuple[str, str] | None, *,
    actor: str = "system", earlier: Sequence[events.Event] = (),
) -> Assignment:
    """The rest of a routing decision once the ticket holds its fields: tags, trace, events.

    placed: the ticket's (status, created_at) after it was placed, which the SLA clock starts from.
    """
    if placed is not None:
        status, created_at = placed
        assignment = replace(assignment, placed=SlaTicket(routing.queue, routing.priority, status,
                                                          routing.quarantined, created_at))
    await tags.add(tx, ticket_id, routing.tags)
    trace = routing.to_json(full=False)
    trace["assignment"] = {"agent": assignment.agent, "strategy": assignment.strategy, "why": assignment.why}
    await store.save_trace(tx, ticket_id, trace)
    changes: list[events.Event] = [*earlier, (ticket_id, actor, "ticket.routed", {
        "queue": routing.queue, "priority": routing.priority, "category": routing.category,
        "tags": list(routing.tags), "rules": routing.matched, "quarantined": routing.quarantined,
        "ack_suppressed": routing.ack_suppressed,
    })]
    if assignment.agent is not None:
        changes.append((ticket_id, actor, "ticket.assigned",
                        {"assignee": assignment.agent, "strategy": assignment.strategy}))
    elif assignment.strategy == "refused":
        changes.append((ticket_id, actor, "ticket.assign_refused", {"why": assignment.why}))
    await events.add_many(tx, changes)
    return assignment


async def routing_of(tx: Txn, ticket_id: int) -> dict[str, Any] | None:
    """The stored routing of a ticket (fields, tags, trace), or None for tickets made before routing."""
    found = await store.routing_of(tx, ticket_id)
    return None if found is None else found.to_json()
