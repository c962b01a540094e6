"""Merge, forward, ask a colleague, split: real SMTP into a real daemon, the relay an aiosmtpd sink."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailgate import config as config_mod
from mailgate import tokens
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.ops import inbox as agent_inbox

from .conftest import SECRET, SUPPORT, cli_ok, send, settle, write_config
from .conftest import run_cli as cli
from .sink import AGENTS, Received, Sink, relay_section, to, wait_mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

ALICE, BOB = "alice@customer.test", "bob@customer.test"
AINO, BARTEK = "aino@agents.test", "bartek@agents.test"
PARTNER = "ext@partner.example"
KEY = SECRET.encode()


@pytest.fixture
def caseconfig(tmp_path: Path, sink: Sink) -> Callable[[], Config]:
    return lambda: config_mod.load(write_config(tmp_path, relay_section(sink.port, send_delay=30) + AGENTS))


def customer_mail(sender: str, subject: str, message_id: str, body: str, *, in_reply_to: str | None = None,
                  attachment: tuple[str, bytes] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    if attachment:
        msg.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def customer_writes(running: Running, sink: Sink, sender: str, n: int, *, in_reply_to: str | None = None,
                          attachment: tuple[str, bytes] | None = None, expect: str | None = None) -> Received:
    """A customer's mail by SMTP; returns the notification Aino gets about it."""
    address = sender.split("<")[-1].rstrip(">")
    before = len(to(sink, AINO, expect or f"Printer on fire {n}"))
    subject = f"Re: {expect}" if in_reply_to and expect else f"Printer on fire {n}"
    raw = customer_mail(sender, subject, f"<c{n}@customer.test>", f"Hello,\n\nthe printer is on fire ({n}).\n",
                        in_reply_to=in_reply_to, attachment=attachment)
    await send(running.smtp_port, raw, [SUPPORT], sender=address)
    await settle(running)
    return await wait_mail(sink, AINO, expect or f"Printer on fire {n}", before + 1)


def answer(notice: Received, text: str, *, sender: str, subject: str | None = None) -> tuple[bytes, str]:
    """A reply to a mail mailgate sent, as a mail client builds it: to its Reply-To, quoting it."""
    target = notice.msg["Reply-To"].addresses[0].addr_spec
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = target
    msg["Subject"] = subject if subject is not None else f"Re: {notice.header('Subject')}"
    msg["Date"] = "Mon, 23 Nov 2026 10:05:00 +0000"
    msg["Message-ID"] = f"<r.{abs(hash((text, subject, target, sender)))}@answers.test>"
    msg["In-Reply-To"] = notice.header("Message-ID")
    msg["References"] = notice.header("Message-ID")
    quoted = "\n".join(f"> {line}" for line in notice.text().splitlines())
    msg.set_content(f"{text}\n\nOn Mon, 23 Nov 2026 at 10:00, Support <{SUPPORT}> wrote:\n\n{quoted}\n")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), target


async def mail_in(running: Running, raw: bytes, rcpt: str, sender: str) -> None:
    await send(running.smtp_port, raw, [rcpt], sender=sender)
    await settle(running)


async def rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    async with running.store.read() as tx:
        return [dict(r) for r in await tx.all(sql, params)]


async def ticket(running: Running, number: int) -> dict[str, Any]:
    [row] = await rows(running, "SELECT * FROM tickets WHERE number = ?", (number,))
    return row


