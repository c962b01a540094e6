"""Unit tests for classify(): bounces, RFC 3834 auto-replies, out-of-office subjects, bulk mail."""

from __future__ import annotations

import pytest

from mailgate.mail.classify import Signals, classify, original_message_id
from mailgate.mail.parse import parse
from mailgate.models import MailKind


def signals(
    headers: dict[str, str] | None = None,
    subject: str = "Question about my order",
    sender: str = "alice@example.com",
    content_type: str = "text/plain",
    report_type: str = "",
    part_types: frozenset[str] = frozenset({"text/plain"}),
    dsn_actions: tuple[str, ...] = (),
    text: str = "Hello, where is my parcel?",
) -> Signals:
    items = (*(headers or {}).items(), ("From", sender), ("Subject", subject))
    return Signals(
        headers=items,
        subject=subject,
        sender=sender,
        content_type=content_type,
        report_type=report_type,
        part_types=part_types,
        dsn_actions=dsn_actions,
        text=text,
    )


def test_plain_message() -> None:
    assert classify(signals()) is MailKind.MESSAGE


def test_dsn_is_bounce() -> None:
    s = signals(
        content_type="multipart/report",
        report_type="delivery-status",
        part_types=frozenset({"multipart/report", "text/plain", "message/delivery-status", "message/rfc822"}),
        dsn_actions=("failed",),
    )
    assert classify(s) is MailKind.BOUNCE


def test_success_dsn_is_not_a_bounce() -> None:
    s = signals(content_type="multipart/report", report_type="delivery-status", dsn_actions=("delivered",))
    assert classify(s) is MailKind.AUTO_REPLY


@pytest.mark.parametrize(
    ("sender_header", "sender", "subject"),
    [
        ("MAILER-DAEMON <>", "", "Mail delivery failed"),
        (
            "Mail Delivery System <MAILER-DAEMON@mx.example.com>",
            "MAILER-DAEMON@mx.example.com",
            "Undelivered Mail Returned to Sender",
        ),
        ("postmaster@example.com", "postmaster@example.com", "Undeliverable: Hello"),
    ],
)
def test_daemon_bounces(sender_header: str, sender: str, subject: str) -> None:
    s = Signals(
        headers=(("From", sender_header), ("Subject", subject)),
        subject=subject,
        sender=sender,
        content_type="text/plain",
        report_type="",
        part_types=frozenset({"text/plain"}),
    )
    assert classify(s) is MailKind.BOUNCE


def test_postmaster_writing_normally_is_a_message() -> None:
    assert classify(signals(sender="postmaster@example.com", subject="Your DNS question")) is MailKind.MESSAGE


def test_forwarded_bounce_from_a_person_is_a_message() -> None:
    s = signals(subject="Fwd: Undeliverable: invoice", part_types=frozenset({"text/plain", "message/rfc822"}))
    assert classify(s) is MailKind.MESSAGE


def test_exim_failed_recipients_header() -> None:
    assert classify(signals({"X-Failed-Recipients": "bob@example.com"})) is MailKind.BOUNCE


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Auto-Submitted": "auto-replied; owner-email=x@example.com"},
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "1"},
        {"Precedence": "auto_reply"},
        {"Auto-Submitted": "auto-generated"},
        {"Auto-Submitted": "auto-notified"},
    ],
)
def test_rfc3834_and_vendor_auto_reply_headers(headers: dict[str, str]) -> None:
    assert classify(signals(headers)) is MailKind.AUTO_REPLY


def test_auto_submitted_no_is_a_message() -> None:
    assert classify(signals({"Auto-Submitted": "no"})) is MailKind.MESSAGE


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Your ticket",
        "Automatic reply: Invoice 42",
        "Auto: Meeting",
        "Abwesend: Rechnung",
        "Automatische Antwort: Rechnung",
        "Automaattinen vastaus: Lasku",
        "Poissa: Lasku",
        "Automatyczna odpowiedź: Faktura",
        "Automatikus válasz: Számla",
        "Autosvar: Faktura",
        "Frånvaro: Faktura",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    assert classify(signals(subject=subject)) is MailKind.AUTO_REPLY


def test_auto_response_suppress_with_out_of_office_body() -> None:
    s = signals({"X-Auto-Response-Suppress": "All"}, subject="Re: invoice", text="I am out of office until Monday.")
    assert classify(s) is MailKind.AUTO_REPLY
    assert classify(signals({"X-Auto-Response-Suppress": "All"})) is MailKind.MESSAGE


@pytest.mark.parametrize(
    "headers",
    [
        {"Precedence": "bulk"},
        {"Precedence": "list"},
        {"Precedence": "junk"},
        {"List-Id": "<news.example.com>"},
        {"List-Unsubscribe": "<mailto:unsub@example.com>"},
        {"X-Mailing-List": "news@example.com"},
        {"Auto-Submitted": "auto-generated", "List-Id": "<news.example.com>"},
    ],
)
def test_bulk(headers: dict[str, str]) -> None:
    assert classify(signals(headers)) is MailKind.BULK


def test_vacation_reply_with_precedence_bulk_is_still_an_auto_reply() -> None:
    assert classify(signals({"Precedence": "bulk", "Auto-Submitted": "auto-replied"})) is MailKind.AUTO_REPLY


def test_arf_feedback_report_is_not_a_bounce() -> None:
    s = signals(
        content_type="multipart/report",
        report_type="feedback-report",
        part_types=frozenset({"message/feedback-report"}),
    )
    assert classify(s) is MailKind.AUTO_REPLY


def test_original_message_id_from_bounce_text() -> None:
    text = "The original message:\n\nMessage-ID: <own@x>\n> Message-Id: <orig@example.com>\n"
    assert original_message_id(text, "own@x") == "orig@example.com"
    assert original_message_id("nothing here", None) is None


DSN = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r
To: support@example.org\r
Subject: Undelivered Mail Returned to Sender\r
Message-ID: <dsn1@mx.example.com>\r
Content-Type: multipart/report; report-type=delivery-status; boundary="R"\r
\r
--R\r
Content-Type: text/plain\r
\r
I'm sorry to have to inform you that your message could not be delivered.\r
--R\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.example.com\r
\r
Final-Recipient: rfc822; bob@example.net\r
Action: failed\r
Status: 5.1.1\r
--R\r
Content-Type: text/rfc822-headers\r
\r
From: support@example.org\r
Message-ID: <reply-42@help.example.org>\r
Subject: Your ticket\r
--R--\r
"""


def test_parse_dsn_end_to_end() -> None:
    p = parse(DSN)
    assert p.kind is MailKind.BOUNCE
    assert p.bounce_of == "reply-42@help.example.org"
    assert p.text.startswith("I'm sorry")
