"""A web submission as the RFC 5322 message the pipeline reads: From the submitter, To the site's address."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from mailgate.sources.web_form import Submission


def message_id(sub: Submission, site: str, now: datetime, domain: str, secret: bytes) -> str:
    """The same request on the same day gets the same Message-ID.

    A double click, or a browser re-posting the form on reload, then arrives as one mail twice,
    and the pipeline keeps it once (same Message-ID, same body), as it does for a resent mail.
    """
    parts = [site, sub.name, sub.email, sub.subject, sub.message, sub.phone, now.date().isoformat()]
    digest = hmac.new(secret, "\0".join(parts).encode("utf-8", "replace"), hashlib.sha256).hexdigest()
    return f"web.{digest[:32]}@{domain}"


def address_literal(client: str) -> str:
    """The client as RFC 5321 4.1.3 writes an address in a Received line: [192.0.2.1] or [IPv6:2001:db8::1]."""
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return "[unknown]"
    return f"[IPv6:{ip.compressed}]" if ip.version == 6 else f"[{ip}]"


def build(sub: Submission, *, site: str, to: str, client: str, now: datetime, domain: str, secret: bytes) -> tuple[bytes, str]:
    """Wire bytes (CRLF) and the Message-ID (without brackets) of one submission."""
    mid = message_id(sub, site, now, domain, secret)
    msg = EmailMessage(policy=SMTP)
    # The trace a mail server would write: who sent it from where, through which site. The site
    # name is the operator's (an Ident), the address is the one the connection came from.
    msg["Received"] = f"from {address_literal(client)} by {domain} with HTTP (web site {site}); {format_datetime(now)}"
    local, _, host = sub.email.rpartition("@")
    # headerregistry quotes and encodes the name (RFC 2047) as needed; the address was checked.
    msg["From"] = Address(display_name=sub.name, username=local, domain=host)
    msg["To"] = to
    msg["Subject"] = sub.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{mid}>"
    body = sub.message + (f"\n\nPhone: {sub.phone}" if sub.phone else "")
    msg.set_content(body + "\n", charset="utf-8")
    return msg.as_bytes(), mid
