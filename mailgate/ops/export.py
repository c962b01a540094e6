"""Print or export a ticket's correspondence: a printable HTML page, an mbox of the thread, or .eml files.

Messages are numbered 1..n in the order `tickets show` lists them (every message row, oldest first).
Internal ones (notes, and agents' own mails to mailgate) are left out unless notes are asked for; the
customer-facing copy of an agent's answer is the sent ('out') message, which is always there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.parser import BytesParser
from email.utils import format_datetime

from mailgate import tokens
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.models import File
from mailgate.outgoing import compose, export_html
from mailgate.outgoing import notices as outbound
from mailgate.outgoing.export_html import INTERNAL
from mailgate.store import Txn
from mailgate.store import export as rows
from mailgate.store import tickets as ticket_store
from mailgate.store.export import ThreadMessage
from mailgate.store.ticket_facts import facts

FORMATS: tuple[str, ...] = ("html", "mbox", "eml")
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
_TYPES = {"html": "text/html", "mbox": "application/mbox", "eml": "message/rfc822"}


@dataclass(frozen=True, slots=True)
class Export:
    """The exported bytes, with the type and file name they go out or are saved under."""

    data: bytes
    content_type: str
    filename: str
    messages: tuple[int, ...]  # the numbers exported


def numbers(value: str) -> list[int]:
    """"1,3,4" or "1 3 4" → [1, 3, 4]; anything else is refused."""
    words = [w for w in re.split(r"[,;\s]+", value.strip()) if w]
    if not words or not all(w.lstrip("#").isdecimal() and len(w) <= 6 for w in words):
        raise Refused(f"--messages {value!r}: write message numbers as tickets show lists them, e.g. 1,3,4")
    return list(dict.fromkeys(int(w.lstrip("#")) for w in words))


def pick(thread: Sequence[ThreadMessage], wanted: Sequence[int] | None, notes: bool) -> list[ThreadMessage]:
    """The messages asked for, in thread order; internal ones only with notes."""
    if wanted is None:
        return [m for m in thread if notes or m.direction not in INTERNAL]
    unknown = [n for n in wanted if not 1 <= n <= len(thread)]
    if unknown:
        raise Refused(f"no message {', '.join(map(str, unknown))} (the ticket has {len(thread)})")
    chosen = [thread[n - 1] for n in sorted(wanted)]
    hidden = [m.number for m in chosen if m.direction in INTERNAL and not notes]
    if hidden:
        raise Refused(f"message {', '.join(map(str, hidden))} is internal (a note or an agent's mail): add notes")
    return chosen


def wire(m: ThreadMessage, ticket_subject: str) -> bytes:
    """The message as it travelled (stored bytes) or, for notes and mail whose bytes are gone, rebuilt
    from its columns with its Message-ID and In-Reply-To, so a mail reader still threads it."""
    if m.raw is not None and m.direction not in INTERNAL:
        # A mail handed over by an MTA pipe or imported from an mbox may still start with its mbox
        # "From " envelope line, which is no header: kept, it would end the headers of the copy.
        return m.raw.split(b"\n", 1)[1] if m.raw.startswith(b"From ") and b"\n" in m.raw else m.raw
    msg = EmailMessage(policy=policy.SMTP)
    internal = m.direction in INTERNAL
    msg["From"] = compose.clean(f"{m.from_name} <{m.from_address}>" if m.from_name else m.from_address or "unknown")
    if m.to:
        msg["To"] = compose.clean(", ".join(m.to))
    subject = compose.clean(m.subject or ticket_subject)
    msg["Subject"] = f"[internal note] {subject}" if internal else subject
    try:
        msg["Date"] = format_datetime(datetime.fromisoformat(m.date or m.created_at))
    except ValueError:
        pass
    own = compose.clean_message_id(m.message_id)
    msg["Message-ID"] = f"<{own}>" if own else f"<message-{m.number}@export.invalid>"
    parent = compose.clean_message_id(m.in_reply_to or "")
    if parent:
        msg["In-Reply-To"] = f"<{parent}>"
        msg["References"] = f"<{parent}>"
    if internal:
        msg["X-Mailgate-Internal"] = "note"
    msg.set_content(m.text or "")
    return msg.as_bytes()


def mbox(messages: Sequence[ThreadMessage], ticket_subject: str) -> bytes:
    """mboxrd: each message after a "From " line, its own lines that start with ">*From " get one more ">"."""
    out = bytearray()
    for m in messages:
        data = wire(m, ticket_subject).replace(b"\r\n", b"\n")
        sender = (m.from_address or "MAILER-DAEMON").replace(" ", "") or "MAILER-DAEMON"
        out += f"From {sender} {_asctime(m)}\n".encode()
        out += _FROM_LINE.sub(rb">\1", data).rstrip(b"\n") + b"\n\n"
    return bytes(out)


def _asctime(m: ThreadMessage) -> str:
    try:
        return datetime.fromisoformat(m.date or m.created_at).strftime("%a %b %d %H:%M:%S %Y")
    except ValueError:
        return "Thu Jan 01 00:00:00 1970"


def eml(messages: Sequence[ThreadMessage], ticket_subject: str, title: str) -> bytes:
    """One message as it was; several as a multipart/digest of message/rfc822 parts (RFC 2046 5.1.5)."""
    if len(messages) == 1:
        return wire(messages[0], ticket_subject)
    digest = MIMEMultipart("digest")
    digest["Subject"] = compose.clean(title)
    for m in messages:
        digest.attach(MIMEMessage(BytesParser(policy=policy.compat32).parsebytes(wire(m, ticket_subject))))
    return digest.as_bytes()


async def export(
    tx: Txn, config: Config, number: int, fmt: str, wanted: Sequence[int] | None = None, *, notes: bool = False
) -> Export:
    """Ticket #number's correspondence (or the numbered messages) as html, mbox or eml bytes."""
    if fmt not in FORMATS:
        raise Refused(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    ticket_id = await ticket_store.id_of(tx, number)
    if ticket_id is None:
        raise Refused(f"no ticket #{number}")
    ticket = await facts(tx, ticket_id)
    assert ticket is not None
    chosen = pick(await rows.thread(tx, ticket_id), wanted, notes)
    if not chosen:
        raise Refused(f"ticket #{number} has no messages to export")
    tag = config.gateway.ticket_tag
    title = f"[{tag}{number}] {ticket.subject}"
    if fmt == "html":
        data = export_html.page(ticket, chosen, tag=tag, gateway=config.gateway.name, zone=config.gateway.timezone,
                                printed=tx.now()).encode()
    elif fmt == "mbox":
        data = mbox(chosen, ticket.subject)
    else:
        data = eml(chosen, ticket.subject, title)
    ext = "html" if fmt == "html" else fmt
    return Export(data, _TYPES[fmt], f"ticket-{number}.{ext}", tuple(m.number for m in chosen))


async def by_mail(tx: Txn, config: Config, agent: AgentConfig, ticket_id: int | None, value: str) -> str:
    """[print] / [print:notes]: the ticket's printable page mailed to the asking agent, attached."""
    number = await ticket_store.number_of(tx, ticket_id) if ticket_id is not None else None
    if number is None:
        raise Refused("[print] needs a ticket: reply to a ticket's notification")
    notes = value == "notes"
    page = await export(tx, config, number, "html", notes=notes)
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, ticket_id or 0)
    await mailer.queue_mail(
        tx, info, kind="notify", template="print", to_name=agent.name, to_address=agent.addresses[0],
        language=mailer.agent_language(info, agent), auto_kind="auto-generated",
        reply_token=tokens.Token(tokens.AGENT_REPLY, info.number, agent.id),
        data=mailer.data(info, agent_name=agent.name, agent_id=agent.id, outcome={"notes": notes}),
        files=(File(page.filename, page.content_type, page.data),),
    )
    shown = len(page.messages)
    return f"the printable page ({shown} message{'' if shown == 1 else 's'}{', notes included' if notes else ''}) mailed to you"
