"""Loop and storm protection: who never gets an automatic answer, and the hourly cap per sender."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from mailgate import tokens
from mailgate.models import MailKind, ParsedMail
from mailgate.store import Txn

# Senders that are machines by name (RFC 3834 section 2: do not answer them). Matched on the
# local part with separators, so "no-reply", "do_not_reply", "noreply-billing" all count.
_MACHINE_LOCAL = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|mailer[-_.]?daemon|postmaster|"
    r"bounces?|listserv|majordomo|mail[-_.]?delivery[-_.]?(?:system|subsystem)|owner-)"
    r"(?:$|[-_.+])",
    re.IGNORECASE,
)
# Many list and campaign senders put "-bounces" or "-request" at the end of the local part.
_MACHINE_SUFFIX = re.compile(r"[-_.+](?:bounces?|request|owner|noreply|no-reply)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """May mailgate answer this mail automatically, and if not, why not (shown in the event log)."""

    allowed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Guard:
    """What loop protection knows about this installation."""

    own_addresses: frozenset[str]  # support addresses and the bounce address (base form)
    bounce_address: str
    agent_addresses: frozenset[str]
    human_senders: tuple[str, ...]  # fnmatch patterns, lowercased
    secret: bytes


def base(address: str) -> str:
    """Lowercased, without a +tag: support+r-1-x@ex → support@ex."""
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if at else address.strip().lower()


def is_machine_address(address: str) -> bool:
    local = address.strip().strip("<>").rpartition("@")[0]
    return bool(local) and bool(_MACHINE_LOCAL.search(local) or _MACHINE_SUFFIX.search(local))


def is_human_listed(guard: Guard, address: str) -> bool:
    address = address.lower()
    return any(fnmatchcase(address, pattern) for pattern in guard.human_senders)


def may_answer(
    guard: Guard,
    mail: ParsedMail,
    *,
    envelope_from: str,
    rcpt_to: tuple[str, ...],
    imported: bool,
) -> Verdict:
    """Whether this mail may get an automatic answer (an acknowledgement); never raises."""
    sender = mail.from_[0].address.lower() if mail.from_ else ""
    envelope = envelope_from.strip().strip("<>").lower()
    if imported:
        return Verdict(False, "imported")
    if not envelope:
        # RFC 3834 section 3.1.3 / RFC 5321 4.5.5: never answer the null reverse-path.
        return Verdict(False, "null-sender")
    if not sender:
        return Verdict(False, "no-sender")
    if mail.kind is MailKind.BOUNCE:
        return Verdict(False, "bounce")
    if base(sender) in guard.own_addresses or base(envelope) in guard.own_addresses:
        return Verdict(False, "own-address")
    if any(t.purpose in ("r", "b") for t in tokens.find(guard.secret, mail.message_id)):
        return Verdict(False, "own-mail")  # our own mail came back (a forward loop, a misrouted copy)
    if any(base(a) == guard.bounce_address for a in rcpt_to):
        # Only machines write to a return path: RFC 3834 responders and DSNs.
        return Verdict(False, "to-bounce-address")
    if sender in guard.agent_addresses:
        return Verdict(False, "agent")
    if is_human_listed(guard, sender) or is_human_listed(guard, envelope):
        return Verdict(True, "human-sender allowlist")
    if is_machine_address(sender) or is_machine_address(envelope):
        return Verdict(False, "machine-sender")
    if mail.kind is MailKind.AUTO_REPLY:
        return Verdict(False, "auto-reply")
    if mail.kind is MailKind.BULK:
        return Verdict(False, "bulk")
    if mail.kind is not MailKind.MESSAGE:
        return Verdict(False, str(mail.kind))
    return Verdict(True, "message from a person")


def may_notify(guard: Guard, mail: ParsedMail, *, imported: bool) -> bool:
    """Whether a customer's mail should tell the agents: not for machine mail, which an agent's own
    out-of-office would otherwise keep answering (notification → auto-reply → notification ...)."""
    if imported or not mail.from_:
        return False
    sender = mail.from_[0].address.lower()
    if base(sender) in guard.own_addresses or sender in guard.agent_addresses:
        return False
    if is_human_listed(guard, sender):
        return mail.kind is not MailKind.BOUNCE
    return mail.kind is MailKind.MESSAGE and not is_machine_address(sender)


async def under_hourly_cap(tx: Txn, recipient: str, cap: int, now: datetime | None = None) -> bool:
    """Fewer than `cap` acknowledgements went to this address in the last hour (a storm fuse)."""
    if cap <= 0:
        return False
    since = ((now or datetime.now(UTC)) - timedelta(hours=1)).isoformat(timespec="microseconds")
    count = await tx.value(
        "SELECT COUNT(*) FROM outbox WHERE rcpt_to = ? AND kind = 'ack' AND created_at > ? AND state != 'cancelled'",
        (recipient.lower(), since),
    )
    return int(count or 0) < cap
