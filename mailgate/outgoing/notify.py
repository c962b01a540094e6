"""Telling agents: new mail on a ticket, an internal note, a reply held because the customer wrote again."""

from __future__ import annotations

import logging
from typing import Any

from mailgate import tokens
from mailgate.config import AgentConfig
from mailgate.mail import identity
from mailgate.models import ParsedMail
from mailgate.outgoing import attachments, compose
from mailgate.outgoing.writer import TicketInfo, Writer
from mailgate.store import Txn, message_marks
from mailgate.store.outbox import Acted
from mailgate.store.ticket_facts import newest_inbound_row

log = logging.getLogger("mailgate.outbound")


async def notify_agents(
    w: Writer, tx: Txn, info: TicketInfo, template: str, mail: ParsedMail, parties: dict[str, Any] | None = None
) -> list[int]:
    """The customer's mail to the agents who hear of the ticket; Reply-To answers the customer."""
    sender = mail.from_[0] if mail.from_ else None
    shown = f"{sender.name} <{sender.address}>" if sender and sender.name else (sender.address if sender else "")
    posing = identity.sender_warning(sender.name, sender.address) if sender else ""
    if sender and posing:
        log.info("outbound.sender_name_warning ticket=%s shown=%s address=%s", info.number, posing, sender.address)
    if sender and identity.agent_by_address(w.config, sender.address) is not None:
        shown += await unproven_mark(tx, info.id)
    agents = await w.recipients(tx, info)
    files, listing = await _files_of(w, tx, info, mail) if agents else ((), None)
    ids = []
    for agent in agents:
        ids.append(await w.queue_mail(
            tx, info, kind="notify", template=template, to_name=agent.name, to_address=agent.addresses[0],
            language=w.agent_language(info, agent), auto_kind="auto-generated",
            reply_token=tokens.Token(tokens.AGENT_REPLY, info.number, agent.id),
            data=w.data(info, agent_name=agent.name, agent_id=agent.id, message_text=mail.reply_text or mail.text,
                        message_from=shown, parties=parties, files=listing),
            files=files,
        ))
    return ids


async def unproven_mark(tx: Txn, ticket_id: int) -> str:
    """" (unproven: …)" when the ticket's newest inbound mail named an agent it did not prove to be.

    A From is the easiest header to forge: a colleague reading "from anna@…" takes it as Anna's.
    """
    row = await newest_inbound_row(tx, ticket_id)
    agent = await message_marks.unproven_agent(tx, row) if row is not None else None
    return f" (unproven: not verified as agent {agent})" if agent else ""


async def _files_of(
    w: Writer, tx: Txn, info: TicketInfo, mail: ParsedMail
) -> tuple[tuple[compose.File, ...], dict[str, Any] | None]:
    """The files of the inbound mail just stored, for its notification: attached up to the cap, else listed."""
    if not mail.attachments:
        return (), None
    # This runs in the transaction that stored the mail: its row is the ticket's newest inbound one.
    row = await newest_inbound_row(tx, info.id)
    if row is None:
        return (), None
    files, listing = await attachments.of_message(tx, w.config, info.id, row)
    if listing["entries"]:
        log.info("outbound.notify_files ticket=%s attached=%s listed=%s", info.number, len(files), listing["left"])
    return files, listing


async def notify_note(w: Writer, tx: Txn, info: TicketInfo, author: AgentConfig, text: str) -> list[int]:
    """An internal note, to the agents of the ticket but its author; Reply-To adds a note, never a reply."""
    ids = []
    for agent in await w.recipients(tx, info):
        if agent.id == author.id:
            continue
        ids.append(await w.queue_mail(
            tx, info, kind="notify", template="notify_note", to_name=agent.name, to_address=agent.addresses[0],
            language=w.agent_language(info, agent), auto_kind="auto-generated",
            reply_token=tokens.Token(tokens.AGENT_NOTE, info.number, agent.id),
            data=w.data(info, agent_name=agent.name, agent_id=agent.id, message_text=text, message_from=author.name),
        ))
    return ids


async def held_notice(w: Writer, tx: Txn, info: TicketInfo, row: Acted, mail: ParsedMail) -> None:
    """The customer wrote again before the agent's reply went: it is held, and its agent asked to confirm."""
    agent = w.config.agent(row.agent) if row.agent else None
    if agent is None:
        log.warning("outbound.held_without_agent outbox=%s agent=%s", row.id, row.agent)
        return
    await w.queue_mail(
        tx, info, kind="held", template="held", to_name=agent.name, to_address=agent.addresses[0],
        language=w.agent_language(info, agent), auto_kind="auto-generated",
        reply_token=tokens.Token(tokens.AGENT_REPLY, info.number, agent.id),  # "#send" / "#cancel" work
        data=w.data(info, agent_name=agent.name, agent_id=agent.id, reply_text=row.text.strip(),
                    message_text=mail.reply_text or mail.text),
    )
