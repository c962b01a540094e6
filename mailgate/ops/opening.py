"""Tickets agents open: [new] mails the customer, [behalf:…] records a phone case; the agent holds and follows it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailgate.commands import CHANNELS, Command, Parsed, TagError
from mailgate.commands.registry import NEW_TICKET, WITH_NEW
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.models import Address, ParsedMail, TicketStatus
from mailgate.ops import apply, confirm, lifecycle, tickets, watchers
from mailgate.ops.base import Change, actor, add_message, my_queues
from mailgate.outgoing import guard as loops
from mailgate.outgoing import notices as outbound
from mailgate.outgoing import outbox
from mailgate.store import Txn, events, savepoints
from mailgate.store import outbox as outbox_rows
from mailgate.store import tickets as ticket_store


@dataclass(frozen=True, slots=True)
class Opened:
    ticket_id: int
    number: int
    changes: list[Change]
    outbox_id: int | None  # the mail to the customer ([new])
    message_row: int | None


# -- opening a ticket -----------------------------------------------------------------------------


def _queue_for(config: Config, agent: AgentConfig, queue: str | None) -> str:
    if queue is not None:
        if config.queue(queue) is None:
            known = ", ".join(q.name for q in config.queues) or "none configured"
            raise Refused(f"unknown queue {queue!r} (known: {known})")
        return queue
    mine = my_queues(config, agent)
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise Refused("a new ticket needs a queue: add [queue:NAME] (you are in no queue)")
    raise Refused(f"a new ticket needs a queue: add [queue:NAME] (you are in {', '.join(mine)})")


def _customer(config: Config, address: str) -> str:
    address = address.strip().strip("<>").lower()
    if "@" not in address:
        raise Refused(f"{address!r} is not an email address")
    if any(address in a.addresses for a in config.agents):
        raise Refused(f"{address} is an agent's address, not a customer's")
    if loops.base(address) in config.gateway.addresses or loops.is_machine_address(address):
        raise Refused(f"{address} is not a person's address")
    return address


async def open_ticket(
    tx: Txn, config: Config, agent: AgentConfig, *, customer: str, subject: str, text: str, queue: str | None,
    send: bool, channel: str | None = None, name: str = "", message_id: str | None = None,
    spool_id: int | None = None, content_key: str | None = None, attachments: Sequence[Any] = (),
) -> Opened:
    """A ticket an agent opens for a customer: send=True mails them (outbound, email); else a case taken on
    their behalf (inbound, phone unless told), never mailed. The agent holds it and follows it."""
    subject = " ".join(subject.split())
    if not subject:
        raise Refused("a new ticket needs a subject: write it after the tags")
    text = text.strip()
    address = _customer(config, customer)
    queue_name = _queue_for(config, agent, queue)
    channel = channel or ("email" if send else "phone")
    if channel not in CHANNELS:
        raise Refused(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
    if send and channel != "email":
        raise Refused("[new] mails the customer, so its channel is email; use [behalf:…] for a phone case")
    if send and not text:
        raise Refused("[new] needs the text to send the customer in the mail body")
    who = actor(agent)
    contact_id = await tickets.contact_for(tx, Address(name, address))
    ref = await tickets.open_ticket(tx, subject=subject, contact_id=contact_id,
                                    first_number=config.gateway.first_ticket_number, actor=who, channel=channel,
                                    direction="outbound" if send else "inbound")
    await tickets.add_party(tx, ref.id, address, "requester")
    await ticket_store.update(tx, ref.id, touch=False, queue=queue_name, assignee=agent.id)
    await events.add(tx, ref.id, who, "ticket.opened_by_agent",
                        {"agent": agent.id, "customer": address, "queue": queue_name, "channel": channel,
                         "direction": "outbound" if send else "inbound"})
    await lifecycle.opened(tx, config, ref.id, follows=None, actor=who)  # the SLA clock
    # Mailed: now the customer's turn (the clock pauses). On their behalf: the agent works on it.
    await lifecycle.set_status(tx, config, ref.id, TicketStatus.PENDING if send else TicketStatus.OPEN, actor=who)
    row = await add_message(
        tx, ref.id, agent, direction="agent" if send else "note", subject=subject, text=text, reply_text=text,
        message_id=message_id or f"mg.agent.{secrets.token_hex(8)}@{config.message_id_domain}",
        spool_id=spool_id, content_key=content_key, attachments=attachments,
    ) if text or spool_id is not None else None
    outbox_id = None
    if send:
        outbox_id = await outbox.queue_agent_reply(tx, outbound.mailer_for(tx, config), ref.id, agent.id, text)
    await watchers.acted(tx, ref.id, agent.id)
    what = f"#{ref.number} opened in {queue_name}, {'mail to' if send else f'{channel} case for'} {address}"
    return Opened(ref.id, ref.number, [Change("behalf" if not send else "new", what, ticket=ref.id)], outbox_id, row)


async def open_by_mail(
    tx: Txn, config: Config, agent: AgentConfig, parsed: Parsed, mail: ParsedMail, *, spool_id: int, key: str,
    ticket_id: int | None, to_note_address: bool,
) -> Opened | None:
    """[new] [to:…] or [behalf:…] in an agent's mail: all or nothing, one confirmation or one refusal (None)."""
    errors = list(parsed.errors)
    new, behalf = parsed.get("new"), parsed.get("behalf")
    to, channel, queue = parsed.get("to"), parsed.get("channel"), parsed.get("queue")
    if ticket_id is not None or to_note_address:
        errors.append(TagError((new or behalf or Command("new")).raw,
                               "opens a new ticket: send it to your command address, not to a ticket"))
    if new is not None and behalf is not None:
        errors.append(TagError(behalf.raw, "[new] mails the customer, [behalf:…] does not: use one of them"))
    elif new is not None and to is None:
        errors.append(TagError(new.raw, "needs the customer's address: add [to:customer@example.com]"))
    elif behalf is not None and to is not None:
        errors.append(TagError(to.raw, "[behalf:…] names the customer already"))
    for command in parsed.commands:
        if command.name not in NEW_TICKET | {"queue"} | WITH_NEW:
            errors.append(TagError(command.raw, "cannot be combined with [new] or [behalf:…]"))
    opened: Opened | None = None
    changes: list[Change] = []
    if not errors:
        await savepoints.begin(tx, "agent_tickets")
        try:
            opened = await open_ticket(
                tx, config, agent, customer=(to or behalf or Command("to")).value, subject=parsed.subject,
                text=parsed.body, queue=queue.value if queue else None, send=new is not None,
                channel=channel.value if channel else None, message_id=mail.message_id, spool_id=spool_id,
                content_key=key, attachments=mail.attachments,
            )
            rest = [c for c in parsed.commands if c.name in WITH_NEW]
            changes = [*opened.changes, *await apply.run(tx, config, opened.ticket_id, rest, agent, acted=False)]
        except (Refused, ValueError) as exc:
            await savepoints.rollback(tx, "agent_tickets")
            errors.append(TagError((new or behalf or Command("new")).raw, str(exc)))
            opened = None
        await savepoints.release(tx, "agent_tickets")
    if errors or opened is None:
        refused = confirm.Outcome(errors=[str(e) for e in errors], ticketless=True)
        await confirm.tell(tx, config, agent, None, "agent_refused", refused, False)
        return None
    outcome = confirm.Outcome(note=new is None)
    outcome.changes = [f"[{c.command}] {c.summary}" for c in changes]
    if opened.outbox_id is not None:
        due = await outbox_rows.not_before(tx, opened.outbox_id)
        outcome.reply_to = [(to or Command("to")).value]
        outcome.reply_at = confirm.local_time(config, datetime.fromisoformat(due))
    await confirm.tell(tx, config, agent, opened.ticket_id, "agent_done", outcome, new is None)
    return opened
