"""An agent's own mail without proof (no token, no trusted DKIM/SPF), end to end over real SMTP.

Agents write "[#1000] …" to the support address from their everyday mail client, through a plain
Postfix that adds no Authentication-Results. Such a mail belongs on the ticket when the agent takes
part in it (the assignee, an agent of its queue, a follower), but a From anyone can forge never
acts: it is kept and shown, and the real agent is told how to act with proof.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import tokens
from mailgate.config import Config
from mailgate.daemon import Running, started

from .conftest import SECRET, SUPPORT, cli_ok, mail, send, settle, write_config
from .sink import Received, Sink, relay_section, wait_mail
from .test_agent_mail import reply

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

CUSTOMER = "alice@customer.test"
AINO = "aino@agents.test"
CECILIA = "cecilia@agents.test"
BARTEK = "bartek@agents.test"
STRANGER = "mallory@evil.test"
KEY = SECRET.encode()
TRUSTED = "mx.example.test"
# Support rotates between Aino and Cecilia (the customer's first ticket goes to Aino, the next one
# to Cecilia); Bartek works billing only.
TEAM = """
[[queues]]
name = "support"
addresses = ["support@example.test"]
members = ["aino", "cecilia"]
assignment = "round-robin"

[[queues]]
name = "billing"
addresses = ["billing@example.test"]
members = ["bartek"]

[[agents]]
id = "aino"
name = "Aino Agent"
addresses = ["aino@agents.test"]

[[agents]]
id = "bartek"
name = "Bartek Agent"
addresses = ["bartek@agents.test"]

[[agents]]
id = "cecilia"
name = "Cecilia Agent"
addresses = ["cecilia@agents.test"]
"""
# The tests' SMTP client stands in for the operator's Postfix: trusted, but it adds no results.
PLAIN_POSTFIX = 'trusted_peers = ["127.0.0.1"]'


@pytest.fixture
def teamconfig(tmp_path: Path, sink: Sink) -> Callable[..., Config]:
    def make(*, smtp: str = PLAIN_POSTFIX, send_delay: float = 0.2) -> Config:
        extra = relay_section(sink.port, send_delay=send_delay) + TEAM
        return config_mod.load(write_config(tmp_path, extra, gateway=f'authserv_id = "{TRUSTED}"', smtp=smtp))

    return make


async def rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, object]]:
    async with running.store.read() as tx:
        return [dict(r) for r in await tx.all(sql, params)]


async def ticket(running: Running, number: int = 1000) -> dict[str, object]:
    [row] = await rows(running, "SELECT * FROM tickets WHERE number = ?", (number,))
    return row


def facts(row: dict[str, object]) -> dict[str, object]:
    return {k: row[k] for k in ("status", "priority", "queue", "assignee")}


async def all_sent(running: Running) -> None:
    """Every queued mail has reached the relay (waits on the sender, never a fixed sleep)."""
    async with asyncio.timeout(30):
        while (await rows(running, "SELECT COUNT(*) AS n FROM outbox WHERE state IN ('queued', 'sending')"
                                   " AND kind != 'reply'"))[0]["n"]:
            assert running.outgoing is not None
            running.outgoing.sender.wake()
            running.outgoing.sender.delivered.clear()
            await running.outgoing.sender.delivered.wait()


async def customer_opens(running: Running, sink: Sink) -> Received:
    """Alice opens #1000 (round-robin: Aino's); returns Aino's notification."""
    raw = mail(sender=f"Alice Customer <{CUSTOMER}>", subject="Printer on fire", message_id="<c1@customer.test>")
    await send(running.smtp_port, raw, [SUPPORT], sender=CUSTOMER)
    await settle(running)
    await wait_mail(sink, CUSTOMER, "Printer on fire")
    notice = await wait_mail(sink, AINO, "Printer on fire")
    assert (await ticket(running))["assignee"] == "aino"
    return notice


