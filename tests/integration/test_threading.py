"""Threading scenarios through real SMTP: token, headers, subject tag (parties only), new; duplicates."""

from __future__ import annotations

import pytest

from mailgate import tokens
from mailgate.tokens import Token

from .conftest import SECRET, SUPPORT, mail, send, settle

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]


async def message_rows(running) -> list[dict]:
    async with running.store.read() as tx:
        rows = await tx.all(
            "SELECT m.message_id, m.thread_rule, m.thread_detail, t.number, m.from_address"
            " FROM messages m JOIN tickets t ON t.id = m.ticket_id ORDER BY m.id"
        )
    return [dict(r) for r in rows]


async def deliver(running, raw: bytes, rcpts: list[str] | None = None, sender: str = "alice@customer.test") -> dict:
    await send(running.smtp_port, raw, rcpts, sender)
    await settle(running)
    return (await message_rows(running))[-1]


async def open_ticket(running) -> int:
    first = await deliver(running, mail(message_id="<first@customer.test>"))
    assert first["thread_rule"] == "new"
    return first["number"]


async def test_token_in_recipient_address(daemon) -> None:
    number = await open_ticket(daemon)
    address = tokens.reply_address(SECRET.encode(), SUPPORT, Token("r", number))
    # A different sender, no headers, unrelated subject: the signed address alone threads it.
    row = await deliver(
        daemon,
        mail(sender="colleague@customer.test", to=address, subject="more info", message_id="<t1@customer.test>"),
        [address],
        sender="colleague@customer.test",
    )
    assert (row["number"], row["thread_rule"]) == (number, "token")
    assert "recipient" in row["thread_detail"]


async def test_forged_token_is_ignored(daemon) -> None:
    number = await open_ticket(daemon)
    forged = f"support+r-{number}-aaaaaaaaaaaaaaaa@example.test"
    row = await deliver(daemon, mail(to=forged, subject="hi", message_id="<f1@customer.test>"), [forged])
    assert row["thread_rule"] == "new" and row["number"] != number


async def test_token_in_our_message_id_survives_a_rewritten_subject(daemon) -> None:
    number = await open_ticket(daemon)
    ours = tokens.message_id(SECRET.encode(), "example.test", Token("r", number))
    row = await deliver(
        daemon, mail(subject="totally different", in_reply_to=f"<{ours}>", message_id="<t2@customer.test>")
    )
    assert (row["number"], row["thread_rule"]) == (number, "token")


async def test_body_marker_when_message_ids_were_rewritten(daemon) -> None:
    number = await open_ticket(daemon)
    marker = tokens.body_marker(SECRET.encode(), Token("r", number))
    body = f"Thanks!\n\nOn Mon, someone wrote:\n> Your case is open.\n> {marker}\n"
    row = await deliver(
        daemon,
        mail(subject="Re: your case", body=body, in_reply_to="<REWRITTEN-BY-PROVIDER@mail.test>", message_id="<t3@customer.test>"),
    )
    assert (row["number"], row["thread_rule"]) == (number, "token")
    assert "body marker" in row["thread_detail"]


async def test_in_reply_to_and_references_newest_first(daemon) -> None:
    a = await open_ticket(daemon)
    b = (await deliver(daemon, mail(subject="Second case", message_id="<second@customer.test>")))["number"]
    assert a != b
    # In-Reply-To names an unknown id; References lists a (old) then b (newest): b wins.
    row = await deliver(
        daemon,
        mail(
            subject="whatever",
            in_reply_to="<unknown@elsewhere.test>",
            references="<first@customer.test> <second@customer.test>",
            message_id="<t4@customer.test>",
        ),
    )
    assert (row["number"], row["thread_rule"]) == (b, "header")
    # A stranger answering a known Message-ID is threaded too (their words belong to that thread),
    # but holding a Message-ID proves nothing: they wait for an agent, and receive no reply.
    row = await deliver(
        daemon,
        mail(sender="other@elsewhere.test", subject="x", in_reply_to="<first@customer.test>", message_id="<t5@x.test>"),
        sender="other@elsewhere.test",
    )
    assert (row["number"], row["thread_rule"]) == (a, "header")
    async with daemon.store.read() as tx:
        role = await tx.value("SELECT role FROM ticket_parties WHERE address = 'other@elsewhere.test'")
    assert role == "pending"


async def test_subject_tag_only_for_parties(daemon) -> None:
    number = await open_ticket(daemon)
    row = await deliver(daemon, mail(subject=f"Re: [#{number}] Printer on fire", message_id="<t6@customer.test>"))
    assert (row["number"], row["thread_rule"]) == (number, "subject-tag")
    # A stranger who guesses the number gets a ticket of their own, and the reason is recorded.
    row = await deliver(
        daemon,
        mail(sender="mallory@evil.test", subject=f"[#{number}] let me in", message_id="<m1@evil.test>"),
        sender="mallory@evil.test",
    )
    assert row["thread_rule"] == "new" and row["number"] != number
    assert "not a party" in row["thread_detail"]


async def test_cc_of_the_first_mail_is_a_party(daemon) -> None:
    raw = mail(message_id="<cc1@customer.test>", headers={"Cc": "Bob <bob@customer.test>"})
    number = (await deliver(daemon, raw))["number"]
    row = await deliver(
        daemon,
        mail(sender="bob@customer.test", subject=f"AW: [#{number}] Printer", message_id="<cc2@customer.test>"),
        sender="bob@customer.test",
    )
    assert (row["number"], row["thread_rule"]) == (number, "subject-tag")


async def test_same_message_by_smtp_and_by_another_route_is_stored_once(daemon) -> None:
    raw = mail(message_id="<dup@customer.test>")
    await deliver(daemon, raw)
    # The copy an IMAP server holds has extra trace headers and bare LF line endings.
    copy = b"Delivered-To: support@example.test\nReturn-Path: <alice@customer.test>\n" + raw.replace(b"\r\n", b"\n")
    await send(daemon.smtp_port, copy)
    await settle(daemon)
    rows = await message_rows(daemon)
    assert [r["message_id"] for r in rows] == ["dup@customer.test"]
    async with daemon.store.read() as tx:
        states = [r[0] for r in await tx.all("SELECT state FROM spool ORDER BY id")]
    assert states == ["done", "duplicate"]


async def test_same_message_id_with_other_content_is_kept(daemon) -> None:
    await deliver(daemon, mail(message_id="<same@customer.test>", body="first text\n"))
    await deliver(daemon, mail(message_id="<same@customer.test>", body="another text\n"))
    assert len(await message_rows(daemon)) == 2


async def test_ticket_subject_and_numbers(daemon) -> None:
    await deliver(daemon, mail(subject="Re: Fwd: SV: Odp: AW: Vá: Printer on fire", message_id="<s1@customer.test>"))
    await deliver(daemon, mail(subject="Another", message_id="<s2@customer.test>"))
    async with daemon.store.read() as tx:
        rows = await tx.all("SELECT number, subject FROM tickets ORDER BY id")
    assert [(r["number"], r["subject"]) for r in rows] == [(1000, "Printer on fire"), (1001, "Another")]
