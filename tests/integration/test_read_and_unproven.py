"""Read state that must not silence an agent, and mail in an agent's name without proof, as people read it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from mailgate.config import Config
from mailgate.daemon import Running, started

from .conftest import SUPPORT, mail, send, settle
from .conftest import run_cli as cli
from .sink import Sink, to, wait_mail
from .test_agent_mail import AINO, CECILIA, CUSTOMER, agentconfig, open_ticket, rows

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]
__all__ = ["agentconfig"]  # the fixture, imported for these tests


async def customer_writes(running: Running, n: int, in_reply_to: str) -> None:
    raw = mail(sender=CUSTOMER, subject="Re: [#1000] Printer on fire 1", body=f"Still burning ({n}).\n",
               message_id=f"<again{n}@customer.test>", in_reply_to=in_reply_to)
    await send(running.smtp_port, raw, [SUPPORT], sender=CUSTOMER)
    await settle(running)


async def test_marking_read_keeps_notifications_coming(sink: Sink, agentconfig: Callable[..., Config]) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)  # unassigned, in support: Aino and Cecilia hear of it
        result = await cli(running, "tickets", "read", "1000", "--as", "aino", "--json")
        assert result.exit_code == 0, result.output
        state = json.loads(result.output)
        assert not state["unread"] and not state["following"]
        [aino] = [w for w in state["watchers"] if w["agent"] == "aino"]
        assert not aino["unfollowed"]  # read, which is no [unfollow]
        await customer_writes(running, 1, notice.header("Message-ID"))
        await wait_mail(sink, AINO, "Customer replied")
        state = json.loads((await cli(running, "tickets", "read", "1000", "--show", "--as", "aino", "--json")).output)
        assert state["unread"]
        # Marked unread and read again, then an explicit [unfollow]: that one still silences her.
        await cli(running, "tickets", "read", "1000", "--unread", "--as", "aino", "--json")
        assert (await cli(running, "tickets", "unfollow", "1000", "--as", "aino", "--json")).exit_code == 0
        await cli(running, "tickets", "read", "1000", "--as", "aino", "--json")
        await customer_writes(running, 2, notice.header("Message-ID"))
        await wait_mail(sink, CECILIA, "Customer replied", count=2)
        assert len(to(sink, AINO, "Customer replied")) == 1
        [row] = await rows(running, "SELECT following FROM ticket_watchers WHERE agent = 'aino'")
        assert row["following"] == 0


FORGED = (
    b"From: Aino Agent <aino@agents.test>\r\n"
    b"To: support@example.test\r\n"
    b"Subject: Re: [#1000] Printer on fire 1 [status:closed]\r\n"
    b"Message-ID: <forged1@evil.test>\r\n"
    b"Date: Mon, 23 Nov 2026 10:30:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Refund approved, send the card number to me.\r\n"
)


async def test_forged_agent_mail_is_marked_unproven_where_people_read_it(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        await open_ticket(running, sink)
        # No Authentication-Results from the trusted hop and no signed address: Aino's From proves nothing.
        await send(running.smtp_port, FORGED, [SUPPORT], sender="mallory@evil.test")
        await settle(running)
        shown = json.loads((await cli(running, "tickets", "show", "1000", "--json")).output)
        assert shown["status"] != "closed"  # nothing in it ran
        forged = [m for m in shown["messages"] if m["message_id"] == "forged1@evil.test"]
        assert [m["unproven_agent"] for m in forged] == ["aino"]
        assert all(m["unproven_agent"] is None for m in shown["messages"] if m["message_id"] != "forged1@evil.test")
        plain = (await cli(running, "tickets", "show", "1000")).output
        assert "from aino@agents.test (unproven: not verified as agent aino)" in plain
        page = (await cli(running, "tickets", "export", "1000")).output
        assert "(unproven: not verified as agent aino)" in page
        # One that opens a ticket is told to the queue's agents (mail from agents' addresses on a
        # ticket tells nobody, against loops): Cecilia hears of it, not as Aino's.
        opening = FORGED.replace(b"Re: [#1000] Printer on fire 1 [status:closed]", b"Card refund").replace(
            b"forged1@", b"forged2@")
        await send(running.smtp_port, opening, [SUPPORT], sender="mallory@evil.test")
        await settle(running)
        notice = await wait_mail(sink, CECILIA, "Card refund")
        assert "From:     Aino Agent <aino@agents.test> (unproven: not verified as agent aino)" in notice.text()