def thunderbird(sender: str, subject: str, text: str, *, n: int = 1, extra: str = "", to: str = SUPPORT) -> bytes:
    """A fresh mail as Thunderbird writes it: format=flowed, Content-Language, a "-- " signature."""
    name = sender.partition(" <")[0]
    return (
        f"Message-ID: <0b1e6c2a-77f4-4d1e-9a5b-{n:012d}@agents.test>\r\n"
        "Date: Mon, 23 Nov 2026 11:02:13 +0200\r\n"
        "MIME-Version: 1.0\r\n"
        "User-Agent: Mozilla Thunderbird\r\n"
        "Content-Language: en-US\r\n"
        f"To: {to}\r\n"
        f"From: {sender}\r\n"
        f"{extra}"
        f"Subject: {subject}\r\n"
        "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
        f"{text}\r\n"
        "\r\n"
        "-- \r\n"
        f"{name}\r\n"
        "Example Support, 2nd line\r\n"
    ).encode()


def gmail(sender: str, subject: str, text: str, *, in_reply_to: str = "", to: str = SUPPORT, cc: str = "") -> bytes:
    """A mail as Gmail's web client writes it: multipart/alternative, the HTML a <div dir="ltr">."""
    threading = f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" if in_reply_to else ""
    copies = f"Cc: {cc}\r\n" if cc else ""
    return (
        "MIME-Version: 1.0\r\n"
        "Date: Mon, 23 Nov 2026 10:20:00 +0200\r\n"
        f"{threading}"
        f"Message-ID: <CAF=9x{zlib.crc32((sender + subject + text).encode())}@mail.agents.test>\r\n"
        f"Subject: {subject}\r\n"
        f"From: {sender}\r\n"
        f"To: {to}\r\n"
        f"{copies}"
        'Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6"\r\n'
        "\r\n"
        "--000000000000a1b2c3d4e5f6\r\n"
        'Content-Type: text/plain; charset="UTF-8"\r\n'
        "\r\n"
        f"{text}\r\n"
        "\r\n"
        "--000000000000a1b2c3d4e5f6\r\n"
        'Content-Type: text/html; charset="UTF-8"\r\n'
        "\r\n"
        f'<div dir="ltr">{text.replace(chr(10), "<br>")}</div>\r\n'
        "\r\n"
        "--000000000000a1b2c3d4e5f6--\r\n"
    ).encode()


async def writes(running: Running, raw: bytes, envelope_from: str, rcpt: str = SUPPORT) -> None:
    await send(running.smtp_port, raw, [rcpt], sender=envelope_from)
    await settle(running)


async def stored(running: Running, words: str) -> list[dict[str, object]]:
    return await rows(running, "SELECT t.number, m.direction, m.from_address, m.thread_rule, m.thread_detail"
                               " FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.text LIKE ?",
                      (f"%{words}%",))


def assert_told_how_to_act(notice: Received, agent: str, agent_id: str, number: int) -> None:
    """The unproven notice: at the agent's configured address, naming her signed address for the ticket."""
    assert notice.rcpt_tos == [agent]
    assert [a.addr_spec for a in notice.msg["To"].addresses] == [agent]
    text = notice.text()
    assert "no command in it was run" in text
    signed = tokens.reply_address(KEY, SUPPORT, tokens.Token("a", number, agent_id))
    assert signed in text
    assert notice.msg["Reply-To"].addresses[0].addr_spec == signed


# -- the ticket's own agents ---------------------------------------------------------------------------


