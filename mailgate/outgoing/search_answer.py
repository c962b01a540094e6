"""The answer to an agent's [search:…]: one mail listing the tickets found, best match first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailgate import tokens
from mailgate.config import AgentConfig, Config
from mailgate.outgoing import compose, outbox
from mailgate.outgoing.notices import mailer_for
from mailgate.outgoing.templates import context
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
    token = tokens.Token(tokens.AGENT_REPLY, 0, agent.id)
    sender = config.gateway.addresses[0]
    message_id = tokens.message_id(mailer.secret, mailer.domain, token)
    now = tx.now()
    outbox_id = await outbox.insert(tx, outbox.NewMail(
        ticket_id=None, kind="agent", automatic=True, agent=agent.id, message_id=message_id,
        from_name=config.gateway.name, from_address=sender, in_reply_to=None, rcpt_to=agent.addresses[0],
        subject=rendered.subject, text=rendered.text, not_before=now,
    ))
    # A search answer quotes customers' words (the snippets): it goes to the agent's configured
    # address only, never to a From or Reply-To of the mail that asked.
    message = compose.compose(compose.Outgoing(
        from_name=config.gateway.name, from_address=sender, to_name=agent.name, to_address=agent.addresses[0],
        reply_to=tokens.reply_address(mailer.secret, sender, token), subject=rendered.subject,
        message_id=message_id, text=rendered.text, html=rendered.html, marker="", automatic=True,
        auto_kind="auto-generated", language=language,
    ))
    mail_from = tokens.reply_address(mailer.secret, mailer.bounce_base, tokens.Token(tokens.BOUNCE, outbox_id))
    await outbox.set_wire(tx, outbox_id, mail_from, compose.to_bytes(message), now)
    return outbox_id
