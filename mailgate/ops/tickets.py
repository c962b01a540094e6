"""Opening a ticket, storing a customer's message on it, knowing its requester, and the event every change writes."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.models import Address, ParsedMail, ThreadRule
from mailgate.store import Txn, contacts, events, messages, parties
from mailgate.store import tickets as ticket_store


@dataclass(frozen=True, slots=True)
class TicketRef:
    id: int
    number: int
    status: str = "new"
    created_at: str = ""


async def contact_for(tx: Txn, address: Address, language: str | None = None) -> int:
    """The contact owning an address; an unknown sender becomes a new contact (writing in `language`)."""
    return await contacts.find_or_create(tx, address.address, address.name, language)


async def contact_of_address(tx: Txn, address: str) -> int | None:
    """The contact owning an address, if any."""
    return await contacts.owner(tx, address.lower())


async def open_ticket(
    tx: Txn,
    *,
    subject: str,
    contact_id: int | None,
    first_number: int,
    actor: str,
    channel: str = "email",
    direction: str = "inbound",
    later: list[events.Event] | None = None,
    placed: ticket_store.Placed | None = None,
) -> TicketRef:
    """A new ticket with the next short human number (routed already when placed is given).

    later: its ticket.created event is appended there instead of written now, for a caller that
    writes it with the routing's events in one statement (events.add_many).
    """
    row = await ticket_store.create(tx, subject=subject or "(no subject)", contact_id=contact_id,
                                    first_number=first_number, channel=channel, direction=direction, placed=placed)
    ticket_id, number = row.id, row.number
    created: events.Event = (ticket_id, actor, "ticket.created",
                             {"number": number, "subject": subject, "channel": channel})
    if later is not None:
        later.append(created)
    else:
        await events.add_many(tx, [created])
    return TicketRef(ticket_id, number, row.status, row.created_at)


async def add_party(tx: Txn, ticket_id: int, address: str, role: str) -> None:
    await parties.add(tx, ticket_id, address, role)


async def latest_requested_by(tx: Txn, address: str) -> int | None:
    """The newest ticket this address opened, if any (where a flood from it is kept, see loops.admit)."""
    return await parties.latest_requested_by(tx, address)


async def add_inbound_message(
    tx: Txn,
    ticket_id: int,
    mail: ParsedMail,
    *,
    spool_id: int,
    content_key: str,
    imported: bool,
    rule: ThreadRule,
    detail: str,
    actor: str,
    opened: bool = False,
) -> int:
    """Store a parsed inbound message on a ticket, with its Message-ID and attachments.

    opened: this mail opened the ticket a moment ago in this transaction; its updated_at is fresh.
    """
    sender = mail.from_[0] if mail.from_ else Address("", "")
    recipients = {
        "to": [a.to_json() for a in mail.to],
        "cc": [a.to_json() for a in mail.cc],
        "reply_to": [a.to_json() for a in mail.reply_to],
    }
    now = tx.now_iso()
    message_row = await messages.insert(tx, messages.NewMessage(
        ticket_id=ticket_id, spool_id=spool_id, direction="in", message_id=mail.message_id,
        content_key=content_key, in_reply_to=mail.in_reply_to, from_name=sender.name,
        from_address=sender.address.lower(), recipients=recipients, subject=mail.subject,
        sent_at=mail.date.isoformat() if mail.date else None, text=mail.text, html=mail.html,
        reply_text=mail.reply_text, kind=str(mail.kind), bounce_of=mail.bounce_of, defects=mail.defects,
        imported=imported, thread_rule=str(rule), thread_detail=detail, created_at=now,
        attachments=mail.attachments,
    ))
    if not opened:
        await ticket_store.touch(tx, ticket_id)
    await events.add(
        tx,
        ticket_id,
        actor,
        "message.added",
        {
            "message": message_row,
            "message_id": mail.message_id,
            "direction": "in",
            "kind": str(mail.kind),
            "thread_rule": str(rule),
            "thread_detail": detail,
        },
    )
    return message_row
