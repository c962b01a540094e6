"""An agent's inbox: the next ticket to work on, the listings of their folders, a ticket or its files mailed to them."""

from __future__ import annotations

import logging
from typing import Any

from mailgate import tokens
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.models import CLOSED_STATUSES, TicketStatus
from mailgate.ops import lifecycle, watchers
from mailgate.ops.base import Change, actor, my_queues
from mailgate.outgoing import attachments as agent_files
from mailgate.outgoing import notices as outbound
from mailgate.store import Txn, events, messages
from mailgate.store import tickets as ticket_store
from mailgate.store.blobs import ticket_files

log = logging.getLogger("mailgate.agent_files")

RANK = ("urgent", "high", "normal")  # most urgent first; any other priority after these


async def next_ticket(tx: Txn, config: Config, agent: AgentConfig) -> Change:
    """The most urgent unassigned open ticket of my queues, assigned to me (one guarded claim)."""
    queues = my_queues(config, agent)
    if not queues:
        raise Refused("you are not a member of any queue")
    claimed = await ticket_store.claim_next(tx, agent.id, queues, RANK)
    if claimed is None:
        return Change("next", "no unassigned ticket in your queues")
    await events.add(tx, claimed.id, actor(agent), "ticket.assigned",
                     {"assignee": agent.id, "by": agent.id, "strategy": "next"})
    if claimed.status is TicketStatus.NEW:
        await lifecycle.set_status(tx, config, claimed.id, TicketStatus.OPEN, actor=actor(agent))
    return Change("next", f"#{claimed.number} is yours", ticket=claimed.id)


async def list_tickets(tx: Txn, config: Config, agent: AgentConfig, which: str, limit: int = 50) -> list[dict[str, Any]]:
    """The folders of a help-desk inbox: inbox, waiting, mine, all (not closed)."""
    found = await ticket_store.inbox(tx, agent.id, my_queues(config, agent), which, sorted(CLOSED_STATUSES), RANK,
                                     watchers.unread_sql(), limit)
    return [line.to_json() for line in found]


async def mail_ticket_to(
    tx: Txn, config: Config, ticket_id: int, target: AgentConfig, *, kind: str, template: str,
    outcome: dict[str, Any],
) -> None:
    """Mail an agent a ticket with the customer's latest words; its Reply-To answers the customer."""
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, ticket_id)
    last = await messages.latest_inbound(tx, ticket_id)
    shown = (f"{last.from_name} <{last.from_address}>" if last.from_name else last.from_address) if last else ""
    # Newly responsible, the agent has not seen the ticket's files yet: they come along, as in a notification.
    files, listing = await agent_files.of_ticket(tx, config, ticket_id)
    await mailer.queue_mail(
        tx, info, kind=kind, template=template, to_name=target.name, to_address=target.addresses[0],
        language=mailer.agent_language(info, target), auto_kind="auto-generated",
        reply_token=tokens.Token(tokens.AGENT_REPLY, info.number, target.id),
        data=mailer.data(info, agent_name=target.name, agent_id=target.id, message_from=shown,
                         message_text=(last.reply_text or last.text) if last else "", outcome=outcome,
                         files=listing),
        files=files,
    )


async def send_files(tx: Txn, config: Config, ticket_id: int, value: str, agent: AgentConfig) -> Change:
    """[files]: mail the asking agent the ticket's files (or those numbered); what does not fit is listed."""
    stored = await ticket_files(tx, ticket_id)
    if not stored:
        return Change("files", "the ticket has no files")
    wanted = [int(n) for n in value.split(", ")] if value else [f.number for f in stored]
    unknown = [n for n in wanted if not 1 <= n <= len(stored)]
    if unknown:
        raise Refused(f"[files:{value}]: no file {', '.join(map(str, unknown))} (the ticket has {len(stored)})")
    files, listing = await agent_files.attach(config, [stored[n - 1] for n in wanted])
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, ticket_id)
    outbox_id = await mailer.queue_mail(
        tx, info, kind="notify", template="files", to_name=agent.name, to_address=agent.addresses[0],
        language=mailer.agent_language(info, agent), auto_kind="auto-generated",
        reply_token=tokens.Token(tokens.AGENT_REPLY, info.number, agent.id),
        data=mailer.data(info, agent_name=agent.name, agent_id=agent.id, files=listing), files=files,
    )
    await events.add(tx, ticket_id, actor(agent), "ticket.files_sent",
                     {"outbox": outbox_id, "attached": len(files), "listed": listing["left"], "asked": value or "all"})
    log.info("agent_files.sent ticket=%s agent=%s attached=%s listed=%s", info.number, agent.id, len(files),
             listing["left"])
    return Change("files", f"{len(files)} of {len(wanted)} file{'' if len(wanted) == 1 else 's'} mailed to you"
                  + (f"; {listing['left']} listed, not attached" if listing["left"] else ""))
