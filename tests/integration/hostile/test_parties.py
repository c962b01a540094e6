"""Who is a party to a ticket, and who receives an agent's reply, when anyone can write in.

A mail with 1,000 Cc addresses must not freeze the daemon nor make 1,000 recipients of every reply;
a stranger holding a Message-ID of the thread is kept, but receives nothing until an agent confirms.
"""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from mailgate import commands
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.ops import contacts

from ..conftest import SUPPORT, mail, send, settle
from ..sink import Received, Sink, wait_mail
from ..test_agent_mail import agent_sends, reply
from .conftest import AINO, CUSTOMER, still_flowing

pytestmark = pytest.mark.asyncio

STRANGER = "mallory@evil.test"
BOB = "bob@customer.test"
FLOOD = [f"p{i}@flood.test" for i in range(1000)]


async def rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list[dict]:
    async with running.store.read() as tx:
        return [dict(r) for r in await tx.all(sql, params)]


async def parties_of(running: Running, number: int = 1000) -> dict[str, str]:
    found = await rows(running, "SELECT p.address, p.role FROM ticket_parties p JOIN tickets t ON t.id = p.ticket_id"
                                " WHERE t.number = ?", (number,))
    return {r["address"]: r["role"] for r in found}


async def customer_writes(running: Running, sink: Sink, *, cc: list[str] | None = None,
                          subject: str = "Printer on fire") -> tuple[Received, Received]:
    """Alice opens a ticket; returns her acknowledgement and Aino's notification."""
    headers = {"Cc": ", ".join(cc)} if cc else None
    raw = mail(sender=f"Alice Customer <{CUSTOMER}>", subject=subject, message_id="<c1@customer.test>", headers=headers)
    await send(running.smtp_port, raw, [SUPPORT], sender=CUSTOMER)
    await settle(running, timeout=60)
    ack = await wait_mail(sink, CUSTOMER, subject)
    notice = await wait_mail(sink, AINO, subject)
    return ack, notice


async def answer_to(running: Running, ack: Received, sender: str, n: int, cc: str = "") -> None:
    """Someone replies to the acknowledgement: In-Reply-To/References carry its Message-ID, nothing else."""
    headers = {"Cc": cc} if cc else None
    raw = mail(sender=sender, subject=f"Re: {ack.header('Subject')}", message_id=f"<answer{n}@elsewhere.test>",
               in_reply_to=ack.header("Message-ID"), references=ack.header("Message-ID"), headers=headers,
               body=f"Hello, this is message {n}.\n")
    address = re.sub(r".*<|>.*", "", sender)
    await send(running.smtp_port, raw, [SUPPORT], sender=address)
    await settle(running)


async def all_sent(running: Running, sink: Sink) -> None:
    """Every queued mail has reached the relay (waits on the sink, never a fixed sleep)."""
    async with asyncio.timeout(30):
        while (await rows(running, "SELECT COUNT(*) AS n FROM outbox WHERE state IN ('queued', 'sending')"))[0]["n"]:
            assert running.outgoing is not None
            running.outgoing.sender.wake()
            running.outgoing.sender.delivered.clear()
            await running.outgoing.sender.delivered.wait()


def replies(sink: Sink, words: str) -> list[Received]:
    """The copies of an agent's reply that went to customers (not the agent's own confirmation)."""
    return [r for r in sink.received if r.header("Subject").startswith("[#1000] Re:") and words in r.text()]


# -- item 5: one mail with 1,000 Cc addresses ----------------------------------------------------------


def reply_then_bystander(port: int, reply_raw: bytes, reply_rcpt: str, bystander: str) -> None:
    """The agent's reply is accepted (the worker takes it up), and before that session ends a whole other one runs.

    A daemon busy on the reply could not greet the second client; smtplib's timeout turns that into a failure.
    """
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as agent:
        agent.sendmail(AINO, [reply_rcpt], reply_raw)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as other:
            other.sendmail(bystander, [SUPPORT], mail(sender=bystander, subject="Ordinary question",
                                                      message_id="<bystander@customer.test>"))


