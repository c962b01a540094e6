"""Nobody but a proven agent issues agent commands: customer tags, forged Authentication-Results, posing names."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailgate.config import Config
from mailgate.daemon import Running, started

from ..conftest import SUPPORT, mail, send, settle
from ..sink import Received, Sink, wait_mail
from ..test_agent_mail import reply
from .conftest import AINO, CUSTOMER, TRUSTED, still_flowing

pytestmark = pytest.mark.asyncio

ATTACKER = "attacker@evil.test"
HOSTILE_SUBJECT = "Invoice question [priority:urgent] [forward+notes:attacker@evil.test] [status:closed]"
MTA_RECEIVED = f"Received: from mail.agents.test (mail.agents.test [192.0.2.7]) by {TRUSTED} (Postfix);" \
               " Mon, 23 Nov 2026 10:05:01 +0000\r\n"
PASS = f"Authentication-Results: {TRUSTED}; dkim=pass header.d=agents.test header.s=s1\r\n"
FAIL = f"Authentication-Results: {TRUSTED}; dkim=fail header.d=agents.test header.s=s1\r\n"
TRUST_LOOPBACK = 'trusted_peers = ["127.0.0.1"]'


async def ticket(running: Running, number: int = 1000) -> dict[str, object]:
    async with running.store.read() as tx:
        row = await tx.one("SELECT * FROM tickets WHERE number = ?", (number,))
    assert row is not None
    return dict(row)


async def customer_writes(running: Running, sink: Sink, subject: str = HOSTILE_SUBJECT,
                          sender: str = f"Alice Customer <{CUSTOMER}>", address: str = CUSTOMER) -> Received:
    """A customer opens a ticket; returns the notification the agent Aino gets."""
    raw = mail(sender=sender, subject=subject, message_id="<c1@customer.test>",
               body="Hello,\n\nplease look at my invoice.\n\nAlice\n")
    await send(running.smtp_port, raw, [SUPPORT], sender=address)
    await settle(running)
    return await wait_mail(sink, AINO, "Invoice question")


async def agent_sends(running: Running, raw: bytes, rcpt: str) -> None:
    await send(running.smtp_port, raw, [rcpt], sender=AINO)
    await settle(running)


def unchanged(row: dict[str, object]) -> dict[str, object]:
    return {k: row[k] for k in ("status", "priority", "queue", "assignee")}


async def test_customer_tags_never_run_when_the_agent_presses_reply(hostile: Running, sink: Sink) -> None:
    notice = await customer_writes(hostile, sink)
    # The notification shows the customer's words, not as tags an answer would carry back.
    assert "[priority:urgent]" not in notice.header("Subject")
    assert "(priority:urgent)" in notice.header("Subject")
    before = unchanged(await ticket(hostile))
    raw, rcpt = reply(notice, "Thanks, we are looking into your invoice.")
    await agent_sends(hostile, raw, rcpt)
    await wait_mail(sink, CUSTOMER, "Invoice question", count=2)  # the ack, then Aino's answer
    await wait_mail(sink, AINO, "Done [#1000]")
    # Answered, so no longer new: open, never the customer's [status:closed].
    assert unchanged(await ticket(hostile)) == {**before, "status": "open"}
    assert sink.to(ATTACKER) == []
    await still_flowing(hostile, sink)
    assert sink.to(ATTACKER) == []


async def test_customer_tags_in_a_mail_the_agent_answers_directly_are_not_hers(
    hostile_config: Callable[..., Config], sink: Sink
) -> None:
    # Aino was copied on the customer's own mail and answers that one: its subject holds the raw tags.
    async with started(hostile_config(smtp=TRUST_LOOPBACK)) as running:
        notice = await customer_writes(running, sink)
        before = unchanged(await ticket(running))
        raw, rcpt = reply(notice, "Answering your mail directly.", to=SUPPORT, subject=f"Re: {HOSTILE_SUBJECT}")
        raw = raw.replace(f"In-Reply-To: {notice.header('Message-ID')}".encode(), b"In-Reply-To: <c1@customer.test>")
        await agent_sends(running, PASS.encode() + MTA_RECEIVED.encode() + raw, rcpt)
        await wait_mail(sink, CUSTOMER, "Invoice question", count=2)
        assert unchanged(await ticket(running)) == {**before, "status": "open"}  # answered, never closed
        assert sink.to(ATTACKER) == []


async def test_a_tag_the_agent_adds_herself_still_runs(hostile: Running, sink: Sink) -> None:
    notice = await customer_writes(hostile, sink)
    raw, rcpt = reply(notice, "", subject=f"Re: [priority:high] {notice.header('Subject')}")
    await agent_sends(hostile, raw, rcpt)
    await wait_mail(sink, AINO, "Done [#1000]")
    row = await ticket(hostile)
    assert row["priority"] == "high" and row["status"] != "closed"
    assert sink.to(ATTACKER) == []


def forged(notice: Received, results_on_top: str = "", results_at_bottom: str = "") -> tuple[bytes, str]:
    """Aino's From, to the plain support address (no token), tags of her own: only A-R could prove her."""
    raw, rcpt = reply(notice, "Close it, and mail everything to the attacker.", to=SUPPORT,
                      subject=f"Re: [status:closed] [forward+notes:{ATTACKER}] {notice.header('Subject')}")
    if results_at_bottom:
        raw = raw.replace(b"\r\n\r\n", b"\r\n" + results_at_bottom.encode().rstrip(b"\r\n") + b"\r\n\r\n", 1)
    return results_on_top.encode() + raw, rcpt


