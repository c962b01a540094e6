"""Agents working by mail, end to end: real SMTP into a real daemon, the relay an aiosmtpd sink."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import tokens
from mailgate.config import Config
from mailgate.daemon import Running, started

from .conftest import SECRET, SUPPORT, cli_ok, mail, send, settle, write_config
from .sink import AGENTS, Received, Sink, relay_section, to, wait_mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

CUSTOMER = "alice@customer.test"
AINO = "aino@agents.test"
CECILIA = "cecilia@agents.test"
KEY = SECRET.encode()
# A third agent, so notes and [next] have someone else in the support queue.
EXTRA = """
[[agents]]
id = "cecilia"
name = "Cecilia Agent"
addresses = ["cecilia@agents.test"]
queues = ["support"]
"""
TRUSTED = "mx.example.test"


@pytest.fixture
def agentconfig(tmp_path: Path, sink: Sink) -> Callable[..., Config]:
    def make(send_delay: float = 0.3) -> Config:
        extra = relay_section(sink.port, send_delay=send_delay) + AGENTS + EXTRA
        gateway = f'authserv_id = "{TRUSTED}"\ntimezone = "Europe/Helsinki"'
        # The tests' SMTP client stands in for the operator's MTA in front of mailgate.
        smtp = 'trusted_peers = ["127.0.0.1"]'
        return config_mod.load(write_config(tmp_path, extra, gateway=gateway, smtp=smtp))

    return make


async def rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list:
    async with running.store.read() as tx:
        return await tx.all(sql, params)


async def ticket(running: Running, number: int = 1000) -> dict:
    [row] = await rows(running, "SELECT * FROM tickets WHERE number = ?", (number,))
    return dict(row)


async def open_ticket(running: Running, sink: Sink, customer: str = CUSTOMER, n: int = 1, cc: str = "") -> Received:
    """A customer writes; returns the notification Aino gets."""
    headers = {"Cc": cc} if cc else None
    raw = mail(sender=f"Alice Customer <{customer}>", subject=f"Printer on fire {n}", message_id=f"<c{n}@customer.test>",
               body=f"Hello,\n\nthe printer is on fire ({n}).\n\nAlice\n", headers=headers)
    await send(running.smtp_port, raw, [SUPPORT], sender=customer)
    await settle(running)
    return await wait_mail(sink, AINO, f"Printer on fire {n}")


# -- replies as real clients build them ----------------------------------------------------------------


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def reply(
    notice: Received,
    text: str,
    *,
    client: str = "gmail",
    sender: str = f"Aino Agent <{AINO}>",
    subject: str | None = None,
    to: str | None = None,
    headers: dict[str, str] | None = None,
    files: tuple[tuple[str, bytes], ...] = (),
) -> tuple[bytes, str]:
    """An agent's reply to a notification: (wire bytes, envelope recipient = the Reply-To)."""
    original = notice.text()
    target = to or notice.msg["Reply-To"].addresses[0].addr_spec
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = target
    msg["Subject"] = subject if subject is not None else f"Re: {notice.header('Subject')}"
    msg["Date"] = "Mon, 23 Nov 2026 10:05:00 +0000"
    msg["Message-ID"] = f"<{client}.{abs(hash((text, subject, target)))}@agents.test>"
    msg["In-Reply-To"] = notice.header("Message-ID")
    msg["References"] = notice.header("Message-ID")
    for key, value in (headers or {}).items():
        msg[key] = value
    if client == "gmail":
        body = f"{text}\n\nOn Mon, 23 Nov 2026 at 10:00, Support <{SUPPORT}> wrote:\n\n{_quote(original)}\n"
    elif client == "outlook":
        body = (f"{text}\n\n________________________________\nFrom: Support <{SUPPORT}>\n"
                f"Sent: Monday, November 23, 2026 10:00 AM\nTo: Aino Agent <{AINO}>\n"
                f"Subject: {notice.header('Subject')}\n\n{original}\n")
    elif client == "thunderbird":
        body = f"{text}\n\nOn 23.11.2026 10:00, Support wrote:\n{_quote(original)}\n"
    elif client == "apple":
        body = f"{text}\n\n> On 23 Nov 2026, at 10:00, Support <{SUPPORT}> wrote:\n> \n{_quote(original)}\n"
    else:
        raise ValueError(client)
    msg.set_content(body)
    for filename, data in files:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return raw, target


