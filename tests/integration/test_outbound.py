"""Outgoing mail end to end: a real daemon, an aiosmtpd sink as the relay, real SMTP both ways."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import tokens
from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.outgoing import notices as outbound
from mailgate.outgoing import outbox

from .conftest import BILLING, SECRET, SUPPORT, cli_ok, mail, send, settle, wait_until, write_config
from .sink import AGENTS, Received, Sink, free_port, relay_section, running_sink

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

CUSTOMER = "alice@customer.test"


@pytest.fixture
def outconfig(tmp_path: Path, sink: Sink) -> Callable[..., Config]:
    def make(extra: str = "", agents: str = AGENTS, **outbox_settings: object) -> Config:
        return config_mod.load(write_config(tmp_path, relay_section(sink.port, **outbox_settings) + agents + extra))

    return make


async def rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list:
    async with running.store.read() as tx:
        return await tx.all(sql, params)


async def wait_db(running: Running, sql: str, params: tuple[object, ...] = ()) -> list:
    """Wait until a query returns rows (the daemon works in the same loop)."""
    return await wait_until(lambda: rows(running, sql, params), what=sql)


async def open_ticket(running: Running, sink: Sink, customer: str = CUSTOMER, **kwargs: object) -> Received:
    """A customer's mail by SMTP; returns the acknowledgement the sink received."""
    before = len(sink.to(customer))
    rcpt = str(kwargs.pop("rcpt", SUPPORT))
    kwargs.setdefault("sender", f"Alice Customer <{customer}>")
    language = kwargs.pop("content_language", None)
    raw = mail(**kwargs)  # type: ignore[arg-type]
    if language:
        # mail() builds with set_content(), which drops Content-* headers set before it.
        raw = raw.replace(b"\r\nSubject:", f"\r\nContent-Language: {language}\r\nSubject:".encode(), 1)
    await send(running.smtp_port, raw, [rcpt], sender=customer)
    await settle(running)
    await sink.wait_for(lambda r: len(sink.to(customer)) > before)
    return sink.to(customer)[-1]


async def test_acknowledgement_headers_language_and_text(sink: Sink, outconfig: Callable[..., Config]) -> None:
    async with started(outconfig()) as running:
        ack = await open_ticket(running, sink, message_id="<m1@customer.test>", subject="Printer on fire")
        msg = ack.msg
        assert msg["From"].addresses[0].display_name == "Support"
        assert msg["From"].addresses[0].addr_spec == SUPPORT
        assert str(msg["To"].addresses[0].addr_spec) == CUSTOMER
        reply_to = msg["Reply-To"].addresses[0].addr_spec
        assert reply_to.startswith("support+r-1000-") and reply_to.endswith("@example.test")
        assert tokens.find(SECRET.encode(), reply_to) == [tokens.Token("r", 1000)]
        assert msg["Subject"] == "[#1000] Received: Printer on fire"
        assert msg["In-Reply-To"] == "<m1@customer.test>"
        assert "<m1@customer.test>" in msg["References"]
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["X-Auto-Response-Suppress"] == "All"
        assert msg["Content-Language"] == "en"
        assert abs(parsedate_to_datetime(msg["Date"]) - datetime.now(UTC)) < timedelta(minutes=5)
        message_id = msg["Message-ID"].strip("<>")
        assert tokens.find(SECRET.encode(), message_id) == [tokens.Token("r", 1000)]
        # VERP: the envelope sender names this very outbox row.
        assert ack.mail_from.startswith("bounces+b-") and ack.mail_from.endswith("@example.test")
        [verp] = tokens.find(SECRET.encode(), ack.mail_from)
        text = ack.text()
        assert "[#1000]" in text and "What happens next" in text
        assert tokens.body_marker(SECRET.encode(), tokens.Token("r", 1000)) in text
        assert "<strong>[#1000]</strong>" in ack.html()
        [row] = await wait_db(running, "SELECT * FROM outbox WHERE kind = 'ack' AND state = 'sent'")
        assert row["id"] == verp.ticket and verp.purpose == "b"
        assert row["message_id"] == message_id
        [mid] = await rows(running, "SELECT * FROM message_ids WHERE message_id = ?", (message_id,))
        assert mid["outbound"] == 1
        out = await rows(running, "SELECT * FROM messages WHERE direction = 'out'")
        assert [(m["message_id"], m["kind"]) for m in out] == [(message_id, "auto-reply")]


