"""Values that flow between the stages of mailgate: plain frozen data, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class MailKind(enum.StrEnum):
    """What sort of sender wrote a message, as far as the headers and structure tell."""

    MESSAGE = "message"
    AUTO_REPLY = "auto-reply"
    BOUNCE = "bounce"
    BULK = "bulk"


class Source(enum.StrEnum):
    """How a raw message reached the spool."""

    SMTP = "smtp"
    LMTP = "lmtp"
    IMAP = "imap"
    PIPE = "pipe"
    IMPORT = "import"
    WEB = "web"  # the contact form or ticket API: a message built from what the submitter typed


class TicketStatus(enum.StrEnum):
    """Where a ticket stands; stored as these words, so old rows and scripts keep reading them."""

    NEW = "new"  # nobody has acted on it yet
    OPEN = "open"
    PENDING = "pending"  # waiting for the customer's answer
    WAITING = "waiting"  # snoozed until a wake-up time
    RESOLVED = "resolved"
    CLOSED = "closed"
    MERGED = "merged"  # joined into another ticket, which carries on
    SPAM = "spam"
    DELETED = "deleted"  # an agent deleted it ([delete], then [confirm]): hidden, restorable until retention


# Done with: a customer's reply reopens it, and it counts as nobody's open work.
CLOSED_STATUSES: frozenset[TicketStatus] = frozenset(
    {TicketStatus.RESOLVED, TicketStatus.CLOSED, TicketStatus.MERGED, TicketStatus.SPAM, TicketStatus.DELETED}
)
# The SLA clock stops while the ball is in the customer's court or the ticket sleeps.
PAUSED_STATUSES: frozenset[TicketStatus] = frozenset({TicketStatus.PENDING, TicketStatus.WAITING})
# What an agent may set with [status:…] or `tickets status`.
SETTABLE_STATUSES: tuple[TicketStatus, ...] = (
    TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.RESOLVED, TicketStatus.CLOSED
)


class ThreadRule(enum.StrEnum):
    """Which threading rule attached a message to its ticket."""

    TOKEN = "token"
    HEADER = "header"
    SUBJECT_TAG = "subject-tag"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class Correlation:
    ticket_id: int | None
    rule: ThreadRule
    detail: str  # what decided, for an operator reading "why is this mail here"


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: display name (decoded, may be empty) and addr-spec."""

    name: str
    address: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment or inline image, with its decoded bytes."""

    filename: str | None
    content_type: str
    size: int
    sha256: str
    inline: bool
    content_id: str | None
    data: bytes = field(repr=False)

    def to_json(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "inline": self.inline,
            "content_id": self.content_id,
        }


@dataclass(frozen=True, slots=True)
class File:
    """One attachment of an outgoing mail."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """How mailgate understands one raw message; the raw bytes stay the truth."""

    message_id: str  # without angle brackets
    message_id_generated: bool  # True when derived from the sha256 because none was usable
    in_reply_to: str | None  # without angle brackets
    references: tuple[str, ...]  # oldest first, as in the header, without angle brackets
    from_: tuple[Address, ...]
    from_is_clean: bool  # exactly one address and no parse defects (agent identity needs it)
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str
    date: datetime | None
    text: str  # the whole plain-text body (made from HTML when there is no text part)
    html: str | None  # sanitized HTML body, when there is one
    reply_text: str  # the new part of a reply: no quoted history, no signature
    attachments: tuple[Attachment, ...]
    kind: MailKind
    bounce_of: str | None  # for a bounce: the Message-ID it reports on, when known
    defects: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]  # every header, name as sent, value decoded
    signature: str | None = None  # the sign-off cut from reply_text ("Sent from my iPhone", a "-- " block)
    quote_style: str = "none"  # where the quoted history sat: top, bottom, inline (kept between answers), none
    # The HTML part as the client wrote it (within the layout limit, as html), for finding quoted
    # history only: sanitizing drops the class and id attributes that mark Gmail's and Outlook's
    # quote containers. Never stored, shown or sent on; html is the copy for that.
    html_as_sent: str | None = field(default=None, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who the transport said the message is from and for; '' is the null sender."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    source: Source
    source_ref: str | None = None
    imported: bool = False
    peer: str | None = None  # the SMTP/LMTP client's IP address (None: IMAP, pipe, import)

    def __post_init__(self) -> None:
        # Envelope bytes that are not UTF-8 arrive as lone surrogates (aiosmtpd and Python's argv
        # both use surrogateescape), which neither SQLite nor JSON text takes: one such MAIL FROM
        # made every delivery of the mail fail. They become U+FFFD; the rest is kept as sent.
        object.__setattr__(self, "mail_from", _storable(self.mail_from))
        object.__setattr__(self, "rcpt_to", tuple(_storable(r) for r in self.rcpt_to))


def _storable(value: str) -> str:
    if value.isascii():
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")  # the bytes the sender really sent
    except UnicodeEncodeError:
        data = value.encode("utf-8", "surrogatepass")  # a surrogate that stands for no byte
    return data.decode("utf-8", "replace")
