"""Compose mailgate's outgoing mail as wire bytes: threading headers, tag, Auto-Submitted, CR/LF-safe."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from mailgate import commands
from mailgate.models import File as File
from mailgate.outgoing import encode
from mailgate.outgoing.relay import mailbox

# Control characters (CR, LF, NUL, ...) end a header or smuggle in a new one: customer data never
# keeps them. Tabs become spaces too, so a folded subject stays one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_MSGID = re.compile(r"[^\x21-\x7e]|[<>]")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")  # RFC 5646 2.1


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
    """Everything one outgoing mail says; wire() turns it into headers and parts."""

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


def recipient(name: str, address: str) -> tuple[str, str]:
    """(display name, addr-spec) that never fails: whatever a customer's From said, the mail can be written.

    A non-ASCII domain goes as its IDNA A-label, so a mail to an ASCII local part stays 7-bit; a
    non-ASCII local part (RFC 6531) stays UTF-8 and wire() writes the headers as RFC 6532 UTF-8.
    Something that is no mailbox at all (a garbled From: "000", "x@[", a route) is written as the
    reserved "invalid-address@invalid" (RFC 2606); the relay client refuses to send such a mail anyway.
    """
    display = clean(name, 200)
    box = mailbox(clean(address, 400))
    if box is None:
        return display, "invalid-address@invalid"
    local, _, domain = box.address.rpartition("@")
    return display, encode.addr_spec(local, domain)


def threading(out: Outgoing) -> tuple[str | None, list[str]]:
    """In-Reply-To and References: ids fit to be referenced, the parent last, a long chain trimmed."""
    parent = clean_message_id(out.in_reply_to) if out.in_reply_to else None
    references = [r for r in (clean_message_id(x) for x in out.references) if r]
    if parent and parent not in references:
        references.append(parent)
    # RFC 5322 3.6.4: keep the first and the most recent ones when the chain grows long.
    return parent, references if len(references) <= 20 else [references[0], *references[-19:]]


def wire(out: Outgoing) -> bytes:
    """The mail as the relay receives it: CRLF, lines within 78 where a fold is possible, 7-bit
    unless an address needs UTF-8, the text, an HTML alternative, then the attachments.

    Written directly (encode.py), not through an EmailMessage: its header registry, set_content
    and generator cost ~2.5 ms a mail, this ~0.1 ms; tests/unit/test_wire_equivalence.py shows
    the email package reads both the same.
    """
    sender = recipient(out.from_name, out.from_address)
    people = [("From", [sender]), ("To", [recipient(out.to_name, out.to_address)])]
    if out.cc:
        people.append(("Cc", [recipient(name, address) for name, address in out.cc]))
    people.append(("Reply-To", [recipient(out.from_name, out.reply_to)]))
    # RFC 6532: a UTF-8 local part can only be written as itself, so such a mail has UTF-8 headers
    # (and goes only via SMTPUTF8): names and the subject are then written as themselves too.
    utf8 = any(not spec.isascii() for _, boxes in people for _, spec in boxes)
    head = [encode.addresses(name, boxes, utf8) for name, boxes in people]
    subject = commands.neutralise(clean(out.subject, 400))  # as in tagged_subject, for every composer
    head.append(encode.unstructured("Subject", subject, utf8))
    when = out.date or datetime.now(UTC)
    head.append(f"Date: {_date(when.replace(microsecond=0), when.utcoffset())}\r\nMessage-ID: <{out.message_id}>\r\n")
    parent, references = threading(out)
    if parent:
        head.append(f"In-Reply-To: <{parent}>\r\n")
    if references:
        head.append(encode.fold("References", [f"<{r}>" for r in references]))
    if out.automatic:
        # RFC 3834; Exchange/Outlook send no out-of-office, read receipt or other auto answer to
        # X-Auto-Response-Suppress, and vacation(1) and most Sieve vacation scripts skip bulk mail.
        head.append(f"Auto-Submitted: {out.auto_kind}\r\nX-Auto-Response-Suppress: All\r\nPrecedence: bulk\r\n")
    content, body = _content(out)
    head.append(f"X-Mailer: mailgate\r\nMIME-Version: 1.0\r\n{content}")
    if _LANGUAGE.fullmatch(out.language):
        head.append(f"Content-Language: {out.language}\r\n")
    return "".join(head).encode("utf-8" if utf8 else "ascii") + b"\r\n" + body


@functools.lru_cache(maxsize=16)  # mail written in the same second shares its Date; the offset is in the key
def _date(when: datetime, offset: timedelta | None) -> str:  # (aware datetimes of one instant compare equal)
    """RFC 5322 3.3 date-time, as email.utils.format_datetime writes it (seconds only)."""
    return format_datetime(when)


def _content(out: Outgoing) -> tuple[str, bytes]:
    """The MIME skeleton: text/plain, in multipart/alternative with the HTML, in multipart/mixed with files."""
    parts = [encode.text_part("plain", out.text.rstrip("\n") + "\n\n" + out.marker + "\n")]
    if out.html is not None:
        parts.append(encode.text_part("html", with_marker(out.html, out.marker)))
    # Our own Message-ID names the boundaries: the same mail is written the same way every time.
    boundary = "=_mg" + hashlib.blake2b(out.message_id.encode(), digest_size=9).hexdigest()
    content = parts[0] if len(parts) == 1 else encode.multipart("alternative", boundary + ".a", parts)
    if out.files:
        files = [encode.attachment_part(sendable_type(f.content_type), attachment_name(f), f.data) for f in out.files]
        content = encode.multipart("mixed", boundary + ".m", [content, *files])
    return content


def attachment_name(file: File) -> str:
    """The name a file goes out with: a forwarded mail (message/rfc822) keeps its meaning through ".eml"."""
    return file.name + (".eml" if file.content_type == "message/rfc822" and "." not in file.name else "")


_TYPE_NAME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")  # RFC 6838 4.2


def sendable_type(content_type: str) -> str:
    """The type a stored file goes out as: the sender's, unless it cannot go as base64 bytes or is malformed.

    A customer's forwarded bounce (message/delivery-status) or any message/* or multipart/* part
    may not be base64-encoded (RFC 2046 5.2.1, 5.1: composite types are 7bit, 8bit or binary only),
    and a malformed type would land in our header: those go out as application/octet-stream.
    A forwarded mail (message/rfc822) keeps its meaning through the ".eml" name of attachment_name.
    """
    maintype, _, subtype = content_type.lower().partition("/")
    if maintype in ("message", "multipart") or not (_TYPE_NAME.fullmatch(maintype) and _TYPE_NAME.fullmatch(subtype)):
        return "application/octet-stream"
    return f"{maintype}/{subtype}"


_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HTML_END = re.compile(r"</html\s*>", re.IGNORECASE)


def with_marker(html: str, marker: str) -> str:
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