async def test_assignee_names_the_ticket_without_proof_it_joins_and_nothing_runs(
    sink: Sink, teamconfig: Callable[..., Config]
) -> None:
    async with started(teamconfig()) as running:
        await customer_opens(running, sink)
        before = facts(await ticket(running))
        raw = thunderbird(f"Aino Agent <{AINO}>", "[#1000] update [status:closed] [priority:urgent]",
                          "#assign cecilia\nUPDATE: the customer called, the toner is on its way.")
        await writes(running, raw, AINO)
        # On #1000, no new ticket, and nothing of it ran.
        assert [t["number"] for t in await rows(running, "SELECT number FROM tickets")] == [1000]
        assert facts(await ticket(running)) == before
        [message] = await stored(running, "UPDATE: the customer called")
        assert (message["number"], message["direction"], message["from_address"]) == (1000, "in", AINO)
        assert message["thread_rule"] == "subject-tag"
        assert "agent aino, the assignee" in str(message["thread_detail"])
        assert "without proof" in str(message["thread_detail"])
        # Aino is told, at her own address, how to act on it; nothing went to the customer.
        notice = await wait_mail(sink, AINO, "Not accepted as yours [#1000]")
        assert_told_how_to_act(notice, AINO, "aino", 1000)
        assert "stored on the ticket" in notice.text() and "UPDATE" not in notice.text()
        await all_sent(running)
        assert [r.header("Subject") for r in sink.to(CUSTOMER)] == ["[#1000] Received: Printer on fire"]  # the ack only
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind = 'reply'") == []
        [event] = await rows(running, "SELECT data FROM events WHERE kind = 'agent_mail.unproven'")
        assert json.loads(str(event["data"]))["agent"] == "aino"

        # Sent again to the signed address the notice names, the same words are hers: they run.
        signed = tokens.reply_address(KEY, SUPPORT, tokens.Token("a", 1000, "aino"))
        raw = thunderbird(f"Aino Agent <{AINO}>", "[#1000] update [priority:urgent]",
                          "PROVEN: the toner is on its way.", n=2, to=signed)
        await writes(running, raw, AINO, rcpt=signed)
        await wait_mail(sink, AINO, "Done [#1000]")
        assert (await ticket(running))["priority"] == "urgent"
        answer = await wait_mail(sink, CUSTOMER, "Printer on fire", count=2)
        assert "PROVEN: the toner is on its way." in answer.text()


async def test_a_colleague_of_the_queue_joins_likewise_and_is_told(
    sink: Sink, teamconfig: Callable[..., Config]
) -> None:
    async with started(teamconfig()) as running:
        await customer_opens(running, sink)
        before = facts(await ticket(running))
        raw = gmail(f"Cecilia Agent <{CECILIA}>", "[#1000] [status:resolved] [assign:me]",
                    "COLLEAGUE: I talked to Alice at the counter, it works now.")
        await writes(running, raw, CECILIA)
        assert [t["number"] for t in await rows(running, "SELECT number FROM tickets")] == [1000]
        assert facts(await ticket(running)) == before
        [message] = await stored(running, "COLLEAGUE:")
        assert message["number"] == 1000 and message["from_address"] == CECILIA
        assert "agent cecilia of queue support" in str(message["thread_detail"])
        notice = await wait_mail(sink, CECILIA, "Not accepted as yours [#1000]")
        assert_told_how_to_act(notice, CECILIA, "cecilia", 1000)
        await all_sent(running)
        # Only the author is told: mail from an agent's address notifies no one on a ticket (her
        # out-of-office answering would loop); it is on the ticket for all to read.
        assert all("COLLEAGUE" not in r.text() and "Not accepted" not in r.header("Subject") for r in sink.to(AINO))
        assert len(sink.to(CUSTOMER)) == 1
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind = 'reply'") == []


async def test_reply_all_by_references_without_proof_is_kept_and_the_agent_told(
    sink: Sink, teamconfig: Callable[..., Config]
) -> None:
    async with started(teamconfig()) as running:
        await customer_opens(running, sink)
        before = facts(await ticket(running))
        # Aino answers the customer's own mail (she was sent a copy) with Reply All: the customer
        # gets it directly from Aino's server; mailgate, in Cc, keeps it and does nothing else.
        raw = gmail(f"Aino Agent <{AINO}>", "Re: Printer on fire", "#status closed\nREPLYALL: fixed, closing.",
                    in_reply_to="<c1@customer.test>", to=CUSTOMER, cc=f"{SUPPORT}, Bob Boss <bob@customer.test>")
        await writes(running, raw, AINO)
        assert facts(await ticket(running)) == before
        [message] = await stored(running, "REPLYALL:")
        assert (message["number"], message["thread_rule"]) == (1000, "header")
        assert "without proof" in str(message["thread_detail"])
        parties = await rows(running, "SELECT address FROM ticket_parties")
        assert [p["address"] for p in parties] == [CUSTOMER]  # Bob is not brought in
        notice = await wait_mail(sink, AINO, "Not accepted as yours [#1000]")
        assert_told_how_to_act(notice, AINO, "aino", 1000)
        await all_sent(running)
        assert len(sink.to(CUSTOMER)) == 1 and sink.to("bob@customer.test") == []