async def test_thousand_cc_are_capped_and_the_daemon_keeps_answering(
    hostile_config: Callable[..., Config], sink: Sink
) -> None:
    async with started(hostile_config()) as running:
        _, notice = await customer_writes(running, sink, cc=FLOOD)
        # The agent answers; while that reply is handled, a bystander's whole SMTP session and its
        # acknowledgement go through (the daemon used to sit 100 s composing 1,001 copies).
        raw, rcpt = reply(notice, "We are looking into it.")
        await asyncio.to_thread(reply_then_bystander, running.smtp_port, raw, rcpt, "bea@customer.test")
        await wait_mail(sink, "bea@customer.test", "Ordinary question")

        cap = running.config.tickets.max_cc_parties
        parties = await parties_of(running)
        assert parties[CUSTOMER] == "requester"
        assert sum(role == "cc" for role in parties.values()) == cap
        # The agent is told what was left out, and so is the operator (event and its count).
        assert f"{1000 - cap} Cc addresses were not added to this ticket (at most {cap})" in notice.text()
        [event] = await rows(running, "SELECT data FROM events WHERE kind = 'party.cc_capped'")
        assert json.loads(event["data"])["left_out"] == 1000 - cap

        answer = await wait_mail(sink, CUSTOMER, "Re: Printer on fire")
        await all_sent(running, sink)
        copies = replies(sink, "We are looking into it.")
        recipients = {a for r in copies for a in r.rcpt_tos}
        assert CUSTOMER in recipients and len(recipients) == 1 + cap <= running.config.tickets.max_reply_recipients
        assert len(answer.msg["Cc"].addresses) == cap
        assert not any(a.endswith("@flood.test") and a not in parties for a in recipients)
        # One composition for all of them: the copies differ in their Message-ID line only.
        bodies = {re.sub(rb"\r\nMessage-ID: <[^>]+>\r\n", b"\r\n", r.raw) for r in copies}
        assert len(bodies) == 1 and len({r.header("Message-ID") for r in copies}) == len(copies)
        await still_flowing(running, sink)


async def test_reply_recipients_are_capped_and_the_agent_is_told(
    hostile_config: Callable[..., Config], sink: Sink
) -> None:
    config = hostile_config("\n[tickets]\nmax_cc_parties = 50\nmax_reply_recipients = 5\n")
    async with started(config) as running:
        _, notice = await customer_writes(running, sink, cc=FLOOD[:30])
        raw, rcpt = reply(notice, "Answer for a crowd.")
        await agent_sends(running, raw, rcpt)
        done = await wait_mail(sink, AINO, "Done [#1000]")
        assert "not sent to 26 more Cc parties (at most 5 recipients)" in done.text()
        await all_sent(running, sink)
        copies = replies(sink, "Answer for a crowd.")
        assert len({a for r in copies for a in r.rcpt_tos}) == 5
        [event] = await rows(running, "SELECT data FROM events WHERE kind = 'reply.recipients_capped'")
        assert json.loads(event["data"])["left_out"] == 26


async def test_own_agent_and_machine_addresses_in_cc_are_no_parties(hostile: Running, sink: Sink) -> None:
    cc = [SUPPORT, "billing+x@example.test", AINO, "noreply@shop.test", "mailer-daemon@relay.test", BOB]
    await customer_writes(hostile, sink, cc=cc)
    assert await parties_of(hostile) == {CUSTOMER: "requester", BOB: "cc"}


# -- item 6: a Message-ID of the thread is no invitation ------------------------------------------------


