"""Which ticket a message belongs to: signed token, then headers, then a subject tag its sender may use."""

from __future__ import annotations

from mailgate import tokens
from mailgate.config import Config
from mailgate.mail.subjects import subject_tags
from mailgate.models import Correlation, ParsedMail, ThreadRule
from mailgate.ops import parties
from mailgate.store import Txn
from mailgate.store import threads as known
from mailgate.store import tickets as ticket_store
from mailgate.store.tickets import survivor

__all__ = ["Correlation", "find"]


async def find(
    tx: Txn,
    mail: ParsedMail,
    rcpt_to: tuple[str, ...],
    *,
    secret: bytes,
    tag_prefix: str,
    config: Config | None = None,
) -> Correlation:
    """Thread a parsed message into an existing ticket, or say it opens a new one.

    config: the agents and queues, so a ticket's own agents may name it by its subject tag.
    """
    # (a) A signed token: in a recipient address, in one of our Message-IDs it answers, or in a
    # quoted body marker (some providers rewrite Message-IDs; the marker survives that).
    recipients = list(rcpt_to) + [a.address for a in (*mail.to, *mail.cc)]
    referenced = list(dict.fromkeys(([mail.in_reply_to] if mail.in_reply_to else []) + list(reversed(mail.references))))
    for place, text in (
        ("recipient", " ".join(recipients)),
        ("message-id", " ".join(referenced)),
        ("body marker", mail.text),
    ):
        for token in tokens.find(secret, text):
            if token.purpose != "r":
                continue
            ticket_id = await ticket_store.id_of(tx, token.ticket)
            if ticket_id is not None:
                return Correlation(await survivor(tx, ticket_id), ThreadRule.TOKEN, f"token for #{token.ticket} in {place}")

    # (b) In-Reply-To, then References newest first, against every Message-ID stored or sent.
    if referenced:
        found = await known.tickets_of_message_ids(tx, referenced)
        for reference in referenced:
            if reference in found:
                return Correlation(await survivor(tx, found[reference]), ThreadRule.HEADER, f"references <{reference}>")

    # (c) A ticket tag in the subject, only for a sender who already takes part in that ticket:
    # a guessed number must not let a stranger into someone else's ticket.
    sender = mail.from_[0].address.lower() if mail.from_ else ""
    for number in subject_tags(mail.subject, tag_prefix):
        ticket = await known.tagged(tx, number)
        if ticket is None or not sender:
            continue
        if await known.takes_part(tx, ticket, sender):
            return Correlation(await survivor(tx, ticket.id), ThreadRule.SUBJECT_TAG, f"subject tag #{number}, sender is a party")
        # The ticket's own agents writing "[#N] …" from a plain mail client (no token, no DKIM): the
        # mail belongs on the ticket. Threading gives no power: without proof it is kept and shown,
        # never run (agent_mail). A From the parser had to guess at names nobody.
        if config is not None and mail.from_is_clean:
            target = await survivor(tx, ticket.id)  # merged: the agents of the ticket it lives on count too
            for ticket_id in dict.fromkeys((ticket.id, target)):
                staff = await parties.agent_part(tx, config, ticket_id, sender)
                if staff:
                    return Correlation(target, ThreadRule.SUBJECT_TAG, f"subject tag #{number}, sender is {staff}")
        return Correlation(
            None, ThreadRule.NEW, f"subject tag #{number} ignored: {sender} is not a party of that ticket"
        )

    return Correlation(None, ThreadRule.NEW, "no token, known reference or usable subject tag")
