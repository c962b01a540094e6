"""Deleting a ticket (asked, then confirmed), restoring it, and deleting one message; every step keeps an event.

A deleted ticket is hidden from every list, [next] and search, but nothing of it goes until
retention purges it like a closed one: a mistaken deletion can always be undone ([restore]).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from mailgate.commands import Command, TagError
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.models import TicketStatus
from mailgate.ops import lifecycle
from mailgate.ops.base import Change, actor, is_member, ticket
from mailgate.store import Txn, events, message_marks
from mailgate.store import tickets as ticket_store
from mailgate.store.tickets import Ticket

log = logging.getLogger("mailgate.delete")

DELETED = TicketStatus.DELETED
REQUESTED = "ticket.delete_requested"
CONFIRM_WITHIN = timedelta(hours=24)  # an old, forgotten request is not confirmed by a stray [confirm]
COMMANDS = frozenset({"delete", "confirm", "restore"})


def refusal(config: Config, agent: AgentConfig, row: Ticket, command: Command) -> TagError | None:
    """Why this agent may not run a command on this ticket as it stands (None: they may)."""
    if command.name in COMMANDS and not is_member(config, agent, row.queue):
        return TagError(command.raw, f"only agents of queue {row.queue!r} may delete or restore this ticket")
    return deleted(row, command.name, command.raw)


def deleted(row: Ticket, name: str, raw: str) -> TagError | None:
    """THE check on a deleted ticket: nothing but [restore] is done to it, whoever asks and however.

    Mail, the CLI with or without --as, and each operation's own entry (split, merge, forward,
    tasks, snooze) ask here, so the answer is the same words everywhere.
    """
    if row.status is DELETED and name != "restore":
        return TagError(raw, f"#{row.number} is deleted: [restore] it first, alone")
    if row.status is not DELETED and name == "restore":
        return TagError(raw, f"#{row.number} is not deleted")
    return None


async def live(tx: Txn, ticket_id: int, raw: str) -> Ticket:
    """The ticket an operation acts on, refused (as deleted() words it) when it is deleted."""
    row = await ticket(tx, ticket_id)
    refused = deleted(row, "", raw)
    if refused is not None:
        raise refused
    return row


async def pending(tx: Txn, ticket_id: int, agent: AgentConfig) -> bool:
    """Whether this agent asked to delete the ticket in the last CONFIRM_WITHIN, not answered yet."""
    since = (tx.now() - CONFIRM_WITHIN).isoformat(timespec="microseconds")
    return await ticket_store.delete_requested(tx, ticket_id, actor(agent), REQUESTED, since)


async def request(tx: Txn, ticket_id: int, agent: AgentConfig) -> Change:
    """[delete]: nothing is deleted yet; the agent's confirmation mail asks for [confirm]."""
    row = await ticket(tx, ticket_id)
    await events.add(tx, ticket_id, actor(agent), REQUESTED, {"agent": agent.id})
    hours = int(CONFIRM_WITHIN.total_seconds() // 3600)
    return Change("delete", f"not yet: to delete #{row.number} (hidden from every list, restorable with [restore]),"
                            f" answer this mail with [confirm] within {hours} hours")


async def confirm(tx: Txn, config: Config, ticket_id: int, agent: AgentConfig) -> Change:
    """[confirm] after [delete]: the ticket is deleted."""
    if not await pending(tx, ticket_id, agent):
        raise Refused("[confirm]: nothing to confirm: send [delete] first, then answer its mail with [confirm]")
    return await delete(tx, config, ticket_id, agent)


async def delete(tx: Txn, config: Config, ticket_id: int, agent: AgentConfig) -> Change:
    """Status deleted (the status before it kept for [restore]); event ticket.deleted with who and the old status."""
    row = await ticket(tx, ticket_id)
    _may(config, agent, row)
    if row.status is DELETED:
        raise Refused(f"#{row.number} is deleted already")
    old = row.status
    await ticket_store.set_status(tx, ticket_id, DELETED, actor=actor(agent), kind="ticket.deleted",
                                  data={"from": old, "to": DELETED, "by": agent.id})
    await ticket_store.update(tx, ticket_id, deleted_at=tx.now_iso(), deleted_from=old)
    # A waiting ticket's wake-up timer goes, the SLA clock stops: nobody works a deleted ticket.
    await lifecycle.status_changed(tx, config, ticket_id, old, DELETED, actor=actor(agent))
    log.info("ticket.deleted ticket=%s by=%s from=%s", row.number, agent.id, old)
    return Change("confirm", f"#{row.number} deleted (was {old}); [restore] brings it back")


async def restore(tx: Txn, config: Config, ticket_id: int, agent: AgentConfig) -> Change:
    """Back to the status it had; a ticket that was waiting comes back open (its wake-up time is gone)."""
    row = await ticket(tx, ticket_id)
    _may(config, agent, row)
    if row.status is not DELETED:
        raise Refused(f"#{row.number} is not deleted")
    back = TicketStatus(row.deleted_from or TicketStatus.OPEN)
    if back in (TicketStatus.WAITING, DELETED):
        back = TicketStatus.OPEN
    await ticket_store.set_status(tx, ticket_id, back, actor=actor(agent), kind="ticket.restored",
                                  data={"from": DELETED, "to": back, "by": agent.id})
    await ticket_store.update(tx, ticket_id, deleted_at=None, deleted_from=None)
    await lifecycle.status_changed(tx, config, ticket_id, DELETED, back, actor=actor(agent))
    log.info("ticket.restored ticket=%s by=%s to=%s", row.number, agent.id, back)
    return Change("restore", f"#{row.number} restored ({back})")


async def delete_message(tx: Txn, config: Config, row_id: int, agent: AgentConfig) -> Change:
    """One message hidden from its thread (and what is built from it), kept until retention; event message.deleted."""
    found = await message_marks.deletable(tx, row_id)
    if found is None:
        raise Refused(f"no message {row_id}")
    row = await ticket(tx, found.ticket_id)
    _may(config, agent, row)
    if found.deleted_at is not None:
        raise Refused(f"message {row_id} is deleted already")
    await message_marks.delete(tx, row_id, agent.id)
    await events.add(tx, found.ticket_id, actor(agent), "message.deleted",
                     {"message": row_id, "direction": found.direction, "by": agent.id})
    await ticket_store.touch(tx, found.ticket_id)
    return Change("delete", f"message {row_id} of #{row.number} deleted")


def _may(config: Config, agent: AgentConfig, row: Ticket) -> None:
    if not is_member(config, agent, row.queue):
        raise Refused(f"only agents of queue {row.queue!r} may delete or restore on #{row.number}")
