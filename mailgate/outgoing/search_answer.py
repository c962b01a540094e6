"""The answer to an agent's [search:…]: one mail listing the tickets found, best match first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailgate.config import AgentConfig, Config
from mailgate.outgoing.notices import mailer_for
from mailgate.outgoing.templates import context
from mailgate.outgoing.ticketless import queue_to_agent
from mailgate.store import Txn
from mailgate.store.search import Hit

TEMPLATE = "search_results"


def lines(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """What the template shows of each hit (the `[list]` fields, and the snippet of the matching message)."""
    return [{"number": h.number, "subject": h.subject, "status": h.status, "priority": "", "queue": h.queue or "",
             "assignee": h.assignee or "", "snippet": h.snippet, "direction": h.direction} for h in hits]


async def send(
    tx: Txn, config: Config, agent: AgentConfig, query: str, hits: Sequence[Hit], total: int, *, complete: bool = True
) -> int:
    """Queue the results to the agent's own address; its Reply-To is their command address (search again)."""
    mailer = mailer_for(tx, config)
    language = agent.language or config.gateway.default_language
    outcome = {"listing": query, "tickets": lines(hits), "more": max(total - len(hits), 0),
               "complete": complete, "ticketless": True}
    rendered = mailer.templates.render(TEMPLATE, language, context(
        gateway=config.gateway.name, number=0, tag=config.gateway.ticket_tag, subject="",
        agent_name=agent.name, agent_id=agent.id, outcome=outcome,
    ))
    return await queue_to_agent(mailer, tx, config, agent, rendered, language=language)
