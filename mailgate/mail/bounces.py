"""Who a bounce says could not be reached: DSN fields, X-Failed-Recipients, then the formats' own lines."""

from __future__ import annotations

import json
import re
from email.message import Message

from mailgate.mail import mime
from mailgate.mail.charsets import decode_bytes

# An address as delivery software prints it; the local part may be quoted (RFC 5322 3.4.1).
_ADDR = r"(?:\"[^\"\r\n]{1,64}\"|[^\s<>()\[\]\"',;:@]{1,64})@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
_ADDR_RE = re.compile(_ADDR)

# RFC 3464 2.3.1/2.3.2; Original-Recipient names the address as we wrote it (before aliasing).
_DSN_FIELD = re.compile(rf"^(original|final)-recipient:\s*(?:rfc822\s*;)?\s*<?({_ADDR})", re.I | re.M)
_SUCCESS = frozenset({"delivered", "relayed", "expanded", "deliverable"})

# Lines that name the failed address in formats without a report part, one pattern per habit:
# Postfix, qmail and Exim ("<a@b>: ..."), Sendmail ("550 <a@b>... User unknown"), au by KDDI
# ("Could not be delivered to: <a@b>"), InterScan and SMTP transcripts ("RCPT TO:<a@b>"),
# Exchange and Lotus ("Failed Recipient: a@b"), Verizon's MMS gateway (the returned "To:").
_LINES: tuple[re.Pattern[str], ...] = (
    re.compile(rf"^[ \t]*<({_ADDR})>:?(?:[ \t]|$)", re.M),
    re.compile(
        r"(?:undeliverable(?:[ \t]+address)?|undeliverable to|invalid (?:final delivery )?userid|mailbox is full|"
        r"(?:could|can) ?not be delivered to|addressed to|your message to|delivery failed[^\n:]{0,40}|"
        r"following recipients?(?:\(s\))?|error-for|delivering (?:your )?(?:mail|message) to)"
        rf"[ \t]*:?[ \t]*\n?[ \t]*['\"<]?({_ADDR})",
        re.I,
    ),
    re.compile(rf"\bdda:SMTP=({_ADDR})", re.I),  # Exchange 5.5 X.400 recipient
    re.compile(rf"\(generated from ({_ADDR})\)", re.I),
    # OpenSMTPD, Zoho and friends: the address opens the line, the server's verdict follows.
    re.compile(
        rf"^[ \t]*<?({_ADDR})>?(?::|[ \t])[ \t]*(?:[45]\d\d\b|[45]\.\d|invalid|unknown|user|mailbox|no such|"
        r"host|domain|quota|rejected|refused|denied|over)",
        re.I | re.M,
    ),  # Exim, an alias that expanded to a failing one
    re.compile(rf"^[ \t]*(?:[45]\d\d[ -](?:[45]\.\d{{1,3}}\.\d{{1,3}}[ \t]+)?)?<?({_ADDR})>?\.\.\.[ \t]", re.M),
    re.compile(rf"unable to deliver (?:your )?message to:?[ \t]*<?({_ADDR})", re.I),
    re.compile(rf"\bRCPT TO:[ \t]*<?({_ADDR})", re.I),
    re.compile(rf"^[ \t]*[45]\d\d[ -](?:[45]\.\d{{1,3}}\.\d{{1,3}}[ \t]+)?<({_ADDR})>", re.M),
    re.compile(rf"^[ \t]*(?:failed|invalid|unknown|bad)[ \t]+(?:recipient|address|user)s?[ \t]*:[ \t]*<?({_ADDR})", re.I | re.M),
    re.compile(rf"^[ \t]*recipient(?: address)?:[ \t]*<?({_ADDR})", re.I | re.M),
    re.compile(rf"^[ \t]*<?({_ADDR})>?[ \t]*(?:-|:)?[ \t]*(?:no such user|user unknown|unknown user|mailbox (?:is )?(?:full|unavailable))", re.I | re.M),
    re.compile(rf"message could not be delivered to mobile[\s\S]{{0,400}}?^To:[ \t]*<?({_ADDR})", re.I | re.M),
)  # fmt: skip
# "The following address(es) failed:" (Exim), "did not reach the following recipient(s):"
# (Exchange), "could not be delivered to the following recipients:" (Symantec, Exchange), the
# addresses on the lines below it.
_LIST_HEAD = re.compile(
    r"(?:following[ \t]+(?:recipients?|addresse?s?|address\(es\)|recipient\(s\)|user\(s\)|users?)\b|"
    r"failed addresses follow|to which the message has not yet been delivered|list of recipients)[^\n]*\n",
    re.I,
)
# Where the returned message starts: nothing below is about who failed.
_RETURNED = re.compile(
    r"^[ \t]*-+[ \t]*(?:original message|unsent message follows|the header and top|"
    r"below this line is a copy|this is a copy of|message headers? follows?|original message follows)|"
    r"^[ \t]*-+[ \t]*(?:forwarded|returned) message|^[ \t|]*-*[ \t]*(?:original message|message text|message headers) follows?",
    re.I | re.M,
)
_ALONE = re.compile(rf"^[ \t]*<?({_ADDR})>?[ \t]*$", re.M)
_SNS_BOUNCED = re.compile(r'"bouncedRecipients"\s*:\s*(\[[^\]]*\])')
_TEXT_LIMIT = 64 * 1024  # the explanation sits at the top; a returned body can be megabytes


