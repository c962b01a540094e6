"""A ticket's correspondence as one printable HTML page: headers, text and files of each message, notes marked.

Everything shown comes from senders, so every value is escaped; a message's body is its plain text
(made from the HTML part when it had none), never the sender's markup: a printout needs no remote
images, scripts or styles that could hide words. The page loads nothing from anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from zoneinfo import ZoneInfo

from mailgate.store.export import ThreadMessage
from mailgate.store.ticket_facts import TicketFacts

INTERNAL = frozenset({"note", "agent"})
_LABELS = {"in": "Received", "out": "Sent", "note": "Internal note", "agent": "Internal: agent's mail"}

_STYLE = """
body { font-family: Arial, Helvetica, sans-serif; font-size: 11pt; color: #111; margin: 2em auto; max-width: 50em; }
h1 { font-size: 15pt; margin: 0 0 .3em; }
.facts { color: #444; margin-bottom: 1.5em; }
.message { border-top: 1px solid #999; padding: .8em 0; page-break-inside: avoid; }
.internal { border: 2px dashed #b35900; background: #fff6e5; padding: .8em; margin: .8em 0; }
.badge { display: inline-block; font-weight: bold; font-size: 9pt; text-transform: uppercase; color: #b35900; }
table.headers { border-collapse: collapse; font-size: 10pt; }
table.headers th { text-align: left; padding-right: 1em; color: #555; font-weight: normal; vertical-align: top; }
pre.body { white-space: pre-wrap; word-wrap: break-word; font-family: inherit; font-size: 11pt; margin: .8em 0; }
ul.files { font-size: 10pt; color: #333; }
@media print { body { margin: 0; max-width: none; } a { color: inherit; text-decoration: none; } }
"""


def size(n: int) -> str:
    """1.2 MB, 84 KB, 12 B."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} B"


def local(stored: str | None, zone: str) -> str:
    """A stored ISO time as a reader's local time (gateway.timezone), or the value as it was."""
    if not stored:
        return ""
    try:
        moment = datetime.fromisoformat(stored)
    except ValueError:
        return stored
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _message(m: ThreadMessage, zone: str) -> str:
    sender = f"{m.from_name} <{m.from_address}>" if m.from_name and m.from_address else (m.from_name or m.from_address)
    if m.unproven_agent:
        sender += f" (unproven: not verified as agent {m.unproven_agent})"
    rows = [("From", sender), ("To", ", ".join(m.to)), ("Cc", ", ".join(m.cc)),
            ("Date", local(m.date or m.created_at, zone)), ("Subject", m.subject)]
    headers = "".join(f"<tr><th>{name}</th><td>{escape(value)}</td></tr>" for name, value in rows if value)
    internal = m.direction in INTERNAL
    badge = f'<span class="badge">{escape(_LABELS.get(m.direction, m.direction))}</span> ' if internal else ""
    label = "" if internal else f"{escape(_LABELS.get(m.direction, m.direction))} · "
    files = "".join(f"<li>{escape(f.name)} ({escape(f.content_type)}, {size(f.size)})</li>" for f in m.files)
    return (
        f'<div class="message{" internal" if internal else ""}" id="m{m.number}">\n'
        f"<p>{badge}{label}message {m.number}</p>\n"
        f'<table class="headers">{headers}</table>\n'
        f'<pre class="body">{escape(m.text.strip())}</pre>\n'
        + (f'<p>Attachments:</p><ul class="files">{files}</ul>\n' if files else "")
        + "</div>\n"
    )


def page(ticket: TicketFacts, messages: Sequence[ThreadMessage], *, tag: str, gateway: str, zone: str,
         printed: datetime) -> str:
    """The whole page: the ticket's facts, then each message in order."""
    title = f"[{tag}{ticket.number}] {ticket.subject}"
    customer = f"{ticket.customer_name} <{ticket.customer_address}>" if ticket.customer_name else ticket.customer_address
    facts = [("Status", ticket.status), ("Priority", ticket.priority), ("Queue", ticket.queue or ""),
             ("Assignee", ticket.assignee or ""), ("Customer", customer), ("Messages", str(len(messages)))]
    shown = " · ".join(f"{name}: {escape(value)}" for name, value in facts if value)
    body = "".join(_message(m, zone) for m in messages)
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n<p class=\"facts\">{shown}<br>{escape(gateway)}, printed"
        f" {escape(local(printed.isoformat(), zone))}</p>\n{body}</body>\n</html>\n"
    )