async def messages(running: Running, number: int, direction: str = "in") -> list[str]:
    found = await rows(running, "SELECT m.message_id FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                " WHERE t.number = ? AND m.direction = ? ORDER BY m.id", (number, direction))
    return [r["message_id"] for r in found]


async def notes(running: Running, number: int) -> list[str]:
    found = await rows(running, "SELECT m.reply_text FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                " WHERE t.number = ? AND m.direction = 'note' ORDER BY m.id", (number,))
    return [r["reply_text"] for r in found]


# -- merge -----------------------------------------------------------------------------------------


async def test_merge_moves_everything_and_later_mail_to_either_thread_lands_in_the_survivor(
    sink: Sink, caseconfig: Callable[[], Config]
) -> None:
    async with started(caseconfig()) as running:
        await customer_writes(running, sink, f"Alice <{ALICE}>", 1)
        second = await customer_writes(running, sink, f"Alice <{ALICE}>", 2)
        ack2 = await wait_mail(sink, ALICE, "[#1001]")
        raw, rcpt = answer(second, "", sender=f"Aino Agent <{AINO}>",
                           subject=f"[tag:+duplicate] [merge:#1000] Re: {second.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        old, survivor = await ticket(running, 1001), await ticket(running, 1000)
        assert old["status"] == "merged" and old["merged_into"] == survivor["id"]
        assert await messages(running, 1000) == ["c1@customer.test", "c2@customer.test"]
        assert await messages(running, 1001) == []
        tags = await rows(running, "SELECT tag FROM ticket_tags WHERE ticket_id = ?", (survivor["id"],))
        assert [t["tag"] for t in tags] == ["duplicate"]
        assert await rows(running, "SELECT ticket_id FROM message_ids WHERE message_id = 'c2@customer.test'") == [
            {"ticket_id": survivor["id"]}]
        assert any("merged #1001" in n for n in await notes(running, 1000))
        assert any("into #1000" in n for n in await notes(running, 1001))
        notice = await wait_mail(sink, ALICE, "Your requests were joined")
        assert notice.header("Subject").startswith("[#1000]") and "[#1001]" in notice.text()
        done = await wait_mail(sink, AINO, "Done [#1001]")
        assert "#1001 merged into #1000" in done.text()
        # The customer answers the old ticket's acknowledgement: its token now leads to the survivor.
        raw = customer_mail(f"Alice <{ALICE}>", f"Re: {ack2.header('Subject')}", "<c3@customer.test>", "Still smoking.\n",
                            in_reply_to=ack2.header("Message-ID"))
        await mail_in(running, raw, ack2.msg["Reply-To"].addresses[0].addr_spec, ALICE)
        assert (await messages(running, 1000))[-1] == "c3@customer.test"
        async with running.store.read() as tx:
            assert await tx.value("SELECT COUNT(*) FROM tickets") == 2


async def test_merge_of_two_customers_tickets_is_refused_and_changes_nothing(
    sink: Sink, caseconfig: Callable[[], Config]
) -> None:
    async with started(caseconfig()) as running:
        await customer_writes(running, sink, f"Alice <{ALICE}>", 1)
        second = await customer_writes(running, sink, f"Bob <{BOB}>", 2)
        raw, rcpt = answer(second, "", sender=f"Aino Agent <{AINO}>",
                           subject=f"[priority:high] [merge:#1000] Re: {second.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        refused = await wait_mail(sink, AINO, "[#1001]", 2)
        assert "belong to different customers" in refused.text()
        row = await ticket(running, 1001)
        assert (row["status"], row["priority"], row["merged_into"]) == ("new", "normal", None)
        assert await messages(running, 1001) == ["c2@customer.test"]
        assert not to(sink, ALICE, "joined") and not to(sink, BOB, "joined")
        result = await cli(running, "tickets", "merge", "1001", "1000", "--json")
        assert result.exit_code == 1 and "different customers" in json.loads(result.stdout)["error"]
        assert (await ticket(running, 1001))["status"] == "new"


async def test_merge_from_the_cli(sink: Sink, caseconfig: Callable[[], Config]) -> None:
    async with started(caseconfig()) as running:
        await customer_writes(running, sink, f"Alice <{ALICE}>", 1)
        await customer_writes(running, sink, f"Alice <{ALICE}>", 2)
        result = await cli(running, "tickets", "merge", "1000", "1001", "--agent", "aino", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["summary"].startswith("#1000 merged into #1001")
        assert (await ticket(running, 1000))["status"] == "merged"
        await wait_mail(sink, ALICE, "Your requests were joined")
        result = await cli(running, "tickets", "merge", "1000", "1001")
        assert result.exit_code == 1 and "already merged" in result.output


# -- forward ---------------------------------------------------------------------------------------


async def test_forward_sends_history_with_attachments_and_replies_come_back_as_notes(
    sink: Sink, caseconfig: Callable[[], Config]
) -> None:
    async with started(caseconfig()) as running:
        notice = await customer_writes(running, sink, f"Alice <{ALICE}>", 1, attachment=("invoice.pdf", b"%PDF-1.4 x"))
        await customer_writes(running, sink, f"Alice <{ALICE}>", 2)
        # another ticket outranks it by priority
        await cli_ok(running, "tickets", "priority", "1001", "urgent", "--as", "aino")
        raw, rcpt = answer(notice, "Can you check the serial number?", sender=f"Aino Agent <{AINO}>",
                           subject=f"[forward:{PARTNER}] Re: {notice.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        sent = await wait_mail(sink, PARTNER, "[#1000]")
        text = sent.text()
        for needle in ("Aino Agent forwarded", "Can you check the serial number?", "Status:", "the printer is on fire (1)",
                       "[attachment: invoice.pdf]"):
            assert needle in text, needle
        [part] = list(sent.msg.iter_attachments())
        assert part.get_filename() == "invoice.pdf" and part.get_content() == b"%PDF-1.4 x"
        assert [t.purpose for t in tokens.find(KEY, sent.header("Reply-To"))] == ["f"]
        # The agent's words went to the partner, never to the customer: kept as an internal note.
        assert await notes(running, 1000) == ["Can you check the serial number?"]
        assert not to(sink, ALICE, "Re: Printer")
        raw, rcpt = answer(sent, "Serial 4711 is under warranty.", sender=f"Partner <{PARTNER}>")
        await mail_in(running, raw, rcpt, PARTNER)
        assert (await notes(running, 1000))[-1] == "Serial 4711 is under warranty."
        assert await messages(running, 1000) == ["c1@customer.test"]  # not a customer message
        told = await wait_mail(sink, AINO, "Answer on [#1000]")
        assert "Serial 4711" in told.text()
        assert [t.purpose for t in tokens.find(KEY, told.header("Reply-To"))] == ["n"]
        async with running.store.read() as tx:
            inbox = await agent_inbox.list_tickets(tx, running.config, running.config.agent("aino"), "inbox")
        assert [t["number"] for t in inbox] == [1000, 1001] and inbox[0]["flagged"]
        # Aino acts on the ticket: the flag goes, the normal order is back.
        raw, rcpt = answer(told, "", sender=f"Aino Agent <{AINO}>", subject=f"[priority:low] Re: {told.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        assert await rows(running, "SELECT * FROM ticket_flags") == []
        assert not [r for r in sink.received if ALICE in r.rcpt_tos and "Serial" in r.text()]


async def test_forward_with_notes_and_from_the_cli(sink: Sink, caseconfig: Callable[[], Config]) -> None:
    async with started(caseconfig()) as running:
        notice = await customer_writes(running, sink, f"Alice <{ALICE}>", 1)
        raw, rcpt = answer(notice, "Internal: customer is a VIP.", sender=f"Aino Agent <{AINO}>",
                           subject=f"[note] Re: {notice.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        result = await cli(running, "tickets", "forward", "1000", PARTNER, "--agent", "aino", "--json")
        assert result.exit_code == 0, result.output
        plain = await wait_mail(sink, PARTNER, "[#1000]")
        assert "customer is a VIP" not in plain.text()
        result = await cli(running, "tickets", "forward", "1000", "boss@partner.example", "--notes", "--agent", "aino")
        assert result.exit_code == 0, result.output
        with_notes = await wait_mail(sink, "boss@partner.example", "[#1000]")
        assert "customer is a VIP" in with_notes.text() and "(internal note)" in with_notes.text()


async def test_forward_to_a_malformed_address_is_refused_and_changes_nothing(
    sink: Sink, caseconfig: Callable[[], Config]
) -> None:
    async with started(caseconfig()) as running:
        notice = await customer_writes(running, sink, f"Alice <{ALICE}>", 1)
        raw, rcpt = answer(notice, "Please look", sender=f"Aino Agent <{AINO}>",
                           subject=f"[priority:high] [forward:{PARTNER}, partner.example] Re: {notice.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        refused = await wait_mail(sink, AINO, "[#1000]", 2)
        assert "'partner.example' is not an email address" in refused.text()
        assert (await ticket(running, 1000))["priority"] == "normal"
        assert await rows(running, "SELECT * FROM forwards") == []
        assert not sink.to(PARTNER) and not to(sink, ALICE, "Re:")
        result = await cli(running, "tickets", "forward", "1000", "nobody@", "--agent", "aino", "--json")
        assert result.exit_code == 1 and "is not an email address" in json.loads(result.stdout)["error"]
        result = await cli(running, "tickets", "forward", "1000", f"x+1@{SUPPORT.split('@')[1]}", SUPPORT, "--agent", "aino")
        assert result.exit_code == 1 and "mailgate's own address" in result.output
        assert await rows(running, "SELECT * FROM forwards") == []


# -- ask a colleague -------------------------------------------------------------------------------


async def test_help_asks_a_colleague_whose_answer_becomes_a_note_and_the_asker_is_told(
    sink: Sink, caseconfig: Callable[[], Config]
) -> None:
    async with started(caseconfig()) as running:
        notice = await customer_writes(running, sink, f"Alice <{ALICE}>", 1)
        raw, rcpt = answer(notice, "Is this model still under warranty?", sender=f"Aino Agent <{AINO}>",
                           subject=f"[help:bartek] Re: {notice.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        asked = await wait_mail(sink, BARTEK, "Your help, please [#1000]")
        assert "Aino Agent asks for your help" in asked.text()
        assert "Is this model still under warranty?" in asked.text() and "the printer is on fire (1)" in asked.text()
        assert [t.purpose for t in tokens.find(KEY, asked.header("Reply-To"))] == ["h"]
        raw, rcpt = answer(asked, "Yes, two years.", sender=f"Bartek Agent <{BARTEK}>")
        await mail_in(running, raw, rcpt, BARTEK)
        assert await notes(running, 1000) == ["Is this model still under warranty?", "Yes, two years."]
        told = await wait_mail(sink, AINO, "Answer on [#1000]")
        assert "Yes, two years." in told.text()
        assert [r["agent"] for r in await rows(running, "SELECT agent FROM ticket_flags")] == ["aino"]
        assert not to(sink, ALICE, "Re:")  # neither the question nor the answer reached the customer


async def test_help_to_an_unknown_colleague_is_refused_and_nobody_is_asked(
    sink: Sink, caseconfig: Callable[[], Config]
) -> None:
    async with started(caseconfig()) as running:
        notice = await customer_writes(running, sink, f"Alice <{ALICE}>", 1)
        raw, rcpt = answer(notice, "Any idea?", sender=f"Aino Agent <{AINO}>",
                           subject=f"[tag:+asked] [help:bartek, pekka] Re: {notice.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        refused = await wait_mail(sink, AINO, "[#1000]", 2)
        assert "unknown colleague 'pekka'" in refused.text()
        assert await rows(running, "SELECT * FROM forwards") == []
        assert await rows(running, "SELECT * FROM ticket_tags") == []
        assert await notes(running, 1000) == []
        assert not sink.to(BARTEK)
        result = await cli(running, "tickets", "help", "1000", "pekka", "--agent", "aino", "--json")
        assert result.exit_code == 1 and "unknown colleague" in json.loads(result.stdout)["error"]
        result = await cli(running, "tickets", "help", "1000", "bartek", "--agent", "aino", "--text", "Warranty?", "--json")
        assert result.exit_code == 0, result.output
        assert "Warranty?" in (await wait_mail(sink, BARTEK, "Your help, please")).text()


# -- split -----------------------------------------------------------------------------------------


async def test_split_turns_the_answered_message_into_its_own_ticket(sink: Sink, caseconfig: Callable[[], Config]) -> None:
    async with started(caseconfig()) as running:
        first = await customer_writes(running, sink, f"Alice <{ALICE}>", 1)
        ack = await wait_mail(sink, ALICE, "[#1000]")
        # Aino takes the ticket and sets its fields by mail: the split-off ticket inherits them.
        raw, rcpt = answer(first, "", sender=f"Aino Agent <{AINO}>",
                           subject=f"[take] [priority:high] [category:Hardware] Re: {first.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        await wait_mail(sink, AINO, "Done [#1000]")
        taken = await ticket(running, 1000)
        assert (taken["assignee"], taken["priority"], taken["category"], taken["status"]) == (
            "aino", "high", "Hardware", "open")
        second = await customer_writes(running, sink, f"Alice <{ALICE}>", 2, in_reply_to=ack.header("Message-ID"),
                                       attachment=("scan.pdf", b"%PDF scan"), expect="Printer on fire 1")
        assert "fire (2)" in second.text()
        raw, rcpt = answer(second, "", sender=f"Aino Agent <{AINO}>", subject=f"[split] Re: {second.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        new, old = await ticket(running, 1001), await ticket(running, 1000)
        assert (new["queue"], new["assignee"], new["priority"], new["category"], new["status"]) == (
            old["queue"], "aino", "high", "Hardware", "new")
        assert new["contact_id"] == old["contact_id"]
        assert await messages(running, 1001) == ["c2@customer.test"]
        assert await messages(running, 1000) == ["c1@customer.test"]
        files = await rows(running, "SELECT a.filename FROM attachments a JOIN messages m ON m.id = a.message_row"
                                    " WHERE m.ticket_id = ?", (new["id"],))
        assert files == [{"filename": "scan.pdf"}]
        assert any("#1001" in n for n in await notes(running, 1000))
        assert any("#1000" in n for n in await notes(running, 1001))
        result = await cli(running, "tickets", "links", "1001", "--json")
        assert [(link["number"], link["kind"]) for link in json.loads(result.stdout)["links"]] == [(1000, "split-from")]
        done = await wait_mail(sink, AINO, "Done [#1000]", 2)
        assert "is now #1001" in done.text()


async def test_split_of_the_only_message_is_refused(sink: Sink, caseconfig: Callable[[], Config]) -> None:
    async with started(caseconfig()) as running:
        notice = await customer_writes(running, sink, f"Alice <{ALICE}>", 1)
        raw, rcpt = answer(notice, "", sender=f"Aino Agent <{AINO}>",
                           subject=f"[priority:high] [split] Re: {notice.header('Subject')}")
        await mail_in(running, raw, rcpt, AINO)
        refused = await wait_mail(sink, AINO, "[#1000]", 2)
        assert "only customer message" in refused.text()
        assert (await ticket(running, 1000))["priority"] == "normal"
        async with running.store.read() as tx:
            assert await tx.value("SELECT COUNT(*) FROM tickets") == 1
            row = await tx.value("SELECT id FROM messages WHERE message_id = 'c1@customer.test'")
        result = await cli(running, "tickets", "split", "1000", str(row), "--json")
        assert result.exit_code == 1 and "only customer message" in json.loads(result.stdout)["error"]