async def test_language_queue_then_contact_then_default(sink: Sink, outconfig: Callable[..., Config]) -> None:
    async with started(outconfig()) as running:
        # The billing queue speaks Polish, whatever the customer writes.
        ack = await open_ticket(running, sink, "bob@customer.test", to=BILLING, rcpt=BILLING, subject="Faktura",
                                message_id="<p1@c.test>")
        assert ack.msg["Subject"] == "[#1000] Otrzymaliśmy: Faktura"
        assert "Co dalej" in ack.text() and ack.msg["Content-Language"] == "pl"
        # The support queue has no language: the contact's (Content-Language) decides.
        ack = await open_ticket(running, sink, "matti@customer.test", subject="Tulostin", message_id="<f1@c.test>",
                                content_language="fi")
        assert ack.msg["Subject"] == "[#1001] Vastaanotettu: Tulostin"
        assert "Mitä seuraavaksi tapahtuu" in ack.text()


async def test_header_injection_from_subject_and_name_is_neutralised(sink: Sink, outconfig: Callable[..., Config]) -> None:
    # Encoded words that decode to CR LF: the stdlib builder refuses them, so write the wire form.
    raw = (
        b"From: =?utf-8?q?Alice=0D=0ABcc=3A_victim2=40evil=2Etest?= <alice@customer.test>\r\n"
        b"To: support@example.test\r\n"
        b"Subject: =?utf-8?q?Help=0D=0ABcc=3A_victim=40evil=2Etest?=\r\n"
        b"Message-ID: <inj@customer.test>\r\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHello\r\n"
    )
    async with started(outconfig()) as running:
        await send(running.smtp_port, raw)
        await settle(running)
        [ack] = await sink.wait_for(lambda r: len(sink.to(CUSTOMER)) >= 1) and sink.to(CUSTOMER)
        assert ack.msg["Bcc"] is None
        assert ack.msg["Subject"] == "[#1000] Received: Help Bcc: victim@evil.test"
        head = ack.raw.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nBcc:" not in head and ack.rcpt_tos == [CUSTOMER]
        assert "Hello Alice Bcc: victim2@evil.test," in ack.text()  # one line, even in the body


