"""Mail that did not arrive: a bounce threaded back to its ticket, and the agents told what failed and why."""

from __future__ import annotations

import re

from mailgate import tokens
from mailgate.models import Correlation, Envelope, MailKind, ParsedMail, ThreadRule
from mailgate.outgoing import compose
from mailgate.outgoing import guard as loops
from mailgate.outgoing.writer import Writer, local_time
from mailgate.store import Txn, events
from mailgate.store import outbox as rows
from mailgate.store import ticket_facts as view

# RFC 3464 2.3.6: Diagnostic-Code is a header field, so a long one is folded over lines that
# start with white space (Gmail's and Exchange's are); the first line alone cut the reason short.
_DIAGNOSTIC = re.compile(r"^[ \t]*Diagnostic-Code:[ \t]*(?:smtp;[ \t]*)?(.+(?:\r?\n[ \t]+.+)*)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(r"^\s*Status:\s*([245]\.\d{1,3}\.\d{1,3})", re.IGNORECASE | re.MULTILINE)
# A reason is a remote server's words (a relay's multi-line reply, a DSN): kept whole for the
# agent, but bounded, since a forged bounce can say anything at any length.
REASON_LIMIT = 4000  # characters
_REASON_NOISE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


async def delivery_failed(w: Writer, tx: Txn, row: rows.OutboxRow, reason: str) -> None:
    """A mail could not be delivered: an event on the ticket, and a notice to the agent or queue."""
    if row.ticket_id is None:
        return
    await events.add(tx, row.ticket_id, "system", "delivery.failed",
                     {"outbox": row.id, "kind": row.kind, "to": row.rcpt_to, "reason": reason})
    if row.kind not in rows.CUSTOMER_KINDS:
        return  # a notice to an agent failed: telling agents by mail again would fail the same way
    info = await w.ticket(tx, row.ticket_id)
    author = w.config.agent(row.agent) if row.agent else None
    agents = [author] if author else w.agents_to_tell(info)
    written = local_time(w.config, row.created_at)
    for agent in agents:
        await w.queue_mail(
            tx, info, kind="failed", template="delivery_failed", to_name=agent.name,
            to_address=agent.addresses[0], language=w.agent_language(info, agent), auto_kind="auto-generated",
            data=w.data(info, agent_name=agent.name, agent_id=agent.id, error_recipient=row.rcpt_to,
                        error_kind=row.kind, error_reason=reason_text(reason), error_written=written,
                        error_author=(author.name if author else row.agent or ""),
                        error_yours=author is not None and author.id == agent.id),
        )


async def rethread_bounce(w: Writer, tx: Txn, mail: ParsedMail, rcpt_to: tuple[str, ...], found: Correlation) -> Correlation:
    """A bounce of our own mail belongs to the ticket that mail came from."""
    if mail.kind is not MailKind.BOUNCE:
        return found
    row = await bounced_row(w, tx, mail, rcpt_to)
    if row is None or row.ticket_id is None:
        return found
    return Correlation(row.ticket_id, ThreadRule.TOKEN, f"bounce of outgoing mail #{row.id} to {row.rcpt_to}")


async def bounced_row(w: Writer, tx: Txn, mail: ParsedMail, rcpt_to: tuple[str, ...]) -> rows.OutboxRow | None:
    """The outbox row a bounce is about: named by the VERP address it came back to, else by Message-ID."""
    for rcpt in rcpt_to:
        if loops.base(rcpt) != w.bounce_base:
            continue
        for token in tokens.find(w.secret, rcpt):
            if token.purpose == "b":
                row = await rows.get(tx, token.ticket)
                if row is not None:
                    return row
    if mail.bounce_of:
        # Without VERP (a DSN to the header From, say), the returned Message-ID still names it.
        return await rows.by_message_id(tx, compose.clean_message_id(mail.bounce_of) or "")
    return None


async def bounced(w: Writer, tx: Txn, ticket_id: int, mail: ParsedMail, envelope: Envelope) -> None:
    """A bounce came in: its outbox row failed, with the reason the DSN gives."""
    row = await bounced_row(w, tx, mail, envelope.rcpt_to)
    if row is None:
        await events.add(tx, ticket_id, "system", "bounce.unmatched", {"bounce_of": mail.bounce_of})
        return
    # The delivery-status part is not in the parsed text: read the report from the wire bytes.
    raw = await view.wire_of(tx, mail.message_id)
    reason = "bounced: " + bounce_reason(mail, raw[:200_000].decode("latin-1"))
    await rows.mark_failed(tx, row.id, reason)
    await events.add(tx, row.ticket_id or ticket_id, "system", "delivery.bounced",
                     {"outbox": row.id, "to": row.rcpt_to, "kind": row.kind})
    await delivery_failed(w, tx, row, reason)


def bounce_reason(mail: ParsedMail, report: str) -> str:
    """The DSN's Diagnostic-Code (RFC 3464 2.3.6, unfolded), else its Status, else the first words of its text."""
    for pattern in (_DIAGNOSTIC, _STATUS):
        match = pattern.search(report) or pattern.search(mail.text)
        if match:
            return " ".join(match.group(1).split())[:REASON_LIMIT]
    first = next((line.strip() for line in mail.text.splitlines() if line.strip()), "")
    return (first or mail.subject)[:REASON_LIMIT]


def reason_text(reason: str) -> str:
    """A failure reason as the notice shows it: every line of it, no control characters, bounded."""
    lines = (_REASON_NOISE.sub("", line).rstrip() for line in reason.replace("\r\n", "\n").split("\n"))
    text = "\n".join(line for line in lines if line.strip())
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT] + " [...]"
