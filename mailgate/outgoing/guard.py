"""Loop and storm protection: who never gets an automatic answer, and the hourly cap per sender."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from mailgate import tokens
from mailgate.clock import iso
from mailgate.config import StormConfig
from mailgate.mail import identity
from mailgate.models import MailKind, ParsedMail
from mailgate.store import Txn, outbox, storms

log = logging.getLogger("mailgate.loops")

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
    to_recipient, _, _ = await outbox.ack_counts(tx, recipient, now or tx.now(), minute=False, hour=False)
    return to_recipient < cap


# -- storms and backscatter -------------------------------------------------------------------------

ALL_SENDERS = storms.ALL_SENDERS


def hour_of(now: datetime) -> str:
    """The clock hour (UTC) storm counts are kept in: '2026-11-30T10'."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H")


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether one mail from a sender goes through as usual, or is held by the storm fuse."""

    held: bool
    first_held: bool  # the first held mail of this sender's hour: log and tell the agents once
    passed: int  # mails that went through this hour (this one included when not held)
    held_count: int
    hour: str  # the clock hour it was counted in
    ticket_id: int | None = None  # where this sender's held mail went earlier in the hour


async def admit(tx: Txn, sender: str, cap: int, now: datetime | None = None) -> Admission:
    """Count one mail from `sender`; past `cap` in this clock hour it is held (cap 0: never held)."""
    now = now or tx.now()
    sender, hour = sender.strip().lower(), hour_of(now)
    held, row = await storms.count(tx, sender, hour, cap, iso(now))
    if not held:
        return Admission(False, False, row.passed, row.held, hour)
    return Admission(True, row.held == 1, row.passed, row.held, hour, row.ticket_id)


async def ack_refusal(
    tx: Txn, storm: StormConfig, mail: ParsedMail, recipient: str, *, per_recipient: int,
    authserv_ids: tuple[str, ...], received: int, now: datetime | None = None,
) -> str | None:
    """Why an otherwise allowed acknowledgement must not go out (None: send it). The cheap checks first."""
    flagged = spam_flagged(mail, storm.spam_headers)
    if flagged:
        return f"marked as spam ({flagged})"
    if storm.no_ack_on_auth_fail:
        failed = auth_failed(mail, authserv_ids, received)
        if failed:
            return f"{failed} from a trusted MTA: the sender is likely forged (backscatter)"
    if per_recipient <= 0:
        return f"more than {per_recipient} automatic answers this hour"
    now = now or tx.now()
    # The three counts in one statement: to this recipient, and (when capped) to all this minute and hour.
    to_recipient, last_minute, last_hour = await outbox.ack_counts(
        tx, recipient, now, minute=storm.acks_per_minute > 0, hour=storm.acks_per_hour > 0)
    if to_recipient >= per_recipient:
        return f"more than {per_recipient} automatic answers this hour"
    results = identity.trusted_results(mail, authserv_ids, received)
    if mail.from_ and identity.auth_proof(results, mail.from_[0].address):
        return None  # the trusted MTA vouches for the sender: an answer to it is not backscatter
    for cap, count, name in ((storm.acks_per_minute, last_minute, "minute"),
                             (storm.acks_per_hour, last_hour, "hour")):
        if cap <= 0:
            continue
        if count >= cap:
            reason = f"more than {cap} acknowledgements to all senders this {name}"
            hour = hour_of(now)
            before = await storms.of(tx, ALL_SENDERS, hour)
            if not (before and before.held):  # once an hour, not once per withheld acknowledgement
                log.warning("storm.ack_cap_reached cap=%s per=%s hour=%s", cap, name, hour)
            await storms.count_held(tx, ALL_SENDERS, hour, iso(now))
            return reason
    return None


def spam_flagged(mail: ParsedMail, headers: tuple[str, ...]) -> str | None:
    """The spam header set to yes by a filter before mailgate ('X-Spam-Flag: YES'), if any."""
    for name in headers:
        value = (mail.header(name) or "").strip().lower()
        if value.startswith("yes") or value == "true":
            return name
    return None


def auth_failed(mail: ParsedMail, authserv_ids: tuple[str, ...], received: int) -> str | None:
    """'spf=fail' or 'dmarc=fail' when the trusted MTA's Authentication-Results say so for the sender's domain."""
    sender = mail.from_[0].address.lower() if mail.from_ else ""
    from_domain = sender.rpartition("@")[2]
    for header in identity.trusted_results(mail, authserv_ids, received):
        for result in header.results:
            method, verdict = str(result.method).lower(), str(result.result).lower()
            if method not in ("spf", "dmarc") or verdict != "fail":
                continue
            props = {f"{p.type}.{p.name}".lower(): str(p.value or "").lower() for p in result.properties}
            # smtp.mailfrom is the envelope domain SPF judged; header.from the domain DMARC judged.
            about = props.get("header.from") or props.get("smtp.mailfrom", "")
            domain = about.rpartition("@")[2] if about else ""
            if method == "dmarc" and domain and domain != from_domain:
                continue  # a verdict on some other domain says nothing about this From
            return f"{method}=fail"
    return None


async def held_senders(tx: Txn, hours: int, now: datetime | None = None) -> list[dict[str, object]]:
    """Senders whose mail the storm fuse held in the last `hours` clock hours, newest hour first."""
    since = hour_of((now or tx.now()) - timedelta(hours=max(hours - 1, 0)))
    return [
        {"sender": r.sender or None, "what": "mail" if r.sender else "acknowledgements (all senders)",
         "hour": r.hour, "passed": r.passed, "held": r.held, "released": r.released,
         "ticket": r.ticket_number, "first_held_at": r.first_held_at, "last_held_at": r.last_held_at}
        for r in await storms.held_since(tx, since)
    ]


async def release(tx: Txn, sender: str, now: datetime | None = None) -> dict[str, object]:
    """Lift the cap for `sender` for the rest of this clock hour (a monitoring system the operator trusts)."""
    sender, hour = sender.strip().lower(), hour_of(now or tx.now())
    held = await storms.release(tx, sender, hour)
    log.info("storm.released sender=%s hour=%s held=%s", sender, hour, held)
    return {"sender": sender, "hour": hour, "held": held}