@pytest.mark.parametrize("status", ["resolved", "closed"])
async def test_unproven_mail_on_a_finished_ticket_neither_reopens_nor_follows_up(
    sink: Sink, teamconfig: Callable[..., Config], status: str
) -> None:
    async with started(teamconfig()) as running:
        notice = await customer_opens(running, sink)
        raw, rcpt = reply(notice, "", subject=f"Re: [status:{status}] {notice.header('Subject')}")
        await writes(running, raw, AINO, rcpt=rcpt)
        await wait_mail(sink, AINO, "Done [#1000]")
        assert (await ticket(running))["status"] == status
        raw = thunderbird(f"Aino Agent <{AINO}>", "[#1000] [status:open] one more thing", "LATE: reopen it.")
        await writes(running, raw, AINO)
        assert (await ticket(running))["status"] == status
        assert [t["number"] for t in await rows(running, "SELECT number FROM tickets")] == [1000]
        [message] = await stored(running, "LATE:")
        assert message["number"] == 1000
        await wait_mail(sink, AINO, "Not accepted as yours [#1000]")


async def test_without_queues_every_agent_takes_part(tmp_path: Path, sink: Sink) -> None:
    agents = TEAM.split("[[agents]]", 1)[1]
    extra = relay_section(sink.port, send_delay=0.2) + "\n[[agents]]" + agents
    async with started(config_mod.load(write_config(tmp_path, extra))) as running:
        raw = mail(sender=f"Alice Customer <{CUSTOMER}>", subject="Printer on fire", message_id="<c1@customer.test>")
        await writes(running, raw, CUSTOMER)
        assert (await ticket(running))["queue"] is None
        raw = thunderbird(f"Bartek Agent <{BARTEK}>", "[#1000] [status:closed] update", "NOQUEUE: done.")
        await writes(running, raw, BARTEK)
        [message] = await stored(running, "NOQUEUE:")
        assert message["number"] == 1000 and "the ticket is in no queue" in str(message["thread_detail"])
        assert (await ticket(running))["status"] == "new"
        await wait_mail(sink, BARTEK, "Not accepted as yours [#1000]")


# -- others ---------------------------------------------------------------------------------------------


async def test_agent_of_another_queue_is_a_stranger_to_the_ticket_until_she_takes_part(
    sink: Sink, teamconfig: Callable[..., Config]
) -> None:
    async with started(teamconfig()) as running:
        notice = await customer_opens(running, sink)
        # Bartek (billing) never touched #1000: his tag does not reach into support's ticket. His
        # mail opens a ticket of his own, with him as requester, like anyone's; but no
        # acknowledgement goes to him as if he were a customer, and he is told why.
        raw = thunderbird(f"Bartek Agent <{BARTEK}>", "[#1000] [status:closed] invoice", "BILLING: credited.")
        await writes(running, raw, BARTEK)
        assert (await ticket(running))["status"] == "new"
        [message] = await stored(running, "BILLING:")
        assert message["number"] == 1001
        assert "is not a party of that ticket" in str(message["thread_detail"])
        assert "a new ticket with the agent as requester" in str(message["thread_detail"])
        opened = await ticket(running, 1001)
        assert (opened["status"], opened["assignee"]) == ("new", "cecilia")  # round-robin: the next one
        [suppressed] = await rows(running, "SELECT data FROM events WHERE kind = 'ack.suppressed' AND ticket_id = ?",
                                  (opened["id"],))
        assert json.loads(str(suppressed["data"]))["reason"] == "the requester is an agent"
        told = await wait_mail(sink, BARTEK, "Not accepted as yours [#1001]")
        assert_told_how_to_act(told, BARTEK, "bartek", 1001)
        assert "It opened [#1001] with you as its requester" in told.text()
        await wait_mail(sink, CECILIA, "invoice")  # the colleague it went to is told
        await all_sent(running)
        assert [r.header("Subject") for r in sink.to(BARTEK)] == [told.header("Subject")]

        # Once #1000 is billing's (Aino moves it, with proof), Bartek is one of its agents.
        raw, rcpt = reply(notice, "", subject=f"Re: [queue:billing] [assign:none] {notice.header('Subject')}")
        await writes(running, raw, AINO, rcpt=rcpt)
        await wait_mail(sink, AINO, "Done [#1000]")
        raw = thunderbird(f"Bartek Agent <{BARTEK}>", "[#1000] invoice", "BILLING2: credited.", n=2)
        await writes(running, raw, BARTEK)
        [message] = await stored(running, "BILLING2:")
        assert message["number"] == 1000 and "agent bartek of queue billing" in str(message["thread_detail"])
        await wait_mail(sink, BARTEK, "Not accepted as yours [#1000]")


