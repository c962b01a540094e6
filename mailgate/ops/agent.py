"""What an agent may do to tickets, one function per operation in the caller's transaction; mail, CLI and web share them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailgate import tokens
from mailgate.commands import TICKETLESS, Command, TagError
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.ops import lifecycle, parties, sla, tickets
from mailgate.ops.assign import CLOSED_STATUSES
from mailgate.outgoing import notices as outbound
from mailgate.outgoing import outbox
from mailgate.store import Row, Txn, messages, now_iso, timers

SNOOZE_WAKE = lifecycle.WAKE  # the timer kind that ends a snooze (fired by lifecycle)
_RANK = "CASE t.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END"


class OpError(Refused):
    """An operation that cannot be done as asked; the message says why, for the agent."""


@dataclass(frozen=True, slots=True)
class Change:
    """What one operation did, for the confirmation and the CLI."""

    command: str  # e.g. "status"
    summary: str  # e.g. "open → resolved"
    ticket: int | None = None  # a ticket the operation picked ([next])


def actor(agent: AgentConfig) -> str:
    return f"agent:{agent.id}"


def my_queues(config: Config, agent: AgentConfig) -> list[str]:
    return [q.name for q in config.queues if agent in config.queue_members(q)]


def _member(config: Config, agent: AgentConfig, queue: str | None) -> bool:
    if queue is None:
        return True
    q = config.queue(queue)
    return q is None or agent in config.queue_members(q)


async def ticket_row(tx: Txn, ticket_id: int) -> Row:
    row = await tx.one("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
    if row is None:
        raise OpError(f"no ticket with id {ticket_id}")
    return row


def check(
    config: Config, agent: AgentConfig, ticket: Row | None, commands: Sequence[Command]
) -> list[TagError]:
    """Everything that would make a command fail, found before anything is applied."""
    errors: list[TagError] = []
    new_queue = next((c.value for c in commands if c.name == "queue"), None)
    queue_after = new_queue or (ticket["queue"] if ticket is not None else None)
    for command in commands:
        if ticket is None and command.name not in TICKETLESS:
            errors.append(TagError(command.raw, "needs a ticket: reply to a ticket's notification"))
            continue
        if command.name == "queue" and config.queue(command.value) is None:
            known = ", ".join(q.name for q in config.queues) or "none configured"
            errors.append(TagError(command.raw, f"unknown queue {command.value!r} (known: {known})"))
        elif command.name in ("assign", "take"):
            target = agent if command.name == "take" or command.value == "me" else (
                None if command.value == "none" else config.agent(command.value))
            if command.name == "assign" and command.value not in ("me", "none") and target is None:
                errors.append(TagError(command.raw, f"unknown agent {command.value!r}"))
            elif target is not None and not _member(config, target, queue_after):
                who = "you are" if target is agent else f"{target.id} is"
                errors.append(TagError(command.raw, f"{who} not a member of queue {queue_after!r}"))
        elif command.name == "next" and not my_queues(config, agent):
            errors.append(TagError(command.raw, "you are not a member of any queue"))
        elif command.name == "cc":
            for address in command.add:
                if not parties.may_be_party(config, address):
                    errors.append(TagError(command.raw, f"{address} cannot receive replies (ours, an agent, or no-reply)"))
    return errors


async def set_status(tx: Txn, config: Config, ticket_id: int, status: str, agent: AgentConfig) -> Change:
    """A new status through the ticket's life rules (ends a wait, moves the SLA clock); resolved tells the customer."""
    old = await lifecycle.set_status(tx, config, ticket_id, status, actor=actor(agent))
    if status == "resolved" and old != "resolved":
        await outbound.notify_resolved(tx, config, ticket_id)
    if status in CLOSED_STATUSES and old != status:
        # Issue 7 part 9: tell whoever resolves a ticket that tasks are still open.
        from mailgate.ops import tasks

        warning = await tasks.open_warning(tx, config, ticket_id)
        if warning:
            return Change("status", f"{old} → {status}; {warning}")
    return Change("status", f"{old} → {status}")


async def set_priority(tx: Txn, config: Config, ticket_id: int, priority: str, agent: AgentConfig) -> Change:
    row = await ticket_row(tx, ticket_id)
    await tx.execute("UPDATE tickets SET priority = ?, updated_at = ? WHERE id = ?", (priority, now_iso(), ticket_id))
    await tickets.event(tx, ticket_id, actor(agent), "ticket.priority", {"from": row["priority"], "to": priority})
    await sla.recompute(tx, config, ticket_id, actor=actor(agent))  # other targets for another priority
    return Change("priority", f"{row['priority']} → {priority}")


