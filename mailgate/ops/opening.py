"""Tickets agents open ([new] mails the customer, [behalf:…] records a phone case) and their task/follow tags."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailgate.commands import Command, Parsed, TagError
from mailgate.commands.life_tags import CHANNELS, NEW_TICKET
from mailgate.config import AgentConfig, Config
from mailgate.models import Address, ParsedMail
from mailgate.ops import agent as agent_ops
from mailgate.ops import lifecycle, tasks, tickets, watchers
from mailgate.ops.agent import Change, OpError, actor
from mailgate.outgoing import guard as loops
from mailgate.outgoing import notices as outbound
from mailgate.outgoing import outbox
from mailgate.spool import SpoolEntry
from mailgate.store import Row, Txn

if TYPE_CHECKING:
    from mailgate.mail.identity import Identity
    from mailgate.models import Correlation
    from mailgate.pipeline.agent_mail import Decision

# What may come along with [new] / [behalf:…], applied to the new ticket after it is opened.
_WITH_NEW = frozenset({"priority", "category", "tag", "assign", "take", "status", "follow", "unfollow"})
MINE = frozenset({"task", "follow", "unfollow"})  # applied through agent_ops.apply


@dataclass(frozen=True, slots=True)
class Opened:
    ticket_id: int
    number: int
    changes: list[Change]
    outbox_id: int | None  # the mail to the customer ([new])
    message_row: int | None


def prepare(parsed: Parsed) -> Parsed:
    """A [task:…] takes the mail's words as its text."""
    words = parsed.body.strip()
    return dataclasses.replace(parsed, commands=tuple(
        dataclasses.replace(c, text=words) if c.name == "task" else c for c in parsed.commands))


def check(config: Config, ticket: Row | None, cmds: Sequence[Command]) -> list[TagError]:
    """This module's tags on a mail about an existing ticket (or none): what would fail."""
    errors: list[TagError] = []
    for command in cmds:
        if command.name in NEW_TICKET:
            errors.append(TagError(command.raw, "only with [new] or [behalf:…], sent to your command address"))
        elif command.name == "done":
            errors.append(TagError(command.raw, "[done] closes a task: answer the task's mail with it"))
        elif command.name == "task" and ticket is not None:
            if config.queue(command.value) is None:
                known = ", ".join(q.name for q in config.queues) or "none configured"
                errors.append(TagError(command.raw, f"unknown queue {command.value!r} (known: {known})"))
            elif not command.text.strip():
                errors.append(TagError(command.raw, "a task needs its text: write it in the mail body"))
    return errors


async def apply(tx: Txn, config: Config, ticket_id: int, command: Command, agent: AgentConfig) -> Change:
    """[task:…], [follow], [unfollow] on an existing ticket (called by agent_ops.apply)."""
    match command.name:
        case "task":
            assert command.until is not None
            return await tasks.create(tx, config, ticket_id, command.value, command.until, command.text, agent)
        case "follow" | "unfollow":
            following = command.name == "follow"
            changed = await watchers.set_following(tx, ticket_id, agent.id, following)
            what = "you follow this ticket" if following else "you no longer follow this ticket"
            return Change(command.name, what if changed else f"{what} (already so)")
    raise OpError(f"{command.raw}: not handled here")


# -- opening a ticket -----------------------------------------------------------------------------


def _queue_for(config: Config, agent: AgentConfig, queue: str | None) -> str:
    if queue is not None:
        if config.queue(queue) is None:
            known = ", ".join(q.name for q in config.queues) or "none configured"
            raise OpError(f"unknown queue {queue!r} (known: {known})")
        return queue
    mine = agent_ops.my_queues(config, agent)
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise OpError("a new ticket needs a queue: add [queue:NAME] (you are in no queue)")
    raise OpError(f"a new ticket needs a queue: add [queue:NAME] (you are in {', '.join(mine)})")


