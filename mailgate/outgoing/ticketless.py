"""A mail to an agent about no ticket: [list], [search:…], [report:…], a refused command mail.

Always to the agent's configured address, never to a From or Reply-To of the mail that asked: such
mail lists customers' tickets and words. Its Reply-To is the agent's command address, so answering
it asks again.
"""

from __future__ import annotations

from mailgate import tokens
from mailgate.config import AgentConfig, Config
from mailgate.outgoing import compose
from mailgate.outgoing.templates import Rendered
from mailgate.outgoing.writer import Writer
from mailgate.store import Txn
from mailgate.store import outbox as rows
from mailgate.store.outbox_ids import reserve_id


async def queue_to_agent(
    writer: Writer, tx: Txn, config: Config, agent: AgentConfig, rendered: Rendered, *, language: str,
    kind: str = "agent",
) -> int:
    """Compose with the VERP return path of the row id it reserves, insert, schedule now; returns the outbox id."""
    token = tokens.Token(tokens.AGENT_REPLY, 0, agent.id)
    sender = config.gateway.addresses[0]
    message_id = tokens.message_id(writer.secret, writer.domain, token)
    now = tx.now()
    outbox_id = await reserve_id(tx)
    mail_from = tokens.reply_address(writer.secret, writer.bounce_base, tokens.Token(tokens.BOUNCE, outbox_id))
    raw = compose.wire(compose.Outgoing(
        from_name=config.gateway.name, from_address=sender, to_name=agent.name, to_address=agent.addresses[0],
        reply_to=tokens.reply_address(writer.secret, sender, token), subject=rendered.subject,
        message_id=message_id, text=rendered.text, html=rendered.html, marker="", automatic=True,
        auto_kind="auto-generated", language=language, date=now,
    ))
    return await rows.insert(tx, rows.NewMail(
        ticket_id=None, kind=kind, automatic=True, agent=agent.id, message_id=message_id,
        from_name=config.gateway.name, from_address=sender, in_reply_to=None, rcpt_to=agent.addresses[0],
        subject=rendered.subject, text=rendered.text, not_before=now,
    ), outbox_id=outbox_id, mail_from=mail_from, raw=raw)