async def agent_sends(running: Running, raw: bytes, rcpt: str, sender: str = AINO) -> None:
    await send(running.smtp_port, raw, [rcpt], sender=sender)
    await settle(running)


def assert_nothing_internal(received: Received) -> None:
    """What a customer receives carries no note, tag, agent token or agent address."""
    whole = received.raw.decode("utf-8", "replace") + received.text()
    for needle in ("Tags in the subject", "[comment]", "[status:", "#status", "New request", "INTERNAL",
                   AINO, CECILIA, "+a-", "+n-"):
        assert needle not in whole, needle
    for token in tokens.find(KEY, whole):
        assert token.purpose in ("r", "b"), token


# -- the tests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["gmail", "outlook", "thunderbird", "apple"])
async def test_reply_reaches_customer_and_cc_with_nothing_internal(
    sink: Sink, agentconfig: Callable[..., Config], client: str
) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink, cc="Bob Customer <bob@customer.test>")
        reply_to = notice.msg["Reply-To"].addresses[0].addr_spec
        assert tokens.find(KEY, reply_to) == [tokens.Token("a", 1000, "aino")]
        text = notice.text()
        for needle in ("[#1000]", "Status:", "Priority:", "Queue:", "Assignee:", "the printer is on fire (1)",
                       "[comment]", "[status:open|pending|resolved|closed]"):
            assert needle in text, needle
        raw, rcpt = reply(notice, "We replaced the toner.\nIt works again.", client=client)
        await agent_sends(running, raw, rcpt)
        answer = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        bob = await wait_mail(sink, "bob@customer.test", "Re: Printer on fire 1")
        for received in (answer, bob):
            msg = received.msg
            assert msg["From"].addresses[0].addr_spec == SUPPORT
            assert "Aino Agent" in msg["From"].addresses[0].display_name
            assert msg["Subject"] == "[#1000] Re: Printer on fire 1"
            assert msg["In-Reply-To"] == "<c1@customer.test>"
            assert msg["Auto-Submitted"] is None
            assert {a.addr_spec for a in msg["Cc"].addresses} == {"bob@customer.test"}
            assert "We replaced the toner." in received.text() and "It works again." in received.text()
            assert "the printer is on fire" not in received.text()  # quoted history cut
            assert_nothing_internal(received)
        done = await wait_mail(sink, AINO, "Done [#1000]")
        assert CUSTOMER in done.text() and "[cancel]" in done.text()
        assert tokens.find(KEY, done.msg["Reply-To"].addresses[0].addr_spec)[0].purpose == "a"
        stored = await rows(running, "SELECT direction, reply_text FROM messages WHERE direction = 'agent'")
        assert [r["reply_text"] for r in stored] == ["We replaced the toner.\nIt works again."]


async def test_subject_tags_after_outlook_re_apply_in_one_go_with_events(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        subject = ("RE: [priority:urgent] [queue:billing] [assign:bartek] [tag:+vip +printer] [category:Hardware] "
                   + notice.header("Subject"))
        raw, rcpt = reply(notice, "", client="outlook", subject=subject)
        await agent_sends(running, raw, rcpt)
        row = await ticket(running)
        assert (row["priority"], row["queue"], row["assignee"], row["category"]) == ("urgent", "billing", "bartek", "Hardware")
        tags = await rows(running, "SELECT tag FROM ticket_tags WHERE ticket_id = ? ORDER BY tag", (row["id"],))
        assert [t["tag"] for t in tags] == ["printer", "vip"]
        kinds = {e["kind"] for e in await rows(running, "SELECT kind FROM events WHERE actor = 'agent:aino'")}
        assert {"ticket.priority", "ticket.queue", "ticket.assigned", "ticket.tags", "ticket.category"} <= kinds
        # The ticket is in billing now, a Polish-speaking queue: the confirmation speaks Polish.
        done = await wait_mail(sink, AINO, "Wykonano [#1000]")
        assert "[queue:billing]" in done.text() and "[assign:bartek]" in done.text()
        # No text: nothing for the customer (the quoted notification is not "text"); tags not stored.
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind = 'reply'") == []
        assert len(sink.to(CUSTOMER)) == 1
        [stored] = await rows(running, "SELECT subject FROM messages WHERE direction = 'agent'")
        assert "[" not in stored["subject"].replace("[#1000]", "")


async def test_body_commands_snooze_and_take(sink: Sink, agentconfig: Callable[..., Config]) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "#take\n#snooze monday\n", client="thunderbird")
        await agent_sends(running, raw, rcpt)
        row = await ticket(running)
        assert row["assignee"] == "aino" and row["status"] == "waiting" and row["snoozed_until"]
        [timer] = await rows(running, "SELECT * FROM timers WHERE kind = 'snooze.wake'")
        assert timer["ref"] == row["id"] and timer["due_at"] == row["snoozed_until"]
        assert timer["due_at"][11:16] in ("07:00", "08:00")  # Monday 09:00 Helsinki
        await wait_mail(sink, AINO, "Done [#1000]")
        assert len(sink.to(CUSTOMER)) == 1


