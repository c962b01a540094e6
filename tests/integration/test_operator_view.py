"""What operators and agents see: the queue a mail to several support addresses lands in, a
ticket's events in `tickets show`, and the notice when a mail to the customer cannot be delivered.

Real SMTP into a running daemon; the relay is an aiosmtpd sink that refuses as real MTAs do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.cli.events import event_lines
from mailgate.config import Config
from mailgate.daemon import Running, started

from .conftest import BILLING, SUPPORT, mail, send, settle, wait_until, write_config
from .conftest import run_cli as cli
from .sink import AGENTS, Received, Sink, relay_section, wait_mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

CUSTOMER = "alice@customer.test"
AINO = "aino@agents.test"
BARTEK = "bartek@agents.test"
# What Gmail's MX answers for an unknown mailbox: four lines, the last with a link.
GMAIL_550 = (
    "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
    "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
    "550-5.1.1 unnecessary spaces. For more information, go to\r\n"
    "550 5.1.1  https://support.mail.example.test/?p=NoSuchUser a1si1234567qkb.42 - gsmtp"
)
REASON_LINES = (
    "The email account that you tried to reach does not exist. Please try",
    "double-checking the recipient's email address for typos or",
    "unnecessary spaces. For more information, go to",
    "https://support.mail.example.test/?p=NoSuchUser a1si1234567qkb.42 - gsmtp",
)


@pytest.fixture
def viewconfig(tmp_path: Path, sink: Sink) -> Callable[[], Config]:
    def make() -> Config:
        extra = relay_section(sink.port, send_delay=0.2) + AGENTS
        return config_mod.load(write_config(tmp_path, extra, gateway='timezone = "Europe/Helsinki"'))

    return make


async def rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list:
    async with running.store.read() as tx:
        return await tx.all(sql, params)


async def wait_event(running: Running, kind: str, timeout: float = 20) -> dict:
    found = await wait_until(lambda: rows(running, "SELECT data FROM events WHERE kind = ?", (kind,)),
                             timeout=timeout, what=f"a {kind} event")
    return dict(json.loads(found[-1]["data"]))


# -- routing by the To header ----------------------------------------------------------------------


async def test_to_support_cc_billing_goes_to_support_whatever_the_envelope_order(
    sink: Sink, viewconfig: Callable[[], Config]
) -> None:
    async with started(viewconfig()) as running:
        raw = mail(to=f"Support <{SUPPORT}>", subject="Printer on fire", message_id="<r1@customer.test>",
                   headers={"Cc": f"Billing <{BILLING}>"})
        # The customer's MTA sorted the recipients: billing@ comes first in the envelope.
        await send(running.smtp_port, raw, [BILLING, SUPPORT], sender=CUSTOMER)
        await settle(running)
        [ticket] = await rows(running, "SELECT queue FROM tickets")
        assert ticket["queue"] == "support"
        await wait_mail(sink, AINO, "Printer on fire")  # support's agent is told, not billing's
        ack = await wait_mail(sink, CUSTOMER, "Printer on fire")
        assert ack.msg["From"].addresses[0].addr_spec == SUPPORT
        assert not sink.to(BARTEK)
        show = await cli(running, "tickets", "show", "1000")
        assert "recipient support@example.test feeds queue 'support'" in show.output

        # Only Cc names a support address: Cc decides over the envelope order.
        raw = mail(to="friend@elsewhere.test", subject="Invoice copy", message_id="<r2@customer.test>",
                   headers={"Cc": BILLING})
        await send(running.smtp_port, raw, [SUPPORT, BILLING], sender=CUSTOMER)
        await settle(running)
        [second] = await rows(running, "SELECT queue FROM tickets WHERE number = 1001")
        assert second["queue"] == "billing"


# -- the delivery-failed notice ----------------------------------------------------------------------


async def test_refused_acknowledgement_is_named_in_words_with_the_whole_reason(
    sink: Sink, viewconfig: Callable[[], Config]
) -> None:
    sink.refuse = lambda rcpt: GMAIL_550 if CUSTOMER in rcpt else None
    async with started(viewconfig()) as running:
        await send(running.smtp_port, mail(message_id="<f1@customer.test>"), [SUPPORT], sender=CUSTOMER)
        await settle(running)
        notice = await wait_mail(sink, AINO, "Delivery failed")
        text = notice.text()
        assert f"The acknowledgement to {CUSTOMER} on [#1000] Printer on fire could not be delivered." in text
        assert "Mail:" not in text and "ack\n" not in text
        for line in REASON_LINES:
            assert line in text, line
        # The HTML part carries it too.
        assert "unnecessary spaces" in notice.html() and "NoSuchUser" in notice.html()


def agent_reply(notice: Received, text: str) -> tuple[bytes, str]:
    """Aino answers the notification from Gmail: her text, the attribution, the quoted notice."""
    target = notice.msg["Reply-To"].addresses[0].addr_spec
    quoted = "\n".join(f"> {line}" if line else ">" for line in notice.text().splitlines())
    msg = EmailMessage()
    msg["From"] = f"Aino Agent <{AINO}>"
    msg["To"] = target
    msg["Subject"] = f"Re: {notice.header('Subject')}"
    msg["Date"] = "Mon, 23 Nov 2026 10:05:00 +0000"
    msg["Message-ID"] = "<CAaino-1@mail.gmail.test>"
    msg["In-Reply-To"] = notice.header("Message-ID")
    msg["References"] = notice.header("Message-ID")
    msg.set_content(f"{text}\n\nOn Mon, 23 Nov 2026 at 10:00, Support <{SUPPORT}> wrote:\n\n{quoted}\n")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), target


async def test_refused_reply_tells_its_author_which_reply_and_why(sink: Sink, viewconfig: Callable[[], Config]) -> None:
    refusing = False
    sink.refuse = lambda rcpt: GMAIL_550 if refusing and CUSTOMER in rcpt else None
    async with started(viewconfig()) as running:
        await send(running.smtp_port, mail(message_id="<f2@customer.test>"), [SUPPORT], sender=CUSTOMER)
        await settle(running)
        notice = await wait_mail(sink, AINO, "Printer on fire")
        await wait_mail(sink, CUSTOMER, "Printer on fire")  # the acknowledgement went through
        refusing = True  # the customer's mailbox was deleted meanwhile
        raw, rcpt = agent_reply(notice, "We sent a technician.")
        await send(running.smtp_port, raw, [rcpt], sender=AINO)
        await settle(running)
        failed = await wait_mail(sink, AINO, "Delivery failed")
        text = failed.text()
        found = re.search(r"Your reply of (\d{4}-\d\d-\d\d \d\d:\d\d) (EET|EEST) to alice@customer\.test on \[#1000\]", text)
        assert found, text
        for line in REASON_LINES:
            assert line in text, line
        assert not sink.to(BARTEK)  # the author is told, not another queue


# -- tickets show ------------------------------------------------------------------------------------


async def test_tickets_show_lists_failed_delivery_and_suppressed_ack_with_reasons(
    sink: Sink, viewconfig: Callable[[], Config]
) -> None:
    sink.refuse = lambda rcpt: GMAIL_550 if CUSTOMER in rcpt else None
    async with started(viewconfig()) as running:
        await send(running.smtp_port, mail(message_id="<s1@customer.test>"), [SUPPORT], sender=CUSTOMER)
        # A vacation responder's mail opens a ticket but gets no acknowledgement (RFC 3834).
        auto = mail(sender="Bob <bob@customer.test>", subject="Out of office", message_id="<s2@customer.test>",
                    headers={"Auto-Submitted": "auto-replied"})
        await send(running.smtp_port, auto, [SUPPORT], sender="bob@customer.test")
        await settle(running)
        await wait_mail(sink, AINO, "Delivery failed")
        failed = await wait_event(running, "delivery.failed")
        suppressed = await wait_event(running, "ack.suppressed")

        shown = await cli(running, "tickets", "show", "1000")
        assert shown.exit_code == 0, shown.output
        assert "delivery.failed" in shown.output and f"ack to {CUSTOMER}" in shown.output
        for line in REASON_LINES:
            assert line in shown.output, line
        assert "ticket.routed" in shown.output
        none = await cli(running, "tickets", "show", "1000", "--events", "0")
        assert "delivery.failed" not in none.output and "events (" not in none.output

        other = await cli(running, "tickets", "show", "1001")
        assert "ack.suppressed" in other.output and suppressed["reason"] in other.output

        as_json = json.loads((await cli(running, "tickets", "show", "1000", "--json")).output)
        [event] = [e for e in as_json["events"] if e["kind"] == "delivery.failed"]
        assert event["data"]["reason"] == failed["reason"] and "NoSuchUser" in event["data"]["reason"]


async def test_event_lines_are_bounded_and_terminal_safe() -> None:
    events = [{"at": f"2026-11-23T10:00:{i:02d}.000000+00:00", "actor": "system", "kind": "note.added",
               "data": {"n": i}} for i in range(30)]
    events.append({"at": "2026-11-23T10:01:00+00:00", "actor": "system", "kind": "delivery.failed",
                   "data": {"outbox": 7, "kind": "reply", "to": "x@y.test", "reason": "550 no\x1b[2J\nsecond\u202eline"}})
    lines = event_lines(events, 5)
    assert lines[0] == "  events (5 of 31, newest last; --events N for more):"
    assert "\x1b" not in "".join(lines) and "\u202e" not in "".join(lines)
    assert lines[-2].endswith("delivery.failed  reply to x@y.test (outbox 7): 550 no?[2J")
    assert lines[-1] == "        second?line"
    assert event_lines(events, 0) == []


def folded_dsn(to: str) -> bytes:
    """Exchange Online's DSN for a deleted mailbox: the Diagnostic-Code folded over three lines."""
    return "\r\n".join([
        "From: Microsoft Outlook <postmaster@customer.test>",
        f"To: {to}",
        "Subject: Undeliverable: [#1000] Received: Printer on fire",
        "Date: Mon, 23 Nov 2026 10:05:00 +0000",
        "Message-ID: <dsn.exchange.1@customer.test>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"',
        "",
        "--BOUND",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "Your message to alice@customer.test couldn't be delivered.",
        "",
        "--BOUND",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.example.test",
        "",
        "Final-Recipient: rfc822;alice@customer.test",
        "Action: failed",
        "Status: 5.1.10",
        "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient",
        " alice@customer.test not found by SMTP address lookup; the mailbox was removed",
        " by the organisation's administrator on 2026-11-20",
        "",
        "--BOUND--",
        "",
    ]).encode()


async def test_bounce_reason_is_unfolded_whole_into_the_notice(sink: Sink, viewconfig: Callable[[], Config]) -> None:
    async with started(viewconfig()) as running:
        await send(running.smtp_port, mail(message_id="<b1@customer.test>"), [SUPPORT], sender=CUSTOMER)
        await settle(running)
        ack = await wait_mail(sink, CUSTOMER, "Printer on fire")
        await send(running.smtp_port, folded_dsn(ack.mail_from), [ack.mail_from], sender="")
        await settle(running)
        notice = await wait_mail(sink, AINO, "Delivery failed")
        text = " ".join(notice.text().split())
        assert f"The acknowledgement to {CUSTOMER} on [#1000]" in text
        assert ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient alice@customer.test not found by SMTP"
                " address lookup; the mailbox was removed by the organisation's administrator on 2026-11-20") in text