def _customer(config: Config, address: str) -> str:
    address = address.strip().strip("<>").lower()
    if "@" not in address:
        raise OpError(f"{address!r} is not an email address")
    if any(address in a.addresses for a in config.agents):
        raise OpError(f"{address} is an agent's address, not a customer's")
    if loops.base(address) in config.gateway.addresses or loops.is_machine_address(address):
        raise OpError(f"{address} is not a person's address")
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
        raise OpError("a new ticket needs a subject: write it after the tags")
    text = text.strip()
    address = _customer(config, customer)
    queue_name = _queue_for(config, agent, queue)
    channel = channel or ("email" if send else "phone")
    if channel not in CHANNELS:
        raise OpError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
    if send and channel != "email":
        raise OpError("[new] mails the customer, so its channel is email; use [behalf:…] for a phone case")
    if send and not text:
        raise OpError("[new] needs the text to send the customer in the mail body")
    who = actor(agent)
    contact_id = await tickets.contact_for(tx, Address(name, address))
    ref = await tickets.open_ticket(tx, subject=subject, contact_id=contact_id,
                                    first_number=config.gateway.first_ticket_number, actor=who, channel=channel,
                                    direction="outbound" if send else "inbound")
    await tickets.add_party(tx, ref.id, address, "requester")
    await tx.execute("UPDATE tickets SET queue = ?, assignee = ? WHERE id = ?", (queue_name, agent.id, ref.id))
    await tickets.event(tx, ref.id, who, "ticket.opened_by_agent",
                        {"agent": agent.id, "customer": address, "queue": queue_name, "channel": channel,
                         "direction": "outbound" if send else "inbound"})
    await lifecycle.opened(tx, config, ref.id, follows=None, actor=who)  # the SLA clock
    # Mailed: now the customer's turn (the clock pauses). On their behalf: the agent works on it.
    await lifecycle.set_status(tx, config, ref.id, "pending" if send else "open", actor=who)
    row = await agent_ops.add_message(
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
    tx: Txn, config: Config, mail: ParsedMail, entry: SpoolEntry, key: str, found: Correlation, ident: Identity,
    agent: AgentConfig, parsed: Parsed, ticket_id: int | None,
) -> Decision:
    """[new] [to:…] or [behalf:…] in an agent's mail: all or nothing, one confirmation or one refusal."""
    from mailgate.pipeline import agent_mail  # builds on this module

    errors = list(parsed.errors)
    new, behalf = parsed.get("new"), parsed.get("behalf")
    to, channel, queue = parsed.get("to"), parsed.get("channel"), parsed.get("queue")
    if ticket_id is not None or ident.note:
        errors.append(TagError((new or behalf or Command("new")).raw,
                               "opens a new ticket: send it to your command address, not to a ticket"))
    if new is not None and behalf is not None:
        errors.append(TagError(behalf.raw, "[new] mails the customer, [behalf:…] does not: use one of them"))
    elif new is not None and to is None:
        errors.append(TagError(new.raw, "needs the customer's address: add [to:customer@example.com]"))
    elif behalf is not None and to is not None:
        errors.append(TagError(to.raw, "[behalf:…] names the customer already"))
    for command in parsed.commands:
        if command.name not in NEW_TICKET | {"queue"} | _WITH_NEW:
            errors.append(TagError(command.raw, "cannot be combined with [new] or [behalf:…]"))
    outcome = agent_mail._Outcome(ticketless=True)
    opened: Opened | None = None
    if not errors:
        await tx.execute("SAVEPOINT agent_tickets")
        try:
            opened = await open_ticket(
                tx, config, agent, customer=(to or behalf or Command("to")).value, subject=parsed.subject,
                text=parsed.body, queue=queue.value if queue else None, send=new is not None,
                channel=channel.value if channel else None, message_id=mail.message_id, spool_id=entry.id,
                content_key=key, attachments=mail.attachments,
            )
            rest = [c for c in parsed.commands if c.name in _WITH_NEW]
            ticket = await agent_ops.ticket_row(tx, opened.ticket_id)
            problems = agent_ops.check(config, agent, ticket, rest)
            if problems:
                raise OpError("; ".join(str(p) for p in problems))
            changes = [*opened.changes, *await agent_ops.apply(tx, config, opened.ticket_id, rest, agent)]
        except (OpError, ValueError) as exc:
            await tx.execute("ROLLBACK TO agent_tickets")
            errors.append(TagError((new or behalf or Command("new")).raw, str(exc)))
            opened = None
        await tx.execute("RELEASE agent_tickets")
    if errors or opened is None:
        outcome = agent_mail._Outcome(errors=[str(e) for e in errors], ticketless=True)
        await agent_mail._tell(tx, config, agent, None, "agent_refused", outcome, False)
        return agent_mail.Decision(True, found, ident, None, None)
    outcome = agent_mail._Outcome(note=new is None)
    outcome.changes = [f"[{c.command}] {c.summary}" for c in changes]
    if opened.outbox_id is not None:
        due = await tx.value("SELECT not_before FROM outbox WHERE id = ?", (opened.outbox_id,))
        outcome.reply_to = [(to or Command("to")).value]
        outcome.reply_at = agent_mail._local_time(config, datetime.fromisoformat(due))
    await agent_mail._tell(tx, config, agent, opened.ticket_id, "agent_done", outcome, new is None)
    return agent_mail.Decision(True, found, ident, opened.number, opened.message_row)