async def test_status_resolved_tells_the_customer(sink: Sink, agentconfig: Callable[..., Config]) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "Fixed, closing.", subject="Re: [status:resolved] " + notice.header("Subject"))
        await agent_sends(running, raw, rcpt)
        assert (await ticket(running))["status"] == "resolved"
        await wait_mail(sink, CUSTOMER, "Resolved")
        answer = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert "Fixed, closing." in answer.text()
        assert_nothing_internal(answer)


async def test_comment_and_replies_to_notes_never_reach_the_customer(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "INTERNAL: this customer owes us money.", client="apple",
                          subject="Re: [comment] " + notice.header("Subject"))
        await agent_sends(running, raw, rcpt)
        # Cecilia (same queue) hears of the note; her Reply-To adds a note, it cannot answer the customer.
        note = await wait_mail(sink, CECILIA, "Internal note [#1000]")
        assert "INTERNAL: this customer owes us money." in note.text()
        note_address = note.msg["Reply-To"].addresses[0].addr_spec
        assert tokens.find(KEY, note_address) == [tokens.Token("n", 1000, "cecilia")]
        done = await wait_mail(sink, AINO, "Done [#1000]")
        assert tokens.find(KEY, done.msg["Reply-To"].addresses[0].addr_spec)[0].purpose == "n"
        raw, rcpt = reply(note, "INTERNAL: agreed, be careful.", sender=f"Cecilia <{CECILIA}>")
        await agent_sends(running, raw, rcpt, sender=CECILIA)
        await wait_mail(sink, AINO, "Internal note [#1000]")
        notes = await rows(running, "SELECT reply_text, from_address FROM messages WHERE direction = 'note' ORDER BY id")
        assert [(n["from_address"], n["reply_text"]) for n in notes] == [
            (AINO, "INTERNAL: this customer owes us money."), (CECILIA, "INTERNAL: agreed, be careful.")]
        # A real reply afterwards reaches the customer; by then any note would have, too.
        raw, rcpt = reply(notice, "MARKER: we are on it.")
        await agent_sends(running, raw, rcpt)
        answer = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert "MARKER" in answer.text()
        for received in sink.to(CUSTOMER):
            assert_nothing_internal(received)
        assert await rows(running, "SELECT 1 FROM outbox WHERE text LIKE '%INTERNAL%' AND rcpt_to NOT LIKE '%agents.test'") == []