async def set_queue(tx: Txn, config: Config, ticket_id: int, queue: str, agent: AgentConfig) -> Change:
    if config.queue(queue) is None:
        raise OpError(f"unknown queue {queue!r}")
    row = await ticket_row(tx, ticket_id)
    await tx.execute("UPDATE tickets SET queue = ?, updated_at = ? WHERE id = ?", (queue, now_iso(), ticket_id))
    await tickets.event(tx, ticket_id, actor(agent), "ticket.queue", {"from": row["queue"], "to": queue})
    await sla.recompute(tx, config, ticket_id, actor=actor(agent))  # the new queue's targets and hours
    return Change("queue", f"{row['queue'] or '-'} → {queue}")


async def assign(tx: Txn, config: Config, ticket_id: int, assignee: str | None, agent: AgentConfig) -> Change:
    """Assign to an agent id, or None to unassign."""
    if assignee is not None and config.agent(assignee) is None:
        raise OpError(f"unknown agent {assignee!r}")
    row = await ticket_row(tx, ticket_id)
    await tx.execute("UPDATE tickets SET assignee = ?, updated_at = ? WHERE id = ?", (assignee, now_iso(), ticket_id))
    await tickets.event(tx, ticket_id, actor(agent), "ticket.assigned" if assignee else "ticket.unassigned",
                        {"from": row["assignee"], "assignee": assignee, "by": agent.id})
    if assignee is not None and assignee != agent.id and assignee != row["assignee"]:
        await _tell_assignee(tx, config, ticket_id, assignee, agent)
    return Change("assign", f"{row['assignee'] or '-'} → {assignee or '-'}")


async def _tell_assignee(tx: Txn, config: Config, ticket_id: int, assignee: str, by: AgentConfig) -> None:
    """The new assignee hears of it, with the customer's latest words; answering the mail answers the customer."""
    target = config.agent(assignee)
    if target is None or target.away:
        return  # away: like every other notification, it would only wait for them (or wake an out-of-office)
    await mail_ticket_to(tx, config, ticket_id, target, kind="notify", template="assigned", outcome={"by": by.name})


async def mail_ticket_to(
    tx: Txn, config: Config, ticket_id: int, target: AgentConfig, *, kind: str, template: str,
    outcome: dict[str, Any],
) -> None:
    """Mail an agent a ticket with the customer's latest words; its Reply-To answers the customer."""
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, ticket_id)
    last = await tx.one(
        "SELECT from_name, from_address, reply_text, text FROM messages WHERE ticket_id = ? AND direction = 'in'"
        " ORDER BY id DESC LIMIT 1", (ticket_id,),
    )
    shown = (f"{last['from_name']} <{last['from_address']}>" if last["from_name"] else last["from_address"]) if last else ""
    from mailgate.ops import files as agent_files  # builds on this module

    # Newly responsible, the agent has not seen the ticket's files yet: they come along, as in a notification.
    files, listing = await agent_files.of_ticket(tx, config, ticket_id)
    await mailer.queue_mail(
        tx, info, kind=kind, template=template, to_name=target.name, to_address=target.addresses[0],
        language=mailer.agent_language(info, target), auto_kind="auto-generated",
        reply_token=tokens.Token(tokens.AGENT_REPLY, info.number, target.id),
        data=mailer.data(info, agent_name=target.name, agent_id=target.id, message_from=shown,
                         message_text=(last["reply_text"] or last["text"]) if last else "", outcome=outcome,
                         files=listing),
        files=files,
    )


async def take(tx: Txn, config: Config, ticket_id: int, agent: AgentConfig) -> Change:
    change = await assign(tx, config, ticket_id, agent.id, agent)
    await tx.execute("UPDATE tickets SET status = 'open' WHERE id = ? AND status = 'new'", (ticket_id,))
    return Change("take", change.summary)


async def tag(tx: Txn, ticket_id: int, add: Sequence[str], remove: Sequence[str], agent: AgentConfig) -> Change:
    await tx.executemany("INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) VALUES (?, ?)", [(ticket_id, t) for t in add])
    await tx.executemany("DELETE FROM ticket_tags WHERE ticket_id = ? AND tag = ?", [(ticket_id, t) for t in remove])
    await tickets.event(tx, ticket_id, actor(agent), "ticket.tags", {"add": list(add), "remove": list(remove)})
    now = [r["tag"] for r in await tx.all("SELECT tag FROM ticket_tags WHERE ticket_id = ? ORDER BY tag", (ticket_id,))]
    return Change("tag", ", ".join(now) or "(no tags)")


