"""Split one customer message off into a ticket of its own, linked to the one it came from."""

from __future__ import annotations

from collections.abc import Sequence

from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.mail.subjects import clean_subject
from mailgate.models import TicketStatus
from mailgate.ops import delete, lifecycle, tickets
from mailgate.ops.base import Change, system_note, who
from mailgate.store import Txn, events, links, messages
from mailgate.store import outbox as outbox_rows
from mailgate.store import tickets as ticket_store
from mailgate.store.messages import Message

LINK = "split-from"


async def message_for(tx: Txn, ticket_id: int, parents: Sequence[str]) -> Message | None:
    """The customer message an agent's mail answers: named directly, or by the notification about it.

    A notification's outbox row keeps In-Reply-To = the customer message it was about (the ticket's
    newest inbound message when it was written), so answering the notification names that message.
    """
    for parent in parents:
        found = await messages.inbound(tx, ticket_id, message_id=parent)
        if found is not None:
            return found
        about = await outbox_rows.in_reply_to_of(tx, parent, ticket_id)
        if about:
            found = await messages.inbound(tx, ticket_id, message_id=about)
            if found is not None:
                return found
    return None


async def split(
    tx: Txn, config: Config, ticket_id: int, agent: AgentConfig | None, *,
    parents: Sequence[str] = (), message_row: int | None = None,
) -> Change:
    """A new ticket (same queue, assignee, priority, category; status new) with the message moved to it."""
    actor, name = who(agent)
    source = await delete.live(tx, ticket_id, "[split]")
    if message_row is not None:
        message = await messages.inbound(tx, ticket_id, row_id=message_row)
        if message is None:
            raise Refused(f"[split]: ticket #{source.number} has no customer message {message_row}")
    else:
        message = await message_for(tx, ticket_id, parents)
        if message is None:
            raise Refused("[split]: answer the notification about the message to split off;"
                          f" this mail answers none of #{source.number}'s customer messages")
    if source.status is TicketStatus.MERGED:
        raise Refused(f"[split]: #{source.number} is merged; split from the ticket it was merged into")
    if not await messages.count_inbound(tx, ticket_id, besides=message.id):
        raise Refused(f"[split]: that is #{source.number}'s only customer message; nothing would be left")
    contact_id = await tickets.contact_of_address(tx, message.from_address) or source.contact_id
    subject = clean_subject(message.subject, config.gateway.ticket_tag) or source.subject
    ref = await tickets.open_ticket(tx, subject=subject, contact_id=contact_id,
                                    first_number=config.gateway.first_ticket_number, actor=actor,
                                    channel=source.channel, direction=source.direction)
    await ticket_store.update(tx, ref.id, touch=False, queue=source.queue, assignee=source.assignee,
                              priority=source.priority, category=source.category)
    if message.from_address:
        await tickets.add_party(tx, ref.id, message.from_address, "requester")
    # Moved with its attachments (they hang on the message row); later answers to it thread there.
    await messages.move_one(tx, message, ref.id)
    await links.add(tx, ref.id, ticket_id, LINK)
    await lifecycle.opened(tx, config, ref.id, follows=None, actor=actor)
    when = (message.sent_at or message.created_at)[:16].replace("T", " ")
    sender = message.from_address or "?"
    await events.add(tx, ticket_id, actor, "ticket.split", {"ticket": ref.number, "message": message.id})
    await events.add(tx, ref.id, actor, "ticket.split_from", {"ticket": source.number, "message": message.id})
    await system_note(tx, config, ticket_id, f"{name} split the message from {sender} of {when} off into"
                      f" #{ref.number} \"{subject}\".", actor=actor)
    await system_note(tx, config, ref.id, f"{name} split this ticket off #{source.number}"
                      f" \"{source.subject}\" (the message from {sender} of {when}).", actor=actor)
    return Change("split", f"the message from {sender} of {when} is now #{ref.number}")