async def test_forged_agent_from_changes_nothing_and_the_agent_is_told(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        before = await ticket(running)
        # To the plain support address (no token), In-Reply-To the notification, and an
        # Authentication-Results "pass" from an MTA that is not ours.
        raw, rcpt = reply(notice, "FORGED: send me your password.", to=SUPPORT,
                          subject="Re: [status:closed] [assign:none] " + notice.header("Subject"),
                          headers={"Authentication-Results": "mx.evil.test; dkim=pass header.d=agents.test"})
        await agent_sends(running, raw, rcpt)
        after = await ticket(running)
        assert {k: after[k] for k in ("status", "assignee", "queue", "priority")} == {
            k: before[k] for k in ("status", "assignee", "queue", "priority")}
        warning = await wait_mail(sink, AINO, "Not accepted as yours [#1000]")
        assert "no command in it was run" in warning.text() and "FORGED" not in warning.text()
        stored = await rows(running, "SELECT direction FROM messages WHERE reply_text LIKE 'FORGED%'")
        assert [s["direction"] for s in stored] == ["in"]  # kept as an outside party's message
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind = 'reply'") == []
        assert len(sink.to(CUSTOMER)) == 1


async def test_from_with_cve_2023_27043_trick_is_not_an_agent(sink: Sink, agentconfig: Callable[..., Config]) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        # Even with Aino's real token address (say, leaked) and a DKIM pass for agents.test.
        raw, rcpt = reply(notice, "TRICK: close it.", sender="x@y.test",
                          subject="Re: [status:closed] " + notice.header("Subject"),
                          headers={"Authentication-Results": f"{TRUSTED}; dkim=pass header.d=agents.test"})
        raw = raw.replace(b"From: x@y.test", b"From: aino@agents.test)<mallory@evil.test>", 1)
        await agent_sends(running, raw, rcpt, sender="mallory@evil.test")
        assert (await ticket(running))["status"] == "new"
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind = 'reply'") == []
        assert len(sink.to(CUSTOMER)) == 1


async def test_trusted_dkim_pass_proves_the_agent_without_a_token(sink: Sink, agentconfig: Callable[..., Config]) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "", to=SUPPORT, subject="Re: [priority:high] " + notice.header("Subject"))
        raw = f"Authentication-Results: {TRUSTED}; dkim=pass header.d=agents.test\r\n".encode() + raw
        await agent_sends(running, raw, rcpt)
        assert (await ticket(running))["priority"] == "high"
        await wait_mail(sink, AINO, "Done [#1000]")


async def test_bad_tag_among_good_ones_applies_nothing_and_one_error_reply(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        before = await ticket(running)
        events_before = len(await rows(running, "SELECT 1 FROM events"))
        subject = ("Re: [status:resolved] [priority:high] [queue:nowhere] [assign:ghost] [snooze:someday] "
                   + notice.header("Subject"))
        raw, rcpt = reply(notice, "PARTIAL: this must not go out.", subject=subject)
        await agent_sends(running, raw, rcpt)
        after = await ticket(running)
        assert {k: after[k] for k in ("status", "priority", "queue", "assignee")} == {
            k: before[k] for k in ("status", "priority", "queue", "assignee")}
        error = await wait_mail(sink, AINO, "Not done [#1000]")
        text = error.text()
        assert "unknown queue 'nowhere'" in text and "unknown agent 'ghost'" in text and "cannot read the date" in text
        assert "[status:resolved]" not in text.split("because:")[1].split("Your mail is kept")[0]
        # Not a member: Bartek works billing, not support.
        raw, rcpt = reply(notice, "", subject="Re: [assign:bartek] [status:pending] " + notice.header("Subject"))
        await agent_sends(running, raw, rcpt)
        error = await wait_mail(sink, AINO, "Not done [#1000]", count=2)
        assert "bartek is not a member of queue 'support'" in error.text()
        assert (await ticket(running))["status"] == "new"
        assert len(to(sink, AINO, "Not done")) == 2 and not to(sink, AINO, "Done [#1000]")
        # Kept, not lost: the raw mail is stored as the agent's message, and nothing else changed.
        stored = await rows(running, "SELECT reply_text FROM messages WHERE direction = 'agent' ORDER BY id")
        assert stored[0]["reply_text"] == "PARTIAL: this must not go out."
        kinds = [e["kind"] for e in await rows(running, "SELECT kind FROM events ORDER BY id")][events_before:]
        assert set(kinds) <= {"message.added", "agent_mail.refused", "mail.sent"}, kinds
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind = 'reply'") == []
        assert len(sink.to(CUSTOMER)) == 1


async def test_cancel_within_the_delay_sends_nothing(sink: Sink, agentconfig: Callable[..., Config]) -> None:
    async with started(agentconfig(send_delay=30)) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "OOPS: wrong customer.")
        await agent_sends(running, raw, rcpt)
        done = await wait_mail(sink, AINO, "Done [#1000]")
        raw, rcpt = reply(done, "", subject="Re: [cancel] " + done.header("Subject"))
        await agent_sends(running, raw, rcpt)
        confirm = await wait_mail(sink, AINO, "Done [#1000]", count=2)
        assert "1 waiting reply withdrawn" in confirm.text()
        found = await rows(running, "SELECT state, text, rcpt_to FROM outbox WHERE kind = 'reply'")
        assert len(found) == 1, [dict(r) for r in found]
        [row] = found
        assert row["state"] == "cancelled"
        assert await rows(running, "SELECT 1 FROM timers WHERE kind = 'outbox.release'") == []
        assert not any("OOPS" in r.text() for r in sink.received if CUSTOMER in r.rcpt_tos)