async def test_a_follower_of_another_queue_takes_part(sink: Sink, teamconfig: Callable[..., Config]) -> None:
    async with started(teamconfig()) as running:
        await customer_opens(running, sink)
        await cli_ok(running, "tickets", "follow", "1000", "--as", "bartek")
        raw = thunderbird(f"Bartek Agent <{BARTEK}>", "Re: [#1000] Printer on fire", "FOLLOWER: see invoice 7.")
        await writes(running, raw, BARTEK)
        [message] = await stored(running, "FOLLOWER:")
        assert message["number"] == 1000 and "agent bartek, who follows it" in str(message["thread_detail"])
        await wait_mail(sink, BARTEK, "Not accepted as yours [#1000]")


async def test_agent_fresh_mail_without_a_tag_opens_her_own_ticket_unacknowledged(
    sink: Sink, teamconfig: Callable[..., Config]
) -> None:
    async with started(teamconfig()) as running:
        await customer_opens(running, sink)  # #1000, Aino's: the next ticket goes to Cecilia
        raw = thunderbird(f"Aino Agent <{AINO}>", "VPN drops every hour [priority:urgent]", "FRESH: since Monday.")
        await writes(running, raw, AINO)
        opened = await ticket(running, 1001)
        assert (opened["priority"], opened["status"], opened["assignee"]) == ("normal", "new", "cecilia")
        parties = await rows(running, "SELECT address, role FROM ticket_parties WHERE ticket_id = ?", (opened["id"],))
        assert parties == [{"address": AINO, "role": "requester"}]
        [message] = await stored(running, "FRESH:")
        assert "a new ticket with the agent as requester, not acknowledged" in str(message["thread_detail"])
        told = await wait_mail(sink, AINO, "Not accepted as yours [#1001]")
        assert "It opened [#1001] with you as its requester" in told.text()
        # The colleague the round gave it to hears of it: a ticket nobody is told of is lost.
        assert "FRESH: since Monday." in (await wait_mail(sink, CECILIA, "New request [#1001]")).text()
        await all_sent(running)
        # Told once, never acknowledged as a customer.
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind = 'ack' AND ticket_id = ?", (opened["id"],)) == []
        assert [r.header("Subject") for r in sink.to(AINO) if "Not accepted" in r.header("Subject")] == [
            told.header("Subject")]

        # With proof (her server's DKIM, checked by the trusted MTA) and no command, the same: a
        # ticket of her own, its agents told, no acknowledgement and no notice.
        results = f"Authentication-Results: {TRUSTED}; dkim=pass header.d=agents.test header.s=s1\r\n"
        raw = results.encode() + thunderbird(f"Aino Agent <{AINO}>", "Laptop for the new hire", "PROVEN: by Friday.",
                                             n=2)
        await writes(running, raw, AINO)
        second = await ticket(running, 1002)
        assert second["assignee"] == "aino"
        await wait_mail(sink, AINO, "New request [#1002]")
        await all_sent(running)
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind IN ('ack', 'unproven') AND ticket_id = ?",
                          (second["id"],)) == []
        [suppressed] = await rows(running, "SELECT data FROM events WHERE kind = 'ack.suppressed' AND ticket_id = ?",
                                  (second["id"],))
        assert json.loads(str(suppressed["data"]))["reason"] == "the requester is an agent"


