"""The acknowledgement: "we received your request", to a customer who opened a ticket, unless a guard says no."""

from __future__ import annotations

from dataclasses import replace

from mailgate.config import LANGUAGES
from mailgate.mail import identity
from mailgate.models import Envelope, ParsedMail
from mailgate.outgoing import guard as loops
from mailgate.outgoing.relay import mailbox
from mailgate.outgoing.writer import TicketInfo, Writer
from mailgate.store import Txn, contacts, events


async def acknowledge(w: Writer, tx: Txn, info: TicketInfo) -> int:
    return await w.queue_mail(
        tx, info, kind="ack", template="ack", to_name=info.customer_name, to_address=info.customer_address,
        language=w.customer_language(info), data=w.data(info),
    )


async def maybe_acknowledge(w: Writer, tx: Txn, info: TicketInfo, mail: ParsedMail, envelope: Envelope) -> None:
    """Acknowledge a new ticket, or record on it why not."""
    verdict = loops.may_answer(
        w.guard, mail, envelope_from=envelope.mail_from, rcpt_to=envelope.rcpt_to, imported=envelope.imported
    )
    reason = verdict.reason
    if info.queue is not None and not info.queue.acknowledge:
        reason, allowed = "queue.acknowledge = false", False
    elif info.ack_suppressed:
        reason, allowed = "suppressed by routing", False
    elif identity.agent_by_address(w.config, info.customer_address) is not None:
        # An agent's own mail to support (a colleague's request, or her From forged) opened it:
        # "we received your request" is for customers, and an agent is told otherwise.
        reason, allowed = "the requester is an agent", False
    elif not info.customer_address:
        reason, allowed = "no customer address", False
    elif mailbox(info.customer_address) is None:
        # A garbled From ("000", "x@[", spaces): the relay client would only fail it, and tell the agents.
        reason, allowed = "the customer's address is not a deliverable mailbox", False
    else:
        allowed = verdict.allowed
    if allowed:  # storms and backscatter: spam flag, forged sender, per-recipient and global caps
        refusal = await loops.ack_refusal(
            tx, w.config.storms, mail, info.customer_address,
            per_recipient=w.config.outbox.auto_replies_per_hour, authserv_ids=w.config.gateway.authserv_id,
            # Only the results the trusted hop in front added: a sender can write any verdict.
            received=identity.trusted_received(w.config, envelope),
        )
        reason, allowed = (refusal, False) if refusal else (reason, True)
    if allowed:
        await acknowledge(w, tx, info)
    else:
        await events.add(tx, info.id, "system", "ack.suppressed", {"reason": reason})


def language_of(mail: ParsedMail, detected: str | None) -> str | None:
    """The language a customer writes in: Content-Language (e.g. "fi", "pl-PL"), else the guess from the text."""
    value = (mail.header("Content-Language") or "").split(",")[0].strip().lower()[:2]
    if value not in LANGUAGES:
        value = detected or ""
    return value if value in LANGUAGES else None


async def learn_language(tx: Txn, info: TicketInfo, mail: ParsedMail) -> TicketInfo:
    """A contact's language from the mail that opened a ticket, when none is known yet.

    The ticket as it is now: the acknowledgement that follows is written in that language. (A
    contact this mail created was given it then: contact_language is set and nothing is written.)
    """
    value = language_of(mail, info.detected_language)
    # A contact whose language is known keeps it (the store would change nothing): no statement.
    if value is not None and info.contact_language is None and await contacts.learn_language(tx, info.id, value):
        return replace(info, contact_language=value)
    return info


async def resolved(w: Writer, tx: Txn, ticket_id: int) -> int | None:
    """The ticket became resolved: the customer's resolution notice (unless the queue turned it off)."""
    info = await w.ticket(tx, ticket_id)
    if info.queue is not None and not info.queue.resolution_notice:
        return None
    if not info.customer_address or loops.is_machine_address(info.customer_address):
        await events.add(tx, ticket_id, "system", "resolution_notice.suppressed", {"reason": "no-customer-address"})
        return None
    return await w.queue_mail(
        tx, info, kind="resolved", template="resolved", to_name=info.customer_name,
        to_address=info.customer_address, language=w.customer_language(info), data=w.data(info),
        auto_kind="auto-generated",
    )