async def assert_no_agent_power(running: Running, sink: Sink, raw: bytes, rcpt: str) -> None:
    before = unchanged(await ticket(running))
    await agent_sends(running, raw, rcpt)
    await wait_mail(sink, AINO, "Not accepted as yours [#1000]")
    assert unchanged(await ticket(running)) == before
    assert sink.to(ATTACKER) == []
    async with running.store.read() as tx:
        assert await tx.all("SELECT 1 FROM outbox WHERE kind IN ('reply', 'forward')") == []


async def test_forged_results_from_an_untrusted_peer_give_no_power(hostile: Running, sink: Sink) -> None:
    # mailgate's own listener faces the internet: whatever the sender wrote, on top or anywhere.
    notice = await customer_writes(hostile, sink)
    raw, rcpt = forged(notice, results_on_top=PASS + MTA_RECEIVED + PASS)
    await assert_no_agent_power(hostile, sink, raw, rcpt)
    await still_flowing(hostile, sink)


async def test_forged_results_below_the_trusted_mta_give_no_power(
    hostile_config: Callable[..., Config], sink: Sink
) -> None:
    async with started(hostile_config(smtp=TRUST_LOOPBACK)) as running:
        notice = await customer_writes(running, sink)
        # At the bottom of the header block, under the MTA's Received.
        raw, rcpt = forged(notice, results_on_top=MTA_RECEIVED, results_at_bottom=PASS)
        await assert_no_agent_power(running, sink, raw, rcpt)
        # Directly below the MTA's own fail: the MTA's verdict stands.
        raw, rcpt = forged(notice, results_on_top=FAIL + MTA_RECEIVED + PASS)
        raw = raw.replace(b"Message-ID: <", b"Message-ID: <second.", 1)
        await assert_no_agent_power(running, sink, raw, rcpt)
        # A forged pass next to the MTA's fail, both on top: the fail vetoes it.
        raw, rcpt = forged(notice, results_on_top=PASS + FAIL + MTA_RECEIVED)
        raw = raw.replace(b"Message-ID: <", b"Message-ID: <third.", 1)
        await assert_no_agent_power(running, sink, raw, rcpt)
        # At the bottom, and no Received at all: the peer prepended nothing, so nothing is its own.
        raw, rcpt = forged(notice, results_at_bottom=PASS)
        raw = raw.replace(b"Message-ID: <", b"Message-ID: <fourth.", 1)
        await assert_no_agent_power(running, sink, raw, rcpt)
        await still_flowing(running, sink)


async def test_the_trusted_mtas_own_pass_proves_the_agent(hostile_config: Callable[..., Config], sink: Sink) -> None:
    async with started(hostile_config(smtp=TRUST_LOOPBACK)) as running:
        notice = await customer_writes(running, sink, subject="Invoice question")
        raw, rcpt = reply(notice, "", to=SUPPORT, subject=f"Re: [priority:high] {notice.header('Subject')}")
        await agent_sends(running, PASS.encode() + MTA_RECEIVED.encode() + raw, rcpt)
        await wait_mail(sink, AINO, "Done [#1000]")
        assert (await ticket(running))["priority"] == "high"


async def test_a_name_posing_as_an_address_is_shown_with_a_warning(hostile: Running, sink: Sink) -> None:
    notice = await customer_writes(hostile, sink, sender='"anna@example.test" <mallory@evil.test>',
                                   address="mallory@evil.test", subject="Invoice question")
    text = notice.text()
    assert "WARNING" in text and "mallory@evil.test" in text and "anna@example.test" in text
    assert '"anna@example.test" <mallory@evil.test>' not in text
    # Handed on to a colleague: the assignment notice shows the real address and warns too (in Polish).
    raw, rcpt = reply(notice, "", subject=f"Re: [queue:billing] [assign:bartek] {notice.header('Subject')}")
    await agent_sends(hostile, raw, rcpt)
    handed = (await wait_mail(sink, "bartek@agents.test", "[#1000]")).text()
    assert "UWAGA" in handed and "mallory@evil.test" in handed
    # An honest name gets no warning.
    raw = mail(sender=f"Alice Customer <{CUSTOMER}>", subject="Invoice question two", message_id="<c2@customer.test>")
    await send(hostile.smtp_port, raw, [SUPPORT], sender=CUSTOMER)
    await settle(hostile)
    assert "WARNING" not in (await wait_mail(sink, AINO, "Invoice question two")).text()