async def test_stranger_naming_the_ticket_still_opens_a_new_one(sink: Sink, teamconfig: Callable[..., Config]) -> None:
    async with started(teamconfig()) as running:
        await customer_opens(running, sink)
        raw = thunderbird(f"Mallory <{STRANGER}>", "[#1000] [status:closed] update", "STRANGER: close it.")
        await writes(running, raw, STRANGER)
        [message] = await stored(running, "STRANGER:")
        assert message["number"] == 1001 and "is not a party of that ticket" in str(message["thread_detail"])
        assert (await ticket(running))["status"] == "new"
        await wait_mail(sink, STRANGER, "update")  # an ordinary acknowledgement: a customer like any


# -- forgery ---------------------------------------------------------------------------------------------


async def test_forged_assignee_from_an_untrusted_peer_acts_on_nothing(
    sink: Sink, teamconfig: Callable[..., Config]
) -> None:
    # No trusted peer: whatever Authentication-Results the mail carries were written by its sender.
    async with started(teamconfig(smtp="", send_delay=600)) as running:
        notice = await customer_opens(running, sink)
        # Aino's real reply waits out its send delay; a forgery must not hold it back.
        raw, rcpt = reply(notice, "REAL: we ordered a new printer.")
        await writes(running, raw, AINO, rcpt=rcpt)
        await wait_mail(sink, AINO, "Done [#1000]")
        before = facts(await ticket(running))
        extra = (f"Reply-To: {STRANGER}\r\nCc: Eve <eve@evil.test>\r\n"
                 f"Authentication-Results: {TRUSTED}; dkim=pass header.d=agents.test header.s=s1; spf=pass"
                 " smtp.mailfrom=agents.test\r\n")
        subject = "[#1000] [status:closed] [forward:mallory@evil.test] [cc:add eve@evil.test]"
        raw = thunderbird(f"Aino Agent <{AINO}>", subject, "#reopen\nFORGED: send the invoice to my new address.",
                          extra=extra)
        await writes(running, raw, STRANGER)
        assert facts(await ticket(running)) == before
        [message] = await stored(running, "FORGED:")
        assert message["number"] == 1000 and message["direction"] == "in"
        parties = await rows(running, "SELECT address, role FROM ticket_parties")
        assert parties == [{"address": CUSTOMER, "role": "requester"}]
        [waiting] = await rows(running, "SELECT state FROM outbox WHERE kind = 'reply'")
        assert waiting["state"] == "queued"  # not held: a forged From holds no one's answer
        notice = await wait_mail(sink, AINO, "Not accepted as yours [#1000]")
        assert "smtp.trusted_peers" in notice.text()
        await all_sent(running)
        assert sink.to(STRANGER) == [] and sink.to("eve@evil.test") == []
        assert await rows(running, "SELECT 1 FROM outbox WHERE kind IN ('forward', 'ack') AND rcpt_to != ?",
                          (CUSTOMER,)) == []
        assert len(sink.to(CUSTOMER)) == 1


async def test_forged_from_with_a_guessed_at_address_does_not_thread_by_tag(
    sink: Sink, teamconfig: Callable[..., Config]
) -> None:
    # Python 3.11.7 reads "aino@agents.test)<mallory@evil.test>" as Aino (CVE-2023-27043): nobody's.
    async with started(teamconfig()) as running:
        await customer_opens(running, sink)
        raw = thunderbird("Aino <x@y.test>", "[#1000] [status:closed] hi", "TRICK: close it.")
        raw = raw.replace(b"From: Aino <x@y.test>", f"From: {AINO})<{STRANGER}>".encode(), 1)
        await writes(running, raw, STRANGER)
        [message] = await stored(running, "TRICK:")
        assert message["number"] == 1001
        assert (await ticket(running))["status"] == "new"