async def test_next_from_two_agents_at_once_never_hands_out_one_ticket_twice(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        for n in (1, 2, 3):
            await open_ticket(running, sink, customer=f"c{n}@customer.test", n=n)
        await cli_ok(running, "tickets", "priority", "1002", "urgent", "--as", "aino")

        def command_mail(agent: str, address: str, i: int) -> tuple[bytes, str]:
            rcpt = tokens.reply_address(KEY, SUPPORT, tokens.Token("a", 0, agent))
            raw = mail(sender=address, to=rcpt, subject="[next]", body="", message_id=f"<next.{agent}.{i}@agents.test>")
            return raw, rcpt

        for i in range(2):
            (a_raw, a_rcpt), (c_raw, c_rcpt) = command_mail("aino", AINO, i), command_mail("cecilia", CECILIA, i)
            await asyncio.gather(send(running.smtp_port, a_raw, [a_rcpt], sender=AINO),
                                 send(running.smtp_port, c_raw, [c_rcpt], sender=CECILIA))
            await settle(running)
        assigned = await rows(running, "SELECT number, assignee, status FROM tickets ORDER BY number")
        assert all(r["assignee"] in ("aino", "cecilia") for r in assigned), [dict(r) for r in assigned]
        assert all(r["status"] == "open" for r in assigned)
        events = await rows(running, "SELECT ticket_id FROM events WHERE kind = 'ticket.assigned'")
        assert len(events) == len({e["ticket_id"] for e in events}) == 3  # each handed out exactly once
        first = await rows(running, "SELECT ticket_id, actor FROM events WHERE kind = 'ticket.assigned' ORDER BY id LIMIT 1")
        assert first and (await ticket(running, 1002))["id"] == first[0]["ticket_id"]  # the urgent one first
        # Each picked ticket is mailed to its agent, Reply-To answering that ticket.
        for row in assigned:
            address = AINO if row["assignee"] == "aino" else CECILIA
            sent = await wait_mail(sink, address, f"Done [#{row['number']}]")
            [token] = tokens.find(KEY, sent.msg["Reply-To"].addresses[0].addr_spec)
            assert (token.purpose, token.ticket, token.agent) == ("a", row["number"], row["assignee"])
            assert f"the printer is on fire ({row['number'] - 999})" in sent.text()
        # The fourth ask finds nothing left.
        await sink.wait_for(lambda r: any("no unassigned ticket" in x.text() for x in r))


async def test_list_by_mail_and_command_address(sink: Sink, agentconfig: Callable[..., Config]) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "", subject="Re: [take] " + notice.header("Subject"))
        await agent_sends(running, raw, rcpt)
        rcpt = tokens.reply_address(KEY, SUPPORT, tokens.Token("a", 0, "aino"))
        await agent_sends(running, mail(sender=AINO, to=rcpt, subject="[list:mine]", body="", message_id="<l1@a.test>"), rcpt)
        listing = await wait_mail(sink, AINO, "Done: mine")
        assert "[#1000]" in listing.text() and "Printer on fire 1" in listing.text()
        await agent_sends(running, mail(sender=AINO, to=rcpt, subject="[status:closed]", body="", message_id="<l2@a.test>"), rcpt)
        refused = await wait_mail(sink, AINO, "Not done: your commands")
        assert "needs a ticket" in refused.text()


async def test_agent_out_of_office_to_the_reply_address_never_reaches_the_customer(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "I am on holiday.", headers={"Auto-Submitted": "auto-replied"})
        await agent_sends(running, raw, rcpt)
        [event] = await rows(running, "SELECT data FROM events WHERE kind = 'agent_mail.ignored'")
        assert json.loads(event["data"])["kind"] == "auto-reply"
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind IN ('reply', 'agent')") == []


