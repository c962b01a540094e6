"""Tell bounces, auto-replies and bulk mail from mail a person wrote, from headers and structure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate.mail import bounce_formats as bf
from mailgate.models import MailKind


@dataclass(frozen=True, slots=True)
class Signals:
    """What the classifier looks at; parse() fills it from one message."""

    headers: tuple[tuple[str, str], ...]  # every header, decoded, in order
    subject: str
    sender: str  # the From address
    content_type: str  # of the top-level entity
    report_type: str  # the report-type parameter of a multipart/report, or ""
    part_types: frozenset[str]  # every content type met while walking the MIME tree
    dsn_actions: tuple[str, ...] = ()  # Action: fields of a delivery-status part, lowercased
    text: str = ""  # the start of the plain-text body


_DSN_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})

# Who sends bounces in the header From (RFC 3464 uses the null envelope sender; the From header
# varies): MAILER-DAEMON, "Mail Delivery System", "<>" and friends are unmistakable ...
_DAEMON_FROM = re.compile(r"mailer[- ]?daemon|mail[ .-]?delivery[ .-]?(system|subsystem)|mail[ .-]?daemon", re.I)
# ... while postmaster-like local parts also write ordinary mail, so they need a second sign.
_DAEMON_SENDER = re.compile(
    r"^(postmaster|post_master|mdaemon|mailer|mailadmin|microsoftexchange[0-9a-f]*|bounces?|"
    r'"?system administrator"?|symantec_antivirus\w*|'
    r"mail-router|mta|sysadmin|root|nobody|noreply-dmarc)@",
    re.I,
)
_AUTO_REPLY_SUBJECT = bf.alternatives(
    r"out of (the )?office|automatic reply|auto(matic)?[- ]?response|auto[- ]?reply|autoreply|"
    r"^\s*auto:|abwesend|abwesenheit|automatische antwort|automaattinen vastaus|\bpoissa\b|"
    r"automatyczna odpowied[zź]|automatikus v[aá]lasz|autosvar|fr[aå]nvaro|on vacation|vacation reply|"
    r"r[ée]ponse automatique|absence du bureau|risposta automatica|respuesta autom[aá]tica|"
    r"afwezig|automatisch antwoord|fuera de la oficina|"
    r"\u81ea\u52d5\u8fd4\u4fe1|\u4e0d\u5728",  # Japanese "automatic reply", "absent"
    re.I,
)
# Weak out-of-office signs: enough only next to Exchange's X-Auto-Response-Suppress.
_OOO_WEAK = re.compile(
    r"out of office|vacation|urlaub|away from|i am away|i'm away|abwesen|loma|lomalla|poissa|semester", re.I
)

_LIST_HEADERS = frozenset(
    {
        "list-id",
        "list-unsubscribe",
        "list-post",
        "list-help",
        "list-subscribe",
        "list-owner",
        "x-mailing-list",
        "mailing-list",
        "x-list",
        "x-campaign",
        "x-mailer-lid",
    }
)
_AUTO_HEADERS = frozenset(
    {"x-autoreply", "x-autorespond", "x-autoresponder", "x-autoreply-from", "x-mail-autoreply", "x-vacation"}
)


def classify(s: Signals) -> MailKind:
    """The kind of mail: bounce, auto-reply, bulk or a message a person wrote."""
    fields = _first_values(s.headers)
    # A delivery report is a bounce first: failure DSNs also carry Precedence: bulk (MDaemon,
    # list software), Auto-Submitted (RFC 3834 asks it of them) and list headers of the mail
    # they return, so nothing below may be asked before this.
    if _is_bounce(s, fields):
        if s.dsn_actions and all(a in bf.SUCCESS_ACTIONS for a in s.dsn_actions):
            # A success DSN is a machine notice, not a failure to act on.
            return MailKind.AUTO_REPLY
        return MailKind.BOUNCE
    if _is_complaint(s, fields):
        return MailKind.AUTO_REPLY
    auto_submitted = fields.get("auto-submitted", "").strip().lower()
    precedence = fields.get("precedence", "").strip().lower()
    is_list = bool(_LIST_HEADERS.intersection(fields)) or precedence in ("list", "bulk", "junk")
    if auto_submitted.startswith("auto-replied") or precedence == "auto_reply":
        return MailKind.AUTO_REPLY
    if _AUTO_HEADERS.intersection(fields) or fields.get("x-apple-action", "").lower() == "vacation":
        return MailKind.AUTO_REPLY
    if _AUTO_REPLY_SUBJECT.search(s.subject):
        return MailKind.AUTO_REPLY
    if "x-auto-response-suppress" in fields and _OOO_WEAK.search(s.subject + "\n" + s.text[:500]):
        return MailKind.AUTO_REPLY
    if s.report_type in ("feedback-report", "disposition-notification") or "message/feedback-report" in s.part_types:
        # ARF complaints and read receipts (RFC 5965, RFC 8098): machine-made, never a bounce.
        return MailKind.AUTO_REPLY
    if is_list:
        return MailKind.BULK
    # RFC 3834 section 5: any value but "no" marks a message no person typed.
    if auto_submitted and auto_submitted != "no":
        return MailKind.AUTO_REPLY
    return MailKind.MESSAGE


def _first_values(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers:
        found.setdefault(name.strip().lower(), value)
    return found


def _all_values(headers: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in headers:
        found.setdefault(name.strip().lower(), []).append(value)
    return found


def _is_bounce(s: Signals, fields: dict[str, str]) -> bool:
    if s.content_type == "multipart/report" and s.report_type in ("delivery-status", "global-delivery-status"):
        return True
    if _DSN_PARTS & s.part_types:
        return True
    if "x-failed-recipients" in fields:
        return True
    if _DAEMON_FROM.search(fields.get("from", "")):
        return True
    if bf.SNS_HEADER in fields:
        sns = bf.SNS_TYPE.search(s.text)
        return sns is not None and sns.group(1) == "Bounce"
    subject_says = bool(bf.SUBJECT.search(s.subject))
    null_from = "from" in fields and (not s.sender or "<>" in fields["from"])
    # RFC 5321 4.5.5: notifications travel with a null reverse-path, which the delivering MTA
    # records as "Return-Path: <>"; people's mail never does.
    null_path = fields.get("return-path", "").strip() == "<>"
    if null_from or null_path or _DAEMON_SENDER.match(s.sender):
        return subject_says or bool(bf.BODY.search(s.text))
    if bf.matching_format(_all_values(s.headers), s.subject, s.text) is not None:
        return True
    # A bounce-like subject (not a forward or reply of one) with a bounce body or a returned message.
    if subject_says and not _REPLY_PREFIX.match(s.subject):
        returned = bool(_RETURNED_PARTS & s.part_types)
        return returned or bool(bf.BODY.search(s.text))
    return False


def _is_complaint(s: Signals, fields: dict[str, str]) -> bool:
    """A spam complaint or SES complaint notice: machine-made, about a mail we sent, not a failure."""
    if bf.SNS_HEADER in fields:
        return bf.SNS_TYPE.search(s.text) is not None
    # Hotmail's JMRP reports predate ARF (RFC 5965): a fixed subject and the reported mail attached.
    return bool(bf.COMPLAINT_SUBJECT.search(s.subject)) and bool(_RETURNED_PARTS & s.part_types)


_REPLY_PREFIX = re.compile(r"\s*(re|fwd?|aw|wg|sv|vs|tr|rv)\s*:", re.I)
_RETURNED_PARTS = frozenset({"message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"})


_ORIGINAL_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*<([^<>\s]+)>", re.I | re.M)


def original_message_id(text: str, own: str | None) -> str | None:
    """The Message-ID of a returned message quoted in a bounce's text, other than the bounce's own."""
    for match in _ORIGINAL_ID.finditer(text):
        if match.group(1) != own:
            return match.group(1)
    return None