async def set_category(tx: Txn, ticket_id: int, category: str, agent: AgentConfig) -> Change:
    row = await ticket_row(tx, ticket_id)
    await tx.execute("UPDATE tickets SET category = ?, updated_at = ? WHERE id = ?", (category, now_iso(), ticket_id))
    await tickets.event(tx, ticket_id, actor(agent), "ticket.category", {"from": row["category"], "to": category})
    return Change("category", f"{row['category'] or '-'} → {category}")


async def snooze(tx: Txn, config: Config, ticket_id: int, until: datetime, agent: AgentConfig) -> Change:
    """Status 'waiting' until then; the wake-up timer row is written in the same transaction (lifecycle)."""
    await lifecycle.snooze(tx, config, ticket_id, until, actor=actor(agent))
    return Change("snooze", f"waiting until {timers.iso(until)[:16].replace('T', ' ')} UTC")


async def cancel(tx: Txn, ticket_id: int, agent: AgentConfig) -> Change:
    """Withdraw this agent's replies on the ticket that have not gone yet."""
    count = await outbox.cancel_pending(tx, ticket_id, agent.id)
    return Change("cancel", f"{count} waiting repl{'y' if count == 1 else 'ies'} withdrawn" if count
                  else "nothing was waiting to be sent")


async def send_held(tx: Txn, ticket_id: int, agent: AgentConfig) -> Change:
    """Send the agent's held replies now (the customer wrote again while they waited)."""
    count = await outbox.release_held(tx, ticket_id, agent.id)
    return Change("send", f"{count} held repl{'y' if count == 1 else 'ies'} sent" if count else "nothing was held")


async def next_ticket(tx: Txn, config: Config, agent: AgentConfig) -> Change:
    """The most urgent unassigned open ticket of my queues, assigned to me in one statement.

    The claim is one UPDATE guarded by "assignee IS NULL" inside a BEGIN IMMEDIATE transaction,
    so two agents asking at once get two different tickets (or one gets none).
    """
    queues = my_queues(config, agent)
    if not queues:
        raise OpError("you are not a member of any queue")
    marks = ", ".join("?" for _ in queues)
    row = await tx.one(
        "UPDATE tickets SET assignee = ?, status = CASE status WHEN 'new' THEN 'open' ELSE status END, updated_at = ?"
        " WHERE id = (SELECT t.id FROM tickets t WHERE t.assignee IS NULL AND t.quarantined = 0"
        f" AND t.status IN ('new', 'open') AND t.queue IN ({marks}) ORDER BY {_RANK}, t.created_at, t.id LIMIT 1)"
        " AND assignee IS NULL RETURNING id, number",
        (agent.id, now_iso(), *queues),
    )
    if row is None:
        return Change("next", "no unassigned ticket in your queues")
    await tickets.event(tx, row["id"], actor(agent), "ticket.assigned", {"assignee": agent.id, "by": agent.id,
                                                                           "strategy": "next"})
    return Change("next", f"#{row['number']} is yours", ticket=row["id"])


async def list_tickets(tx: Txn, config: Config, agent: AgentConfig, which: str, limit: int = 50) -> list[dict[str, Any]]:
    """The folders of a help-desk inbox: inbox, waiting, mine, all (not closed)."""
    queues = my_queues(config, agent) or ["\x00"]
    marks = ", ".join("?" for _ in queues)
    closed = ", ".join("?" for _ in CLOSED_STATUSES)
    mine_or_queue = f"(t.queue IN ({marks}) OR t.assignee = ?)"
    # Issue 7: an answer to this agent's [help]/[forward] came in: the ticket is in their inbox, on top.
    flagged = "EXISTS (SELECT 1 FROM ticket_flags f WHERE f.ticket_id = t.id AND f.agent = ?)"
    where, params = {
        "inbox": (f"((t.queue IN ({marks}) AND t.status IN ('new', 'open') AND (t.assignee IS NULL OR t.assignee = ?))"
                  f" OR {flagged})", [*queues, agent.id, agent.id]),
        "waiting": (f"{mine_or_queue} AND t.status IN ('pending', 'waiting')", [*queues, agent.id]),
        "mine": (f"t.assignee = ? AND t.status NOT IN ({closed})", [agent.id, *CLOSED_STATUSES]),
        "all": (f"{mine_or_queue} AND t.status NOT IN ({closed})", [*queues, agent.id, *CLOSED_STATUSES]),
    }[which]
    # Issue 7 part 10: what this agent has not read since the customer wrote comes first in the inbox.
    from mailgate.ops import watchers

    unread_first = "unread DESC, " if which == "inbox" else ""
    rows = await tx.all(
        "SELECT t.number, t.subject, t.status, t.priority, t.queue, t.assignee, t.snoozed_until, t.updated_at,"
        f" {flagged} AS flagged, {watchers.unread_sql()} AS unread"
        f" FROM tickets t WHERE t.quarantined = 0 AND {where}"
        f" ORDER BY flagged DESC, {unread_first}{_RANK}, t.updated_at DESC LIMIT ?",
        [agent.id, agent.id, *params, limit],
    )
    return [dict(r) for r in rows]


