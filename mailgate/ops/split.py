"""Split one customer message off into a ticket of its own, linked to the one it came from."""

from __future__ import annotations

from collections.abc import Sequence

from mailgate.config import AgentConfig, Config
from mailgate.mail.subjects import clean_subject
from mailgate.ops import agent as agent_ops
from mailgate.ops import lifecycle, tickets
from mailgate.ops.agent import Change, OpError
from mailgate.ops.merge import system_note, who
from mailgate.store import Row, Txn, now_iso

LINK = "split-from"


async def message_for(tx: Txn, ticket_id: int, parents: Sequence[str]) -> Row | None:
    """The customer message an agent's mail answers: named directly, or by the notification about it.

    A notification's outbox row keeps In-Reply-To = the customer message it was about (the ticket's
    newest inbound message when it was written), so answering the notification names that message.
    """
    for parent in parents:
        row = await tx.one("SELECT * FROM messages WHERE ticket_id = ? AND message_id = ? AND direction = 'in'",
                           (ticket_id, parent))
        if row is not None:
            return row
        about = await tx.value("SELECT in_reply_to FROM outbox WHERE message_id = ? AND ticket_id = ?",
                               (parent, ticket_id))
        if about:
            row = await tx.one("SELECT * FROM messages WHERE ticket_id = ? AND message_id = ? AND direction = 'in'"
                               " ORDER BY id DESC LIMIT 1", (ticket_id, about))
            if row is not None:
                return row
    return None


async def split(
    tx: Txn, config: Config, ticket_id: int, agent: AgentConfig | None, *,
    parents: Sequence[str] = (), message_row: int | None = None,
) -> Change:
    """A new ticket (same queue, assignee, priority, category; status new) with the message moved to it."""
    actor, name = who(agent)
    source = await agent_ops.ticket_row(tx, ticket_id)
    if message_row is not None:
        message = await tx.one("SELECT * FROM messages WHERE id = ? AND ticket_id = ? AND direction = 'in'",
                               (message_row, ticket_id))
        if message is None:
            raise OpError(f"[split]: ticket #{source['number']} has no customer message {message_row}")
    else:
        message = await message_for(tx, ticket_id, parents)
        if message is None:
            raise OpError("[split]: answer the notification about the message to split off;"
                          f" this mail answers none of #{source['number']}'s customer messages")
    if source["status"] == "merged":
        raise OpError(f"[split]: #{source['number']} is merged; split from the ticket it was merged into")
    others = await tx.value("SELECT COUNT(*) FROM messages WHERE ticket_id = ? AND direction = 'in' AND id != ?",
                            (ticket_id, message["id"]))
    if not others:
        raise OpError(f"[split]: that is #{source['number']}'s only customer message; nothing would be left")
    contact_id = await tx.value("SELECT contact_id FROM contact_addresses WHERE address = ?",
                                (message["from_address"],)) or source["contact_id"]
    subject = clean_subject(message["subject"], config.gateway.ticket_tag) or source["subject"]
    ref = await tickets.open_ticket(tx, subject=subject, contact_id=contact_id,
                                    first_number=config.gateway.first_ticket_number, actor=actor,
                                    channel=source["channel"], direction=source["direction"])
    await tx.execute("UPDATE tickets SET queue = ?, assignee = ?, priority = ?, category = ? WHERE id = ?",
                     (source["queue"], source["assignee"], source["priority"], source["category"], ref.id))
    if message["from_address"]:
        await tickets.add_party(tx, ref.id, message["from_address"], "requester")
    # Moved with its attachments (they hang on the message row); later answers to it thread there.
    await tx.execute("UPDATE messages SET ticket_id = ? WHERE id = ?", (ref.id, message["id"]))
    await tx.execute("UPDATE message_ids SET ticket_id = ? WHERE message_id = ? AND ticket_id = ?",
                     (ref.id, message["message_id"], ticket_id))
    await tx.execute("INSERT OR IGNORE INTO ticket_links (ticket_id, other_id, kind, created_at) VALUES (?, ?, ?, ?)",
                     (ref.id, ticket_id, LINK, now_iso()))
    await lifecycle.opened(tx, config, ref.id, follows=None, actor=actor)
    when = (message["sent_at"] or message["created_at"])[:16].replace("T", " ")
    sender = message["from_address"] or "?"
    await tickets.event(tx, ticket_id, actor, "ticket.split", {"ticket": ref.number, "message": message["id"]})
    await tickets.event(tx, ref.id, actor, "ticket.split_from", {"ticket": source["number"], "message": message["id"]})
    await system_note(tx, config, ticket_id, f"{name} split the message from {sender} of {when} off into"
                      f" #{ref.number} \"{subject}\".", actor=actor)
    await system_note(tx, config, ref.id, f"{name} split this ticket off #{source['number']}"
                      f" \"{source['subject']}\" (the message from {sender} of {when}).", actor=actor)
    return Change("split", f"the message from {sender} of {when} is now #{ref.number}")