def bounced_recipients(raw: bytes) -> tuple[str, ...]:
    """The addresses a bounce reports as failed (or delayed), as the report writes them; never raises."""
    try:
        msg = mime.parse_bytes(raw)
        found = _from_headers(msg)
        texts: list[str] = []
        reports: list[str] = []
        _collect(msg, texts, reports, 0)
        for report in reports:
            found += _from_report(report)
        if not found:
            for text in texts:
                found += _from_text(text)
    except Exception:  # a hostile bounce must not cost the mail; it simply names nobody
        return ()
    return tuple(dict.fromkeys(_clean(a) for a in found if _clean(a)))


def _clean(address: str) -> str:
    return address.strip().strip("<>.,;:").strip()


def _from_headers(msg: Message) -> list[str]:
    # Exim: X-Failed-Recipients lists every address that failed, comma-separated.
    values = msg.get_all("x-failed-recipients") or []
    return [m.group(0) for v in values for m in _ADDR_RE.finditer(str(v))]


def _collect(part: Message, texts: list[str], reports: list[str], depth: int) -> None:
    ctype = mime.content_type(part)
    if ctype in ("message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"):
        # The returned message: its To: is not necessarily the one that failed. A gateway that
        # wraps the whole report instead (InterScan, some Exchange relays) still gets read.
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            if mime.content_type(inner[0]) == "multipart/report" and depth < mime.MAX_DEPTH:
                _collect(inner[0], texts, reports, depth + 1)
        return
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        reports.append(_report_text(part))
        return
    if part.is_multipart():
        payload = part.get_payload()
        if depth < mime.MAX_DEPTH and isinstance(payload, list):
            for child in payload:
                if isinstance(child, Message):
                    _collect(child, texts, reports, depth + 1)
        return
    if ctype.startswith("text/") and mime.disposition(part) != "attachment":
        data = mime.payload_bytes(part)[:_TEXT_LIMIT]
        text = decode_bytes(data, mime.params(part).get("charset"))[0]
        if ctype == "text/html":
            text = re.sub(r"<[^>]{0,2000}>", " ", text)
        texts.append(mime.newlines(text))


def _report_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # compat32 splits a delivery-status body into header blocks
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in block.items()) for block in payload if isinstance(block, Message)
        )
    return decode_bytes(mime.payload_bytes(part)[:_TEXT_LIMIT], "utf-8")[0]


def _from_report(report: str) -> list[str]:
    """Per-recipient blocks (RFC 3464 2.3) whose Action is not a success; Original- before Final-."""
    found: list[str] = []
    for block in re.split(r"\n[ \t]*\n", report.replace("\r\n", "\n")):
        action = re.search(r"^action:\s*([a-z]+)", block, re.I | re.M)
        if action and action.group(1).lower() in _SUCCESS:
            continue
        fields = {m.group(1).lower(): m.group(2) for m in _DSN_FIELD.finditer(block)}
        address = fields.get("original") or fields.get("final")
        if address:
            found.append(address)
    return found


def _from_text(text: str) -> list[str]:
    sns = _SNS_BOUNCED.search(text)
    if sns:
        return _sns_recipients(sns.group(1))
    cut = _RETURNED.search(text)
    head = text[: cut.start()] if cut else text
    found: list[tuple[int, str]] = []
    for pattern in _LINES:
        found.extend((m.start(1), m.group(1)) for m in pattern.finditer(head))
    for m in _LIST_HEAD.finditer(head):
        found.extend(_listed(head, m.end()))
    if not found:
        # Last resort: an address alone on its line in the explanation (m-FILTER, Japanese
        # carriers) names the recipient; the returned message is already cut off.
        found = [(m.start(1), m.group(1)) for m in _ALONE.finditer(head)]
    return [address for _, address in sorted(found)]


def _listed(text: str, start: int) -> list[tuple[int, str]]:
    """The addresses on the lines after a "following recipients" heading, up to the first other line."""
    found: list[tuple[int, str]] = []
    pos = start
    for line in text[start:].split("\n")[:50]:
        stripped = line.strip()
        if not stripped:
            if found:
                break
        else:
            match = _ADDR_RE.search(stripped)
            if match is None or match.start() > 2:
                # Dashed rules and a wrapped heading ("The following addresses\nfailed:") come first.
                if found or not (stripped.startswith(("-", "*", "=", "|")) or stripped.endswith(":")):
                    break
            else:
                found.append((pos + line.find(match.group(0)), match.group(0)))
        pos += len(line) + 1
    return found


def _sns_recipients(array: str) -> list[str]:
    try:
        entries = json.loads(array)
    except ValueError:
        return [m.group(0) for m in _ADDR_RE.finditer(array)]
    return [str(e.get("emailAddress", "")) for e in entries if isinstance(e, dict) and e.get("emailAddress")]
