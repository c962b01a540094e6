"""What every operation builds on: the change it reports, who acts, the ticket it acts on, the messages it adds."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.store import Txn, events, messages
from mailgate.store import tickets as ticket_store
from mailgate.store.tickets import Ticket

CLI = "cli"  # the event actor of an operator's command without --as


@dataclass(frozen=True, slots=True)
class Change:
    """What one operation did, for the confirmation and the CLI."""

    command: str  # e.g. "status"
    summary: str  # e.g. "open → resolved"
    ticket: int | None = None  # a ticket the operation picked ([next])


def actor(agent: AgentConfig) -> str:
    return f"agent:{agent.id}"


def who(agent: AgentConfig | None) -> tuple[str, str]:
    """(event actor, name shown in notes) for an agent, or for the command line without one."""
    return (actor(agent), agent.name) if agent is not None else (CLI, "the command line")


def needs_agent(agent: AgentConfig | None, what: str) -> AgentConfig:
    """The acting agent, for operations done in someone's name (answers go to them)."""
    if agent is None:
        raise Refused(f"--as is needed for {what}: the agent on whose behalf this is done")
    return agent


def my_queues(config: Config, agent: AgentConfig) -> list[str]:
    return [q.name for q in config.queues if agent in config.queue_members(q)]


def is_member(config: Config, agent: AgentConfig, queue: str | None) -> bool:
    if queue is None:
        return True
    q = config.queue(queue)
    return q is None or agent in config.queue_members(q)


async def ticket(tx: Txn, ticket_id: int) -> Ticket:
    found = await ticket_store.get(tx, ticket_id)
    if found is None:
        raise Refused(f"no ticket with id {ticket_id}")
    return found


async def ticket_id_for(tx: Txn, number: int) -> int:
    """The row id of ticket #number, or a refusal."""
    ticket_id = await ticket_store.id_of(tx, number)
    if ticket_id is None:
        raise Refused(f"no ticket #{number}")
    return ticket_id


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
    now = tx.now_iso()
    row = await messages.insert(tx, messages.NewMessage(
        ticket_id=ticket_id, spool_id=spool_id, direction=direction, message_id=message_id,
        content_key=content_key or hashlib.sha256(text.encode()).hexdigest(), from_name=agent.name,
        from_address=agent.addresses[0], subject=subject, sent_at=sent_at, text=text, reply_text=reply_text,
        thread_rule="token", thread_detail=f"agent {agent.id}", created_at=now, attachments=attachments,
    ))
    await ticket_store.touch(tx, ticket_id)
    await events.add(tx, ticket_id, actor(agent), "note.added" if direction == "note" else "message.added",
                     {"message": row, "message_id": message_id, "direction": direction})
    return row


async def system_note(tx: Txn, config: Config, ticket_id: int, text: str, *, actor: str) -> int:
    """An internal note written by mailgate itself (merge, split): never sent to the customer."""
    message_id = f"note.{secrets.token_hex(8)}@{config.message_id_domain}"
    row = await messages.insert(tx, messages.NewMessage(
        ticket_id=ticket_id, direction="note", message_id=message_id,
        content_key=hashlib.sha256(f"{message_id}\n{text}".encode()).hexdigest(), from_name=config.gateway.name,
        text=text, reply_text=text, thread_rule="system", thread_detail=actor, created_at=tx.now_iso(),
        thread_by_id=False,
    ))
    await events.add(tx, ticket_id, actor, "note.added", {"message": row, "system": True})
    return row
