"""Put a routed new ticket in its queue: pick the assignee (none/round-robin/least-open), store tags and the trace."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mailgate.config import AgentConfig, Config
from mailgate.ops import tickets
from mailgate.rules import Routing
from mailgate.store import Txn, now_iso

# Statuses in which a ticket no longer counts towards an agent's load.
CLOSED_STATUSES = ("resolved", "closed", "merged", "spam")


class UnknownAgent(ValueError):
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
        last = await tx.value("SELECT last_agent FROM queue_rotation WHERE queue = ?", (queue.name,))
        ids = [a.id for a in members]
        # Walk the member list from the one after the last assignee, skipping those away; a
        # member who left the queue restarts the round at the top.
        start = ids.index(last) + 1 if last in ids else 0
        order = members[start:] + members[:start]
        agent = next(a for a in order if not a.away)
        await tx.execute(
            "INSERT INTO queue_rotation (queue, last_agent, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (queue) DO UPDATE SET last_agent = excluded.last_agent, updated_at = excluded.updated_at",
            (queue.name, agent.id, now_iso()),
        )
        return Assignment(agent.id, "round-robin", f"round-robin in queue {queue.name!r} after {last or 'nobody'!r}")
    placeholders = ", ".join("?" for _ in present)
    closed = ", ".join("?" for _ in CLOSED_STATUSES)
    rows = await tx.all(
        f"SELECT assignee, COUNT(*) AS n FROM tickets WHERE assignee IN ({placeholders})"
        f" AND status NOT IN ({closed}) AND quarantined = 0 GROUP BY assignee",
        [*(a.id for a in present), *CLOSED_STATUSES],
    )
    load = {r["assignee"]: int(r["n"]) for r in rows}
    agent = min(present, key=lambda a: load.get(a.id, 0))  # ties: the first in member order
    return Assignment(agent.id, "least-open", f"least open tickets in queue {queue.name!r} ({load.get(agent.id, 0)})")


async def apply(tx: Txn, config: Config, ticket_id: int, routing: Routing, actor: str = "system") -> Assignment:
    """Write a routing decision onto a new ticket: fields, tags, assignee, trace, events."""
    if routing.quarantined:
        assignment = Assignment(None, "none", "quarantined tickets are not assigned")
    else:
        assignment = await choose(tx, config, routing.queue, routing.assignee)
    await tx.execute(
        "UPDATE tickets SET queue = ?, priority = ?, category = ?, assignee = ?, quarantined = ?,"
        " ack_suppressed = ?, detected_language = ? WHERE id = ?",
        (
            routing.queue, routing.priority, routing.category, assignment.agent, int(routing.quarantined),
            int(routing.ack_suppressed), routing.language, ticket_id,
        ),
    )
    await tx.executemany(
        "INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) VALUES (?, ?)", [(ticket_id, t) for t in routing.tags]
    )
    trace = routing.to_json(full=False)
    trace["assignment"] = {"agent": assignment.agent, "strategy": assignment.strategy, "why": assignment.why}
    await tx.execute(
        "INSERT OR REPLACE INTO ticket_routing (ticket_id, decided_at, trace) VALUES (?, ?, ?)",
        (ticket_id, now_iso(), json.dumps(trace, ensure_ascii=False)),
    )
    await tickets.event(
        tx,
        ticket_id,
        actor,
        "ticket.routed",
        {
            "queue": routing.queue, "priority": routing.priority, "category": routing.category,
            "tags": list(routing.tags), "rules": routing.matched, "quarantined": routing.quarantined,
            "ack_suppressed": routing.ack_suppressed,
        },
    )
    if assignment.agent is not None:
        await tickets.event(
            tx, ticket_id, actor, "ticket.assigned", {"assignee": assignment.agent, "strategy": assignment.strategy}
        )
    elif assignment.strategy == "refused":
        await tickets.event(tx, ticket_id, actor, "ticket.assign_refused", {"why": assignment.why})
    return assignment


async def routing_of(tx: Txn, ticket_id: int) -> dict[str, Any] | None:
    """The stored routing of a ticket (fields, tags, trace), or None for tickets made before routing."""
    row = await tx.one(
        "SELECT t.category, t.quarantined, t.ack_suppressed, t.detected_language, r.trace"
        " FROM tickets t LEFT JOIN ticket_routing r ON r.ticket_id = t.id WHERE t.id = ?",
        (ticket_id,),
    )
    if row is None:
        return None
    tags = [r["tag"] for r in await tx.all("SELECT tag FROM ticket_tags WHERE ticket_id = ? ORDER BY tag", (ticket_id,))]
    return {
        "category": row["category"],
        "tags": tags,
        "quarantined": bool(row["quarantined"]),
        "ack_suppressed": bool(row["ack_suppressed"]),
        "detected_language": row["detected_language"],
        "routing": json.loads(row["trace"]) if row["trace"] else None,
    }