async def test_stranger_with_a_message_id_is_kept_but_receives_nothing_until_confirmed(
    hostile: Running, sink: Sink
) -> None:
    ack, _ = await customer_writes(hostile, sink)
    await answer_to(hostile, ack, f"Mallory <{STRANGER}>", 1, cc="mallory2@evil.test")
    # Stored on the ticket, nothing lost; waiting, not a recipient; the agent is told how to include them.
    [stored] = await rows(hostile, "SELECT t.number, m.thread_rule FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                   " WHERE m.from_address = ?", (STRANGER,))
    assert stored["number"] == 1000
    assert await parties_of(hostile) == {CUSTOMER: "requester", STRANGER: "pending"}
    notice = await wait_mail(sink, AINO, "Customer replied [#1000]")
    assert f"A new sender wrote on this ticket: {STRANGER}" in notice.text()
    assert f"[cc:add {STRANGER}]" in notice.text()

    raw, rcpt = reply(notice, "First answer, for Alice only.")
    await agent_sends(hostile, raw, rcpt)
    first = await wait_mail(sink, CUSTOMER, "Re: Printer on fire")
    assert first.msg["Cc"] is None
    await all_sent(hostile, sink)
    assert sink.to(STRANGER) == [] and sink.to("mallory2@evil.test") == []
    assert not await rows(hostile, "SELECT id FROM outbox WHERE rcpt_to LIKE '%evil.test'")

    # The agent confirms them: from then on they receive the replies.
    raw, rcpt = reply(notice, "Second answer, for both.", subject=f"Re: [cc:add {STRANGER}] {notice.header('Subject')}")
    await agent_sends(hostile, raw, rcpt)
    done = await wait_mail(sink, AINO, "Done [#1000]", count=2)
    assert f"{STRANGER} receives replies from now on" in done.text()
    theirs = await wait_mail(sink, STRANGER, "Re: Printer on fire")
    assert "Second answer, for both." in theirs.text()
    assert (await parties_of(hostile))[STRANGER] == "cc"
    assert sink.to("mallory2@evil.test") == []  # whom the stranger put in Cc came along with nobody
    await still_flowing(hostile, sink)


async def test_cc_colleague_and_second_address_of_the_contact_stay_parties(hostile: Running, sink: Sink) -> None:
    ack, _ = await customer_writes(hostile, sink, cc=[f"Bob Customer <{BOB}>"])
    async with hostile.store.txn() as tx:
        contact = await contacts.resolve(tx, CUSTOMER)
        await contacts.add_address(tx, contact, "alice@home.test")
    await answer_to(hostile, ack, f"Bob Customer <{BOB}>", 1)
    await answer_to(hostile, ack, "Alice at home <alice@home.test>", 2, cc="carol@customer.test")
    assert await parties_of(hostile) == {CUSTOMER: "requester", BOB: "cc", "alice@home.test": "cc",
                                         "carol@customer.test": "cc"}
    assert not await rows(hostile, "SELECT id FROM events WHERE kind = 'party.pending'")
    notice = await wait_mail(sink, AINO, "Customer replied [#1000]", count=2)
    assert "new sender" not in notice.text()
    raw, rcpt = reply(notice, "Answer for the whole team.")
    await agent_sends(hostile, raw, rcpt)
    for address in (CUSTOMER, BOB, "alice@home.test", "carol@customer.test"):
        await wait_mail(sink, address, "Re: Printer on fire")


async def test_a_stranger_does_not_hold_the_agents_waiting_reply(
    hostile_config: Callable[..., Config], sink: Sink
) -> None:
    async with started(hostile_config(send_delay=3)) as running:
        ack, notice = await customer_writes(running, sink)
        raw, rcpt = reply(notice, "Your answer, on its way.")
        await agent_sends(running, raw, rcpt)
        await answer_to(running, ack, STRANGER, 1)  # while the reply waits out its delay
        assert not await rows(running, "SELECT id FROM outbox WHERE state = 'held'")
        answer = await wait_mail(sink, CUSTOMER, "Re: Printer on fire")
        assert "Your answer, on its way." in answer.text()
        assert not await rows(running, "SELECT id FROM events WHERE kind = 'reply.held'")


async def test_a_mailing_list_in_cc_keeps_getting_replies(hostile: Running, sink: Sink) -> None:
    """A list copy with the From rewritten to the list (DMARC mitigation) is a party's; a member's own is not."""
    ack, _ = await customer_writes(hostile, sink, cc=["Team <team@lists.test>"])
    await answer_to(hostile, ack, "Alice via Team <team@lists.test>", 1)
    await answer_to(hostile, ack, "Carol Member <carol@member.test>", 2)
    assert await parties_of(hostile) == {CUSTOMER: "requester", "team@lists.test": "cc", "carol@member.test": "pending"}
    notice = await wait_mail(sink, AINO, "Customer replied [#1000]", count=2)
    raw, rcpt = reply(notice, "Answer for the list.")
    await agent_sends(hostile, raw, rcpt)
    await wait_mail(sink, "team@lists.test", "Re: Printer on fire")
    await all_sent(hostile, sink)
    assert sink.to("carol@member.test") == []


async def test_a_party_bringing_the_stranger_in_cc_confirms_them(hostile: Running, sink: Sink) -> None:
    ack, _ = await customer_writes(hostile, sink)
    await answer_to(hostile, ack, STRANGER, 1)
    assert (await parties_of(hostile))[STRANGER] == "pending"
    await answer_to(hostile, ack, CUSTOMER, 2, cc=STRANGER)  # the customer herself asks them in
    assert (await parties_of(hostile))[STRANGER] == "cc"


async def test_pending_stranger_cannot_use_the_subject_tag_and_agent_cannot_cc_our_addresses(
    hostile: Running, sink: Sink
) -> None:
    ack, _ = await customer_writes(hostile, sink)
    await answer_to(hostile, ack, STRANGER, 1)
    raw = mail(sender=STRANGER, subject="[#1000] let me in", message_id="<tagged@evil.test>")
    await send(hostile.smtp_port, raw, [SUPPORT], sender=STRANGER)
    await settle(hostile)
    [row] = await rows(hostile, "SELECT t.number, m.thread_detail FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                " WHERE m.message_id = 'tagged@evil.test'")
    assert row["number"] != 1000 and "not a party" in row["thread_detail"]
    notice = await wait_mail(sink, AINO, "Customer replied [#1000]")
    raw, rcpt = reply(notice, "", subject=f"Re: [cc:add {SUPPORT}] {notice.header('Subject')}")
    await agent_sends(hostile, raw, rcpt)
    refused = await wait_mail(sink, AINO, "Not done [#1000]")
    assert f"{SUPPORT} cannot receive replies" in refused.text()
    assert SUPPORT not in await parties_of(hostile)


# -- the tag, pure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tag", "add", "remove"), [
    ("[cc:add bob@x.test]", ("bob@x.test",), ()),
    ("[cc:bob+tag@x.test, c@y.test]", ("bob+tag@x.test", "c@y.test"), ()),
    ("[cc:remove bob@x.test]", (), ("bob@x.test",)),
    ("[cc:+a@x.test -b@y.test]", ("a@x.test",), ("b@y.test",)),
])
async def test_cc_tag_forms(tag: str, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    parsed = commands.parse(f"Re: {tag} [#1000] hi", "", now=datetime.now(UTC))
    [command] = parsed.commands
    assert (command.name, command.add, command.remove) == ("cc", add, remove)


@pytest.mark.parametrize("tag", ["[cc]", "[cc:add nobody]", "[cc:add " + ", ".join(FLOOD[:11]) + "]"])
async def test_cc_tag_refuses(tag: str) -> None:
    parsed = commands.parse(tag, "", now=datetime.now(UTC))
    assert not parsed.commands and parsed.errors


async def test_a_stranger_neither_reopens_nor_follows_up_a_resolved_ticket(hostile: Running, sink: Sink) -> None:
    """Only the ticket's own people change its life; a Message-ID holder's mail is kept and shown, nothing more."""
    from mailgate.ops import lifecycle

    ack, _ = await customer_writes(hostile, sink)
    async with hostile.store.txn() as tx:
        ticket_id = (await tx.one("SELECT id FROM tickets WHERE number = 1000"))["id"]
        await lifecycle.set_status(tx, hostile.config, ticket_id, "resolved", actor="agent:aino")
    await answer_to(hostile, ack, f"Mallory <{STRANGER}>", 1)
    [ticket] = await rows(hostile, "SELECT status FROM tickets WHERE number = 1000")
    assert ticket["status"] == "resolved"
    assert len(await rows(hostile, "SELECT id FROM tickets")) == 1  # no follow-up ticket either
    assert (await parties_of(hostile))[STRANGER] == "pending"
    await answer_to(hostile, ack, f"Alice Customer <{CUSTOMER}>", 2)  # the customer herself does reopen it
    [ticket] = await rows(hostile, "SELECT status FROM tickets WHERE number = 1000")
    assert ticket["status"] == "open"
