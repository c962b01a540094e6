"""Render a ParsedMail for the command line: JSON, plain text, and a mail-parser forensic trace."""

from __future__ import annotations

import json
from typing import Any

from mailgate.models import Address, ParsedMail


def _addresses(addresses: tuple[Address, ...]) -> list[dict[str, str]]:
    return [a.to_json() for a in addresses]


def parsed_to_json(p: ParsedMail) -> dict[str, object]:
    """The parsed mail as JSON-ready data (attachment bytes left out, their sha256 kept)."""
    return {
        "message_id": p.message_id,
        "message_id_generated": p.message_id_generated,
        "in_reply_to": p.in_reply_to,
        "references": list(p.references),
        "from": _addresses(p.from_),
        "from_is_clean": p.from_is_clean,
        "to": _addresses(p.to),
        "cc": _addresses(p.cc),
        "reply_to": _addresses(p.reply_to),
        "subject": p.subject,
        "date": p.date.isoformat() if p.date is not None else None,
        "text": p.text,
        "html": p.html,
        "reply_text": p.reply_text,
        "signature": p.signature,  # what was cut as a sign-off, so an operator sees why text is missing
        "quote_style": p.quote_style,
        "attachments": [a.to_json() for a in p.attachments],
        "kind": p.kind.value,
        "bounce_of": p.bounce_of,
        "defects": list(p.defects),
    }


def _format_addresses(addresses: tuple[Address, ...]) -> str:
    return ", ".join(f"{a.name} <{a.address}>" if a.name else a.address for a in addresses)


def format_text(p: ParsedMail) -> str:
    """A human-readable summary: headers that matter, attachments, defects, then the reply text."""
    generated = " (generated)" if p.message_id_generated else ""
    lines = [
        f"Message-ID:  {p.message_id}{generated}",
        f"Kind:        {p.kind.value}" + (f" (bounce of {p.bounce_of})" if p.bounce_of else ""),
        f"From:        {_format_addresses(p.from_)}" + ("" if p.from_is_clean else "  [not clean]"),
        f"To:          {_format_addresses(p.to)}",
    ]
    if p.cc:
        lines.append(f"Cc:          {_format_addresses(p.cc)}")
    if p.reply_to:
        lines.append(f"Reply-To:    {_format_addresses(p.reply_to)}")
    lines.append(f"Subject:     {p.subject}")
    lines.append(f"Date:        {p.date.isoformat() if p.date else '-'}")
    if p.in_reply_to:
        lines.append(f"In-Reply-To: {p.in_reply_to}")
    if p.references:
        lines.append(f"References:  {len(p.references)} ids, last {p.references[-1]}")
    for a in p.attachments:
        flag = " inline" if a.inline else ""
        lines.append(
            f"Attachment:  {a.filename or '(unnamed)'} {a.content_type} {a.size} B{flag} sha256:{a.sha256[:16]}"
        )
    if p.defects:
        lines.append(f"Defects:     {', '.join(p.defects)}")
    lines.append(
        f"Body:        {len(p.text)} chars text" + (f", {len(p.html)} chars HTML" if p.html is not None else "")
    )
    lines.append(f"Quote:       {p.quote_style}" + (f"; signature cut: {p.signature!r}" if p.signature else ""))
    lines.append("")
    lines.append(p.reply_text)
    return "\n".join(lines)


def trace(raw: bytes) -> dict[str, object]:
    """mail-parser's forensic view: Received hops with delays, and its defect categories.

    mail-parser is a debugging aid only (DEPENDENCIES.md P6): it crashes on some mails, so any
    failure comes back as {"error": ...} instead of an exception.
    """
    try:
        import mailparser

        mail = mailparser.parse_from_bytes(raw)
        result: dict[str, object] = {
            "received": _jsonable(mail.received),
            "defects": _jsonable(mail.defects),
            "defects_categories": sorted(str(c) for c in mail.defects_categories),
            "has_defects": bool(mail.has_defects),
        }
        return result
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _jsonable(value: Any) -> Any:
    """Round-trip through json so datetimes and odd objects become strings."""
    return json.loads(json.dumps(value, default=str))
