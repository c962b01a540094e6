"""Build mailgate's outgoing mail as an EmailMessage: threading headers, tag, Auto-Submitted, CR/LF-safe."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime

from mailgate import commands
from mailgate.models import File as File
from mailgate.outgoing.relay import mailbox

# Control characters (CR, LF, NUL, ...) end a header or smuggle in a new one: customer data never
# keeps them. Tabs become spaces too, so a folded subject stays one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_MSGID = re.compile(r"[^\x21-\x7e]|[<>]")
_SMTP = policy.SMTP.clone(max_line_length=78)
_SMTPUTF8 = policy.SMTPUTF8.clone(max_line_length=78)
_ADDRESS_HEADERS = ("From", "To", "Cc", "Reply-To")


def clean(value: str, limit: int = 500) -> str:
    """A value safe to put in a header: no control characters, no runs of spaces, bounded length."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def clean_message_id(value: str) -> str | None:
    """A Message-ID from someone else's mail, fit to be referenced (no brackets, no spaces)."""
    value = value.strip().removeprefix("<").removesuffix(">")
    return value if "@" in value and len(value) <= 250 and not _MSGID.search(value) else None


def tagged_subject(subject: str, tag: str, number: int) -> str:
    """"[#1234] subject": the tag lets any client thread the answer, even without headers.

    Command tags a customer wrote ("[status:closed]") are rendered as text: whoever answers the
    mail sends the subject back, and an agent's answer must not carry the customer's commands.
    """
    subject = commands.neutralise(clean(subject, 300))
    marker = f"[{tag}{number}]"
    return subject if marker in subject else f"{marker} {subject}".strip()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Everything one outgoing mail says; compose() turns it into headers and parts."""

    from_name: str
    from_address: str
    to_name: str
    to_address: str
    reply_to: str  # the signed per-ticket token address
    subject: str  # already tagged
    message_id: str  # without angle brackets
    text: str
    html: str | None
    marker: str  # the body marker that survives providers rewriting Message-IDs
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()  # oldest first
    automatic: bool = True  # Auto-Submitted (RFC 3834) unless a person wrote it
    auto_kind: str = "auto-replied"  # auto-replied (an answer to a mail) | auto-generated
    language: str = "en"
    date: datetime | None = None
    cc: tuple[tuple[str, str], ...] = ()  # (name, address): the other people an agent's reply goes to
    files: tuple[File, ...] = ()  # attachments, after the text


def _address(name: str, address: str) -> HeaderAddress:
    """A header address that never raises: whatever a customer's From said, the mail can be composed.

    A non-ASCII domain goes as its IDNA A-label, so a mail to an ASCII local part stays 7-bit; a
    non-ASCII local part (RFC 6531) stays UTF-8 and to_bytes writes the header as RFC 6532 UTF-8.
    Something that is no mailbox at all (a garbled From: "000", "x@[", a route) makes the email
    package raise or fold "@" into an encoded word, so it is written as the reserved
    "invalid-address@invalid" (RFC 2606); the relay client refuses to send such a mail anyway.
    """
    display = clean(name, 200)
    box = mailbox(clean(address, 400))
    if box is None:
        return HeaderAddress(display_name=display, username="invalid-address", domain="invalid")
    local, _, domain = box.address.rpartition("@")
    try:
        return HeaderAddress(display_name=display, username=local, domain=domain)
    except (ValueError, IndexError, AttributeError):  # the email package's own parser on odd input
        return HeaderAddress(display_name=display, username="invalid-address", domain="invalid")


def _set_addresses(msg: EmailMessage, header: str, people: list[tuple[str, str]]) -> None:
    """Set an address header; a display name the email package still chokes on is left out, never the mail."""
    try:
        msg[header] = [_address(name, address) for name, address in people]
    except (ValueError, IndexError, AttributeError, TypeError):
        msg[header] = [_address("", address) for _, address in people]


def compose(out: Outgoing) -> EmailMessage:
    """The message, headers built by the email package (never pasted), text plus an HTML alternative."""
    msg = EmailMessage(policy=policy.default)
    _set_addresses(msg, "From", [(out.from_name, out.from_address)])
    _set_addresses(msg, "To", [(out.to_name, out.to_address)])
    if out.cc:
        _set_addresses(msg, "Cc", list(out.cc))
    _set_addresses(msg, "Reply-To", [(out.from_name, out.reply_to)])
    msg["Subject"] = commands.neutralise(clean(out.subject, 400))  # as in tagged_subject, for every composer
    msg["Date"] = format_datetime(out.date or datetime.now(UTC))
    msg["Message-ID"] = f"<{out.message_id}>"
    parent = clean_message_id(out.in_reply_to) if out.in_reply_to else None
    references = [r for r in (clean_message_id(x) for x in out.references) if r]
    if parent:
        msg["In-Reply-To"] = f"<{parent}>"
        if parent not in references:
            references.append(parent)
    if references:
        # RFC 5322 3.6.4: keep the first and the most recent ones when the chain grows long.
        kept = references if len(references) <= 20 else [references[0], *references[-19:]]
        msg["References"] = " ".join(f"<{r}>" for r in kept)
    if out.automatic:
        msg["Auto-Submitted"] = out.auto_kind
        # Exchange/Outlook: no out-of-office, read receipts or other auto answers to this mail.
        msg["X-Auto-Response-Suppress"] = "All"
        # vacation(1) and most Sieve vacation scripts stay silent on bulk mail.
        msg["Precedence"] = "bulk"
    msg["X-Mailer"] = "mailgate"
    text = out.text.rstrip("\n") + "\n\n" + out.marker + "\n"
    msg.set_content(text, cte="quoted-printable")
    if out.html is not None:
        html = _with_marker(out.html, out.marker)
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
    for file in out.files:
        maintype, _, subtype = sendable_type(file.content_type).partition("/")
        name = file.name + (".eml" if file.content_type == "message/rfc822" and "." not in file.name else "")
        msg.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=name)
    msg["Content-Language"] = out.language  # after the body: set_content() and add_attachment() move Content-* headers
    return msg


_TYPE_NAME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")  # RFC 6838 4.2


def sendable_type(content_type: str) -> str:
    """The type a stored file goes out as: the sender's, unless re-attaching it as bytes could fail.

    A customer's forwarded bounce (message/delivery-status) or any message/* or multipart/* part
    cannot be attached as bytes (the stdlib wants message objects there, and raises), and a
    malformed type would land in our header: those go out as application/octet-stream.
    A forwarded mail (message/rfc822) keeps its meaning through the ".eml" name compose gives it.
    """
    maintype, _, subtype = content_type.lower().partition("/")
    if maintype in ("message", "multipart") or not (_TYPE_NAME.fullmatch(maintype) and _TYPE_NAME.fullmatch(subtype)):
        return "application/octet-stream"
    return f"{maintype}/{subtype}"


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HTML_END = re.compile(r"</html\s*>", re.IGNORECASE)


def _with_marker(html: str, marker: str) -> str:
    """The marker as the body's last paragraph: after </html> it is no part of the document, and
    clients drop it from the quote when an agent or customer answers (so the threading fallback fails)."""
    if not marker:
        return html
    paragraph = f'<p style="color:#999999;font-size:10px">{marker}</p>\n'
    for end in (_BODY_END, _HTML_END):
        found = list(end.finditer(html))
        if found:
            at = found[-1].start()
            return html[:at] + paragraph + html[at:]
    return html + "\n" + paragraph


def needs_utf8(msg: EmailMessage) -> bool:
    """Whether an address in the headers is non-ASCII after IDNA: only RFC 6532 UTF-8 headers can carry it."""
    for name in _ADDRESS_HEADERS:
        for value in msg.get_all(name, ()):
            if any(not a.addr_spec.isascii() for a in getattr(value, "addresses", ())):
                return True
    return False


def to_bytes(msg: EmailMessage) -> bytes:
    """Wire bytes with CRLF line ends, as the relay will receive them.

    The 7-bit policy would put RFC 2047 encoded words inside a non-ASCII address
    ("<=?utf-8?q?j=C3=BCrgen?=@...>"), which RFC 2047 section 5 forbids and no client reads
    back as an address; such a mail is written with UTF-8 headers and goes only via SMTPUTF8.
    """
    try:
        if needs_utf8(msg):
            return msg.as_bytes(policy=_SMTPUTF8)
        return msg.as_bytes(policy=_SMTP)
    except UnicodeEncodeError:
        return msg.as_bytes(policy=_SMTPUTF8)