async def test_reply_threads_by_sent_message_id_with_rewritten_subject(sink: Sink, outconfig: Callable[..., Config]) -> None:
    async with started(outconfig()) as running:
        ack = await open_ticket(running, sink, message_id="<t1@customer.test>")
        await send(running.smtp_port, mail(subject="something else entirely", message_id="<t2@customer.test>",
                                           in_reply_to=ack.msg["Message-ID"]))
        await settle(running)
        found = await rows(running, "SELECT t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                    " WHERE m.message_id = 't2@customer.test'")
        assert [r["number"] for r in found] == [1000]
        assert len(sink.to(CUSTOMER)) == 1  # a follow-up gets no second acknowledgement


# Support with a second member, so the ticket can be handed over inside its queue.
TWO_IN_SUPPORT = AGENTS.replace('members = ["aino"]\n', 'members = ["aino", "cecilia"]\n', 1) + """
[[agents]]
id = "cecilia"
name = "Cecilia Agent"
addresses = ["cecilia@agents.test"]
"""


async def test_agents_are_notified_of_new_tickets_and_follow_ups(sink: Sink, outconfig: Callable[..., Config]) -> None:
    async with started(outconfig(agents=TWO_IN_SUPPORT)) as running:
        ack = await open_ticket(running, sink, message_id="<n1@customer.test>", body="The printer is on fire.\n")
        [new] = await sink.wait_for(lambda r: len(sink.to("aino@agents.test")) >= 1) and sink.to("aino@agents.test")
        assert new.msg["Subject"] == "New request [#1000]: Printer on fire"
        assert new.msg["Auto-Submitted"] == "auto-generated"
        assert "The printer is on fire." in new.text() and "Alice Customer <alice@customer.test>" in new.text()
        # Issue 6: an agent's Reply-To is that agent's signed reply address (answers the customer).
        assert new.msg["Reply-To"].addresses[0].addr_spec.startswith("support+a-1000-aino-")
        assert not sink.to("bartek@agents.test")
        # The customer writes again: the queue hears of it.
        await send(running.smtp_port, mail(subject="Re: more", body="Now it smokes too.\n",
                                           message_id="<n2@customer.test>", in_reply_to=ack.msg["Message-ID"]))
        await settle(running)
        await sink.wait_for(lambda r: len(sink.to("aino@agents.test")) >= 2)
        follow = sink.to("aino@agents.test")[1]
        assert follow.msg["Subject"] == "Customer replied [#1000]: Printer on fire"
        assert "Now it smokes too." in follow.text()
        await sink.wait_for(lambda r: len(sink.to("cecilia@agents.test")) >= 2)  # the other member heard too
        # Assigned (by Aino, to Cecilia): the queue no longer hears of the next one, only the assignee and
        # Aino, who follows the ticket since she acted on it.
        await cli_ok(running, "tickets", "assign", "1000", "cecilia", "--as", "aino")
        await sink.wait_for(lambda r: any("assigned" in x.header("Subject").lower()
                                          for x in sink.to("cecilia@agents.test")))
        await send(running.smtp_port, mail(subject="Re: more", body="Fire is out.\n",
                                           message_id="<n3@customer.test>", in_reply_to=ack.msg["Message-ID"]))
        await settle(running)
        for agent in ("cecilia@agents.test", "aino@agents.test"):
            await sink.wait_for(lambda r, a=agent: any("Fire is out." in x.text() for x in sink.to(a)))
        await wait_until(lambda: _outbox_drained(running), what="every queued mail relayed")
        # Counted once all mail is out, whatever order the relay took it in: one notification each, no more.
        assert sorted(x.header("Subject") for x in sink.to("aino@agents.test")) == [
            "Customer replied [#1000]: Printer on fire", "Customer replied [#1000]: Printer on fire",
            "New request [#1000]: Printer on fire"]
        assert sum("Fire is out." in x.text() for x in sink.to("cecilia@agents.test")) == 1
        assert not sink.to("bartek@agents.test")


async def _outbox_drained(running: Running) -> bool:
    async with running.store.read() as tx:
        return not await tx.value("SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending')")


async def test_resolution_notice_and_queue_switch(sink: Sink, outconfig: Callable[..., Config]) -> None:
    async with started(outconfig()) as running:
        await open_ticket(running, sink, message_id="<r1@customer.test>")
        await cli_ok(running, "tickets", "status", "1000", "resolved", "--as", "aino")
        await sink.wait_for(lambda r: len(sink.to(CUSTOMER)) >= 2)
        notice = sink.to(CUSTOMER)[-1]
        assert notice.msg["Subject"] == "[#1000] Resolved: Printer on fire"
        assert notice.msg["Auto-Submitted"] == "auto-generated"
        assert "reply to this email and the request will be opened again" in notice.text()
    # A queue that turned resolution notices off gets none.
    switched = AGENTS.replace('members = ["aino"]\n', 'members = ["aino"]\nresolution_notice = false\n', 1)
    folder = Path(str(running.config.source)).parent / "off"
    folder.mkdir()
    config = config_mod.load(write_config(folder, relay_section(sink.port) + switched))
    async with started(config) as running:
        await open_ticket(running, sink, message_id="<r2@customer.test>")
        async with running.store.txn() as tx:
            ticket_id = await tx.value("SELECT id FROM tickets ORDER BY id DESC LIMIT 1")
            assert await outbound.notify_resolved(tx, running.config, ticket_id) is None


def dsn(to: str, *, original_headers: str | None) -> bytes:
    """A Postfix-style DSN (multipart/report); optionally without any header of the original."""
    parts = [
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>",
        f"To: {to}",
        "Subject: Undelivered Mail Returned to Sender",
        "Date: Mon, 23 Nov 2026 10:05:00 +0000",
        f"Message-ID: <dsn.{abs(hash(to))}@mx.customer.test>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"',
        "",
        "--BOUND",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is the mail system at host mx.customer.test.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients.",
        "",
        "--BOUND",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.customer.test",
        "",
        "Final-Recipient: rfc822; alice@customer.test",
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1 <alice@customer.test>: Recipient address rejected",
        "",
    ]
    if original_headers is not None:
        parts += ["--BOUND", "Content-Type: text/rfc822-headers", "", original_headers, ""]
    parts += ["--BOUND--", ""]
    return "\r\n".join(parts).encode()


@pytest.mark.parametrize("verp", [True, False], ids=["verp-return-path", "returned-message-id"])
async def test_bounce_attaches_marks_failed_and_tells_the_agent(
    sink: Sink, outconfig: Callable[..., Config], verp: bool
) -> None:
    async with started(outconfig()) as running:
        ack = await open_ticket(running, sink, message_id="<b1@customer.test>")
        await sink.wait_for(lambda r: len(sink.to("aino@agents.test")) >= 1)
        if verp:
            # The DSN comes to the VERP return path and carries nothing of the original.
            raw, rcpt = dsn(ack.mail_from, original_headers=None), ack.mail_from
        else:
            headers = f"Message-ID: {ack.msg['Message-ID']}\r\nFrom: Support <{SUPPORT}>\r\nSubject: x"
            raw, rcpt = dsn(SUPPORT, original_headers=headers), SUPPORT
        await send(running.smtp_port, raw, [rcpt], sender="")
        await settle(running)
        [row] = await wait_db(running, "SELECT * FROM outbox WHERE kind = 'ack' AND state = 'failed'")
        assert "550 5.1.1" in row["last_error"]
        bounce = await rows(running, "SELECT m.kind, t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                     " WHERE m.kind = 'bounce'")
        assert [(b["kind"], b["number"]) for b in bounce] == [("bounce", 1000)]
        events = await rows(running, "SELECT kind FROM events WHERE kind IN ('delivery.bounced', 'delivery.failed')")
        assert sorted(e["kind"] for e in events) == ["delivery.bounced", "delivery.failed"]
        await sink.wait_for(lambda r: any("Delivery failed" in x.header("Subject") for x in sink.to("aino@agents.test")))
        notice = next(x for x in sink.to("aino@agents.test") if "Delivery failed" in x.header("Subject"))
        assert "550 5.1.1" in notice.text() and CUSTOMER in notice.text()
        assert len(sink.to(CUSTOMER)) == 1  # nothing answers the bounce
        assert await rows(running, "SELECT 1 FROM tickets WHERE number > 1000") == []


async def test_relay_down_for_a_while_then_delivered(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here yet: connection refused
    config = config_mod.load(write_config(tmp_path, relay_section(port, retry_base=0.1, retry_max=0.5) + AGENTS))
    async with started(config) as running:
        await send(running.smtp_port, mail(message_id="<down@customer.test>"))
        await settle(running)
        await wait_db(running, "SELECT 1 FROM outbox WHERE kind = 'ack' AND attempts >= 3 AND state = 'queued'")
        [row] = await rows(running, "SELECT * FROM outbox WHERE kind = 'ack'")
        assert "Connect" in row["last_error"] or "refused" in row["last_error"].lower()
        async with running_sink(port=port) as sink:
            await sink.wait_for(lambda r: len(sink.to(CUSTOMER)) >= 1)
            [row] = await wait_db(running, "SELECT * FROM outbox WHERE kind = 'ack' AND state = 'sent'")
            assert row["attempts"] >= 4
            assert len(sink.to(CUSTOMER)) == 1


async def test_5xx_fails_at_once_and_tells_the_agent(sink: Sink, outconfig: Callable[..., Config]) -> None:
    sink.refuse = lambda rcpt: "550 5.1.1 <alice@customer.test>: no such user" if CUSTOMER in rcpt else None
    async with started(outconfig()) as running:
        await send(running.smtp_port, mail(message_id="<x5@customer.test>"))
        await settle(running)
        [row] = await wait_db(running, "SELECT * FROM outbox WHERE kind = 'ack' AND state = 'failed'")
        assert row["attempts"] == 1 and row["last_error"].startswith("550")
        await sink.wait_for(lambda r: any("Delivery failed" in x.header("Subject") for x in sink.to("aino@agents.test")))
        [event] = await rows(running, "SELECT data FROM events WHERE kind = 'delivery.failed'")
        assert "no such user" in event["data"]


async def test_agent_reply_waits_for_the_delay_then_goes(sink: Sink, outconfig: Callable[..., Config]) -> None:
    async with started(outconfig()) as running:
        await open_ticket(running, sink, message_id="<d1@customer.test>")
        mailer = running.mailer
        async with running.store.txn() as tx:
            outbox_id = await outbox.queue_agent_reply(tx, mailer, 1, "aino", "We replaced the printer.", delay=0.5)
            assert [r["kind"] for r in await tx.all("SELECT kind FROM timers")] == ["outbox.release"]
        [row] = await rows(running, "SELECT state FROM outbox WHERE id = ?", (outbox_id,))
        assert row["state"] == "queued"
        await sink.wait_for(lambda r: len(sink.to(CUSTOMER)) >= 2)
        reply = sink.to(CUSTOMER)[-1]
        assert reply.msg["Auto-Submitted"] is None  # a person wrote this one
        assert reply.msg["Subject"] == "[#1000] Re: Printer on fire"
        assert "We replaced the printer." in reply.text() and "Aino Agent" in reply.text()
        await wait_db(running, "SELECT 1 FROM messages WHERE direction = 'out' AND kind = 'message'")
        assert await rows(running, "SELECT * FROM timers") == []


async def test_cancel_before_the_delay_ends_sends_nothing(sink: Sink, outconfig: Callable[..., Config]) -> None:
    async with started(outconfig()) as running:
        await open_ticket(running, sink, message_id="<c1@customer.test>")
        mailer = running.mailer
        async with running.store.txn() as tx:
            await outbox.queue_agent_reply(tx, mailer, 1, "aino", "CANCELLED TEXT", delay=0.3)
        async with running.store.txn() as tx:
            assert await outbox.cancel_pending(tx, 1, "aino") == 1
        # A later reply, due after the cancelled one would have been: when it has arrived, the
        # cancelled one would have too.
        async with running.store.txn() as tx:
            await outbox.queue_agent_reply(tx, mailer, 1, "aino", "MARKER TEXT", delay=0.8)
        await sink.wait_for(lambda r: any("MARKER TEXT" in x.text() for x in sink.to(CUSTOMER)))
        assert not any("CANCELLED TEXT" in x.text() for x in sink.received)
        await wait_db(running, "SELECT 1 FROM outbox WHERE kind = 'reply' AND state = 'sent'")
        states = await rows(running, "SELECT state FROM outbox WHERE kind = 'reply' ORDER BY id")
        assert [s["state"] for s in states] == ["cancelled", "sent"]


async def test_customer_writing_again_holds_the_reply_and_asks_the_agent(sink: Sink, outconfig: Callable[..., Config]) -> None:
    async with started(outconfig()) as running:
        ack = await open_ticket(running, sink, message_id="<h1@customer.test>")
        mailer = running.mailer
        async with running.store.txn() as tx:
            outbox_id = await outbox.queue_agent_reply(tx, mailer, 1, "aino", "Please restart it.", delay=30)
        await send(running.smtp_port, mail(subject="Re: x", body="Never mind, I bought a new one.\n",
                                           message_id="<h2@customer.test>", in_reply_to=ack.msg["Message-ID"]))
        await settle(running)
        [row] = await rows(running, "SELECT state FROM outbox WHERE id = ?", (outbox_id,))
        assert row["state"] == "held"
        assert await rows(running, "SELECT * FROM timers WHERE ref = ?", (outbox_id,)) == []
        await sink.wait_for(lambda r: any("Reply held" in x.header("Subject") for x in sink.to("aino@agents.test")))
        held = next(x for x in sink.to("aino@agents.test") if "Reply held" in x.header("Subject"))
        assert "Never mind, I bought a new one." in held.text() and "Please restart it." in held.text()
        assert not any("Please restart it." in x.text() for x in sink.to(CUSTOMER))
        # The agent confirms: it goes.
        async with running.store.txn() as tx:
            assert await outbox.release_held(tx, 1, "aino") == 1
        running.outgoing.sender.wake()  # type: ignore[union-attr]
        await sink.wait_for(lambda r: any("Please restart it." in x.text() for x in sink.to(CUSTOMER)))


async def test_timer_missed_while_down_fires_after_restart(sink: Sink, outconfig: Callable[..., Config]) -> None:
    config = outconfig()
    clock = ManualClock()
    async with started(config, clock=clock) as running:
        await open_ticket(running, sink, message_id="<m1@customer.test>")
        async with running.store.txn() as tx:
            await outbox.queue_agent_reply(tx, running.mailer, 1, "aino", "LATE REPLY", delay=600)
    # While the daemon was down the reply fell due (APScheduler's default 1 s grace would drop it).
    clock.advance(timedelta(minutes=20))
    async with started(config, clock=clock) as running:
        await sink.wait_for(lambda r: any("LATE REPLY" in x.text() for x in sink.to(CUSTOMER)))
        await wait_db(running, "SELECT 1 FROM outbox WHERE kind = 'reply' AND state = 'sent'")
        async def no_timers() -> bool:
            return not await rows(running, "SELECT * FROM timers")

        await wait_until(no_timers, what="the fired timer row gone")
        assert running.outgoing is not None and running.outgoing.timers.fired == 1