async def add_message(
    tx: Txn,
    ticket_id: int,
    agent: AgentConfig,
    *,
    direction: str,
    subject: str,
    text: str,
    reply_text: str,
    message_id: str,
    spool_id: int | None = None,
    content_key: str | None = None,
    attachments: Sequence[Any] = (),
    sent_at: str | None = None,
) -> int:
    """An agent's mail ('agent') or internal note ('note') on a ticket; never sent to the customer from here."""
    address = agent.addresses[0]
    now = now_iso()
    row = await messages.insert(tx, messages.NewMessage(
        ticket_id=ticket_id, spool_id=spool_id, direction=direction, message_id=message_id,
        content_key=content_key or hashlib.sha256(text.encode()).hexdigest(), from_name=agent.name,
        from_address=address, subject=subject, sent_at=sent_at, text=text, reply_text=reply_text,
        thread_rule="token", thread_detail=f"agent {agent.id}", created_at=now, attachments=attachments,
    ))
    await tx.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (now, ticket_id))
    await tickets.event(tx, ticket_id, actor(agent), "note.added" if direction == "note" else "message.added",
                        {"message": row, "message_id": message_id, "direction": direction})
    return row


async def apply(
    tx: Txn, config: Config, ticket_id: int | None, commands: Sequence[Command], agent: AgentConfig
) -> list[Change]:
    """Apply checked commands in a fixed order (queue before assign, so membership is judged after a move)."""
    order: tuple[str, ...] = ("queue", "priority", "category", "tag", "assign", "take", "status", "snooze", "cancel", "send",
             "next", "list", "note")
    order += ("task", "follow", "unfollow")  # issue 7 parts 9-10 (agent_tickets); before merge, which ends the ticket
    order += ("cc",)  # who receives replies: before the reply that follows, and before merge
    order += ("files",)  # the ticket's files to the asking agent; before merge, which moves them
    order += ("forward", "forward+notes", "help", "split", "merge")  # issue 7 (case_ops); merge ends the ticket: last
    changes: list[Change] = []
    for command in sorted(commands, key=lambda c: order.index(c.name)):
        if ticket_id is None and command.name not in TICKETLESS:
            raise OpError(f"{command.raw}: needs a ticket")
        tid = ticket_id or 0
        match command.name:
            case "queue":
                changes.append(await set_queue(tx, config, tid, command.value, agent))
            case "priority":
                changes.append(await set_priority(tx, config, tid, command.value, agent))
            case "category":
                changes.append(await set_category(tx, tid, command.value, agent))
            case "tag":
                changes.append(await tag(tx, tid, command.add, command.remove, agent))
            case "assign":
                who = agent.id if command.value == "me" else None if command.value == "none" else command.value
                changes.append(await assign(tx, config, tid, who, agent))
            case "take":
                changes.append(await take(tx, config, tid, agent))
            case "status":
                changes.append(await set_status(tx, config, tid, command.value, agent))
            case "snooze":
                assert command.until is not None
                changes.append(await snooze(tx, config, tid, command.until, agent))
            case "cancel":
                changes.append(await cancel(tx, tid, agent))
            case "send":
                changes.append(await send_held(tx, tid, agent))
            case "next":
                changes.append(await next_ticket(tx, config, agent))
            case "merge" | "forward" | "forward+notes" | "help" | "split":
                # Issue 7: in their own modules, which build on this one (so imported here, not on top).
                from mailgate.ops import cases as case_ops

                changes.append(await case_ops.apply(tx, config, tid, command, agent))
            case "task" | "follow" | "unfollow":
                # Issue 7 parts 9-10: their own module, which builds on this one.
                from mailgate.ops import opening as agent_tickets

                changes.append(await agent_tickets.apply(tx, config, tid, command, agent))
            case "files":
                from mailgate.ops import files as agent_files  # builds on this module

                changes.append(await agent_files.send(tx, config, tid, command.value, agent))
            case "cc":
                summary = await parties.change(tx, config, tid, command.add, command.remove, actor(agent))
                changes.append(Change("cc", summary))
            case "list" | "note":
                pass  # a listing is read by the caller; a note is the mail itself
    return changes