@pytest.mark.parametrize("client", ["gmail", "outlook", "thunderbird", "apple"])
async def test_tags_only_reply_sends_no_quoted_history(sink: Sink, agentconfig: Callable[..., Config], client: str) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "", client=client, subject="Re: [priority:low] " + notice.header("Subject"))
        await agent_sends(running, raw, rcpt)
        assert (await ticket(running))["priority"] == "low"
        await wait_mail(sink, AINO, "Done [#1000]")
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind = 'reply'") == []


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


async def test_reply_attachment_reaches_the_customer_and_a_comment_attachment_does_not(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink, cc="Bob Customer <bob@customer.test>")
        secret_pdf = PDF.replace(b"Catalog", b"Secrets")
        raw, rcpt = reply(notice, "INTERNAL: their contract, for us only.", subject="Re: [comment] " + notice.header("Subject"),
                          files=(("contract.pdf", secret_pdf),))
        await agent_sends(running, raw, rcpt)
        await wait_mail(sink, CECILIA, "Internal note [#1000]")
        raw, rcpt = reply(notice, "Here is your invoice.", files=(("Invoice 2026-11 (copy).pdf", PDF),))
        await agent_sends(running, raw, rcpt)
        for address in (CUSTOMER, "bob@customer.test"):
            answer = await wait_mail(sink, address, "Re: Printer on fire 1")
            assert "Here is your invoice." in answer.text()
            [part] = list(answer.msg.iter_attachments())
            assert part.get_filename() == "Invoice 2026-11 (copy).pdf"
            assert part.get_content_type() == "application/pdf"
            assert part.get_content() == PDF
            assert answer.msg["Content-Language"] == "en"
            assert_nothing_internal(answer)
        # The note's file went to no customer: only agents ever saw it.
        for received in sink.received:
            if "agents.test" not in " ".join(received.rcpt_tos):
                assert b"Secrets" not in received.raw and "contract.pdf" not in received.raw.decode("ascii", "replace")
        [event] = await rows(running, "SELECT data FROM events WHERE kind = 'reply.queued'")
        assert json.loads(event["data"])["attachments"] == ["Invoice 2026-11 (copy).pdf"]


async def test_assign_tells_the_new_assignee_by_mail_and_cli(sink: Sink, agentconfig: Callable[..., Config]) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "", subject="Re: [assign:cecilia] " + notice.header("Subject"))
        await agent_sends(running, raw, rcpt)
        told = await wait_mail(sink, CECILIA, "Assigned to you [#1000]")
        text = told.text()
        for needle in ("Aino Agent assigned [#1000] Printer on fire 1 to you", "Assignee: cecilia",
                       "the printer is on fire (1)", CUSTOMER, "[comment]"):
            assert needle in text, needle
        assert tokens.find(KEY, told.msg["Reply-To"].addresses[0].addr_spec) == [tokens.Token("a", 1000, "cecilia")]
        assert told.msg["Auto-Submitted"] == "auto-generated"
        await wait_mail(sink, AINO, "Done [#1000]")
        # Cecilia answers the customer straight from the notice.
        raw, rcpt = reply(told, "Cecilia here, on it.", sender=f"Cecilia <{CECILIA}>")
        await agent_sends(running, raw, rcpt, sender=CECILIA)
        answer = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert "Cecilia here, on it." in answer.text()
        # Taking it oneself, or the same assignee again, tells nobody.
        raw, rcpt = reply(told, "", sender=f"Cecilia <{CECILIA}>", subject="Re: [assign:cecilia] " + told.header("Subject"))
        await agent_sends(running, raw, rcpt, sender=CECILIA)
        await wait_mail(sink, CECILIA, "Done [#1000]")
        # The CLI is the same operation: Bartek (Polish) hears it in Polish.
        await cli_ok(running, "tickets", "queue", "1000", "billing", "--as", "aino")
        await cli_ok(running, "tickets", "assign", "1000", "bartek", "--as", "aino")
        polish = await wait_mail(sink, "bartek@agents.test", "Przypisano do Ciebie [#1000]")
        assert "Aino Agent przypisał(a) Ci zgłoszenie [#1000]" in polish.text()
        assert tokens.find(KEY, polish.msg["Reply-To"].addresses[0].addr_spec) == [tokens.Token("a", 1000, "bartek")]
        assigned = [r for r in sink.received if "Assigned to you" in r.header("Subject")
                    or "Przypisano" in r.header("Subject")]
        assert [r.rcpt_tos for r in assigned] == [[CECILIA], ["bartek@agents.test"]]
