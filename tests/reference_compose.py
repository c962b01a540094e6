"""The email package's way to build an outgoing mail (EmailMessage, policy.default), kept as the
reference compose.wire() is checked against: tests/unit/test_wire_equivalence.py and bench/compose.py."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime

from mailgate import commands
from mailgate.outgoing.compose import Outgoing, attachment_name, clean, sendable_type, threading, with_marker
from mailgate.outgoing.relay import mailbox

_SMTP = policy.SMTP.clone(max_line_length=78)
_SMTPUTF8 = policy.SMTPUTF8.clone(max_line_length=78)
_ADDRESS_HEADERS = ("From", "To", "Cc", "Reply-To")


def _address(name: str, address: str) -> HeaderAddress:
    display = clean(name, 200)
    box = mailbox(clean(address, 400))
    if box is None:
        return HeaderAddress(display_name=display, username="invalid-address", domain="invalid")
    local, _, domain = box.address.rpartition("@")
    try:
        return HeaderAddress(display_name=display, username=local, domain=domain)
    except (ValueError, IndexError, AttributeError):
        return HeaderAddress(display_name=display, username="invalid-address", domain="invalid")


def _set_addresses(msg: EmailMessage, header: str, people: list[tuple[str, str]]) -> None:
    try:
        msg[header] = [_address(name, address) for name, address in people]
    except (ValueError, IndexError, AttributeError, TypeError):
        msg[header] = [_address("", address) for _, address in people]


def compose(out: Outgoing) -> EmailMessage:
    """The message, headers built by the email package, text plus an HTML alternative, then files."""
    msg = EmailMessage(policy=policy.default)
    _set_addresses(msg, "From", [(out.from_name, out.from_address)])
    _set_addresses(msg, "To", [(out.to_name, out.to_address)])
    if out.cc:
        _set_addresses(msg, "Cc", list(out.cc))
    _set_addresses(msg, "Reply-To", [(out.from_name, out.reply_to)])
    msg["Subject"] = commands.neutralise(clean(out.subject, 400))
    msg["Date"] = format_datetime(out.date or datetime.now(UTC))
    msg["Message-ID"] = f"<{out.message_id}>"
    parent, references = threading(out)
    if parent:
        msg["In-Reply-To"] = f"<{parent}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    if out.automatic:
        msg["Auto-Submitted"] = out.auto_kind
        msg["X-Auto-Response-Suppress"] = "All"
        msg["Precedence"] = "bulk"
    msg["X-Mailer"] = "mailgate"
    msg.set_content(out.text.rstrip("\n") + "\n\n" + out.marker + "\n", cte="quoted-printable")
    if out.html is not None:
        msg.add_alternative(with_marker(out.html, out.marker), subtype="html", cte="quoted-printable")
    for file in out.files:
        maintype, _, subtype = sendable_type(file.content_type).partition("/")
        msg.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=attachment_name(file))
    msg["Content-Language"] = out.language  # after the body: set_content() and add_attachment() move Content-* headers
    return msg


def needs_utf8(msg: EmailMessage) -> bool:
    for name in _ADDRESS_HEADERS:
        for value in msg.get_all(name, ()):
            if any(not a.addr_spec.isascii() for a in getattr(value, "addresses", ())):
                return True
    return False


def to_bytes(msg: EmailMessage) -> bytes:
    """Wire bytes with CRLF; UTF-8 headers (SMTPUTF8) only when an address needs them."""
    try:
        if needs_utf8(msg):
            return msg.as_bytes(policy=_SMTPUTF8)
        return msg.as_bytes(policy=_SMTP)
    except UnicodeEncodeError:
        return msg.as_bytes(policy=_SMTPUTF8)


def reference(out: Outgoing) -> bytes:
    """The reference's wire bytes for one mail."""
    return to_bytes(compose(out))
