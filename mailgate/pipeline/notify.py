"""The last step of a customer's mail: what it makes mailgate send, in the same transaction."""

from __future__ import annotations

import logging

from mailgate import tokens
from mailgate.models import MailKind
from mailgate.ops import watchers
from mailgate.pipeline import agent_mail
from mailgate.pipeline.context import MailContext, Outcome
from mailgate.store import events, storms

log = logging.getLogger("mailgate.process")


async def notify(m: MailContext) -> Outcome | None:
    """Acknowledgement, agents' notifications, bounce handling; held mail tells nobody but the agents, once."""
    assert m.ticket_id is not None
    if m.held:
        await _held(m, m.ticket_id)
        return None
    # Unread again for every agent; a ticket this mail opened has no watchers yet (agents become
    # watchers by acting on it), so there is nothing to mark.
    if m.mail.kind is not MailKind.BOUNCE and not m.new_ticket:
        await watchers.customer_wrote(m.tx, m.ticket_id)
    await m.mailer.after_inbound(m.tx, ticket_id=m.ticket_id, mail=m.mail, envelope=m.entry.envelope,
                                 new_ticket=m.new_ticket, joined=m.joined)
    if m.agent is not None and m.agent.unproven:  # an agent's From without proof: the real agent is told
        await agent_mail.tell_unproven(m.tx, m.config, m.agent, m.ticket_id, m.mail,
                                       imported=m.entry.envelope.imported, opened=m.new_ticket)
    return None


async def _held(m: MailContext, ticket_id: int) -> None:
    """Held mail: stored, nobody told; the first of a sender's hour is logged and summarised to the agents."""
    admission = m.admission
    assert admission is not None
    sender = m.storm_key
    await storms.remember_ticket(m.tx, sender, admission.hour, ticket_id)
    if not admission.first_held:
        return
    cap = m.config.storms.sender_mails_per_hour
    log.warning("storm.sender_capped sender=%s cap=%s ticket=%s", sender, cap, m.number)
    await events.add(m.tx, ticket_id, "system", "storm.held", {"sender": sender, "cap": cap})
    mailer = m.mailer
    info = await mailer.ticket(m.tx, ticket_id)
    shown_name = m.mail.from_[0].name if m.mail.from_ else ""
    for agent in await mailer.recipients(m.tx, info):
        await mailer.queue_mail(
            m.tx, info, kind="notify", template="storm_held", to_name=agent.name, to_address=agent.addresses[0],
            language=mailer.agent_language(info, agent), auto_kind="auto-generated",
            # Answering the notice adds a note: it must never mail the flooding sender.
            reply_token=tokens.Token(tokens.AGENT_NOTE, info.number, agent.id),
            data=mailer.data(info, agent_name=agent.name, agent_id=agent.id,
                             message_text=m.mail.reply_text or m.mail.text,
                             message_from=f"{shown_name} <{sender}>" if shown_name else sender),
        )
