"""Ticket life through a real daemon: waiting and waking, customer replies that wake, reopen or follow up."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailgate import config as config_mod
from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.ops import lifecycle

from .conftest import cli_ok, mail, send, settle, write_config
from .conftest import run_cli as cli
from .sink import AGENTS, Received, Sink, relay_section

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

CUSTOMER = "alice@customer.test"
LIFE = """
[tickets]
reopen_days = 14
"""


@pytest.fixture
def lifeconfig(tmp_path: Path, sink: Sink) -> Callable[[], Config]:
    return lambda: config_mod.load(write_config(tmp_path, relay_section(sink.port) + AGENTS + LIFE))


async def ticket(running: Running, number: int) -> dict[str, Any]:
    async with running.store.read() as tx:
        row = await tx.one("SELECT * FROM tickets WHERE number = ?", (number,))
        assert row is not None
        return dict(row)


async def events(running: Running, number: int) -> list[tuple[str, dict[str, Any]]]:
    async with running.store.read() as tx:
        rows = await tx.all("SELECT e.kind, e.data FROM events e JOIN tickets t ON t.id = e.ticket_id"
                            " WHERE t.number = ? ORDER BY e.id", (number,))
    return [(r["kind"], json.loads(r["data"])) for r in rows]


async def wake_timers(running: Running) -> int:
    async with running.store.read() as tx:
        return int(await tx.value("SELECT COUNT(*) FROM timers WHERE kind = ?", (lifecycle.WAKE,)))


async def open_ticket(running: Running, sink: Sink, message_id: str, subject: str = "Printer on fire") -> Received:
    """A customer's first mail by SMTP; returns the acknowledgement (its Message-ID threads replies)."""
    before = len(sink.to(CUSTOMER))
    await send(running.smtp_port, mail(message_id=message_id, subject=subject))
    await settle(running)
    await sink.wait_for(lambda r: len(sink.to(CUSTOMER)) > before)
    return sink.to(CUSTOMER)[-1]


async def reply(running: Running, ack: Received, message_id: str, headers: dict[str, str] | None = None) -> None:
    await send(running.smtp_port, mail(message_id=message_id, subject="Re: " + ack.header("Subject"),
                                       in_reply_to=ack.header("Message-ID"), body="Any news?\n", headers=headers))
    await settle(running)


async def change(running: Running, number: int, status: str) -> None:
    """Aino sets the status from the command line."""
    await cli_ok(running, "tickets", "status", str(number), status, "--as", "aino")


async def test_snooze_ends_by_time_and_the_agent_hears_back(sink: Sink, lifeconfig: Callable[[], Config]) -> None:
    clock = ManualClock()
    async with started(lifeconfig(), clock=clock) as running:
        assert running.outgoing is not None
        await open_ticket(running, sink, "<w1@customer.test>")
        await cli_ok(running, "tickets", "assign", "1000", "aino", "--as", "aino")
        await cli_ok(running, "tickets", "snooze", "1000", "3d", "--as", "aino")
        assert (await ticket(running, 1000))["status"] == "waiting"
        async with running.store.read() as tx:  # due three days on, by the clock that has not moved
            due = await tx.value("SELECT due_at FROM timers WHERE kind = ?", (lifecycle.WAKE,))
        assert datetime.fromisoformat(due) > clock.now() + timedelta(days=2)
        clock.advance(timedelta(days=3, minutes=1))
        await running.outgoing.timers.reschedule()
        back = await sink.wait_for(lambda r: any("Back from waiting" in x.header("Subject") for x in r))
        [notice] = [x for x in back if "Back from waiting" in x.header("Subject")]
        assert notice.rcpt_tos == ["aino@agents.test"]
        assert notice.header("Subject") == "Back from waiting [#1000]: Printer on fire"
        assert "is back from waiting" in notice.text()
        row = await ticket(running, 1000)
        assert row["status"] == "open" and row["snoozed_until"] is None
        assert ("ticket.woken", {"reason": "time"}) in await events(running, 1000)
        assert await wake_timers(running) == 0


async def test_customer_reply_wakes_a_waiting_ticket_at_once(sink: Sink, lifeconfig: Callable[[], Config]) -> None:
    async with started(lifeconfig()) as running:
        ack = await open_ticket(running, sink, "<w2@customer.test>")
        result = await cli(running, "tickets", "snooze", "1000", "3d", "--json")
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert answer["ok"] and answer["status"] == "waiting"
        assert (await ticket(running, 1000))["status"] == "waiting" and await wake_timers(running) == 1
        await reply(running, ack, "<w3@customer.test>")
        row = await ticket(running, 1000)
        assert row["status"] == "open" and row["snoozed_until"] is None
        assert await wake_timers(running) == 0  # the wake-up is cancelled with the wait
        assert ("ticket.woken", {"reason": "customer-reply"}) in await events(running, 1000)
        # The agents hear of the reply (the normal notification), not "back from waiting".
        await sink.wait_for(lambda r: any("Customer replied" in x.header("Subject") for x in r))
        assert not any("Back from waiting" in x.header("Subject") for x in sink.received)


async def test_refused_snoozes_change_nothing(sink: Sink, lifeconfig: Callable[[], Config]) -> None:
    async with started(lifeconfig()) as running:
        await open_ticket(running, sink, "<w4@customer.test>")
        before = await events(running, 1000)
        result = await cli(running, "tickets", "snooze", "1000", "2001-01-01", "--json")
        assert result.exit_code == 1 and json.loads(result.stdout)["error"].endswith("is in the past")
        result = await cli(running, "tickets", "snooze", "1000", "someday")
        assert result.exit_code == 1 and "cannot read the date" in result.output
        result = await cli(running, "tickets", "snooze", "4242", "3d")
        assert result.exit_code == 1 and "no ticket #4242" in result.output
        await change(running, 1000, "closed")
        result = await cli(running, "tickets", "snooze", "1000", "1d", "--as", "aino")
        assert result.exit_code == 1 and "only an open ticket can wait" in result.output
        row = await ticket(running, 1000)
        assert row["status"] == "closed" and row["snoozed_until"] is None and await wake_timers(running) == 0
        def changes(found: list[tuple[str, dict[str, Any]]]) -> list[str]:
            return [k for k, _ in found if k != "mail.sent"]  # the ack and notification go meanwhile

        assert changes(await events(running, 1000)) == changes(before) + ["ticket.status"]
        result = await cli(running, "tickets", "wake", "1000", "--json")
        assert json.loads(result.output) == {"ok": True, "ticket": 1000, "woken": False}


async def test_reply_to_resolved_ticket_reopens_it(sink: Sink, lifeconfig: Callable[[], Config]) -> None:
    async with started(lifeconfig()) as running:
        ack = await open_ticket(running, sink, "<r1@customer.test>")
        await change(running, 1000, "resolved")
        assert (await ticket(running, 1000))["resolved_at"]
        await reply(running, ack, "<r2@customer.test>")
        async with running.store.read() as tx:
            assert await tx.value("SELECT COUNT(*) FROM tickets") == 1
        assert (await ticket(running, 1000))["status"] == "open"
        kinds = await events(running, 1000)
        assert ("ticket.status", {"from": "resolved", "to": "open", "reason": "customer-reply"}) in kinds
        assert ("ticket.reopened", {"after": "resolved"}) in kinds


async def test_reply_to_closed_ticket_opens_a_linked_follow_up(sink: Sink, lifeconfig: Callable[[], Config]) -> None:
    async with started(lifeconfig()) as running:
        ack = await open_ticket(running, sink, "<c1@customer.test>")
        await change(running, 1000, "closed")
        await reply(running, ack, "<c2@customer.test>")
        # The customer is told the new number, like for any new ticket.
        await sink.wait_for(lambda r: any("[#1001]" in x.header("Subject") for x in sink.to(CUSTOMER)))
        old, new = await ticket(running, 1000), await ticket(running, 1001)
        assert old["status"] == "closed" and new["status"] == "new"
        assert new["contact_id"] == old["contact_id"] and new["queue"] == "support"
        assert ("ticket.followed_up", {"ticket": 1001}) in await events(running, 1000)
        assert ("ticket.follows_up", {"ticket": 1000}) in await events(running, 1001)
        async with running.store.read() as tx:
            message = await tx.one("SELECT m.thread_rule, m.thread_detail, t.number FROM messages m"
                                   " JOIN tickets t ON t.id = m.ticket_id WHERE m.message_id = 'c2@customer.test'")
        assert message["number"] == 1001 and message["thread_rule"] == "new"
        assert "reply to closed ticket #1000" in message["thread_detail"]
        # A second reply on the old thread joins the follow-up instead of opening a third ticket.
        await reply(running, ack, "<c3@customer.test>")
        async with running.store.read() as tx:
            assert await tx.value("SELECT COUNT(*) FROM tickets") == 2
            assert await tx.value("SELECT t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                  " WHERE m.message_id = 'c3@customer.test'") == 1001
        result = await cli(running, "tickets", "links", "1001", "--json")
        [link] = json.loads(result.output)["links"]
        assert (link["way"], link["number"], link["kind"]) == ("follows", 1000, "follow-up")


async def test_reply_long_after_resolving_opens_a_new_ticket(sink: Sink, lifeconfig: Callable[[], Config]) -> None:
    clock = ManualClock()
    async with started(lifeconfig(), clock=clock) as running:
        ack = await open_ticket(running, sink, "<o1@customer.test>")
        await change(running, 1000, "resolved")
        clock.advance(timedelta(days=15))  # past reopen_days = 14
        await reply(running, ack, "<o2@customer.test>")
        assert (await ticket(running, 1000))["status"] == "resolved"
        assert (await ticket(running, 1001))["status"] == "new"
        assert ("ticket.follows_up", {"ticket": 1000}) in await events(running, 1001)


async def test_automatic_mail_never_reopens_or_follows_up(sink: Sink, lifeconfig: Callable[[], Config]) -> None:
    async with started(lifeconfig()) as running:
        ack = await open_ticket(running, sink, "<a1@customer.test>")
        await change(running, 1000, "closed")
        # An out-of-office answer to the last mail: stored on the closed ticket, nothing else.
        await reply(running, ack, "<a2@customer.test>", headers={"Auto-Submitted": "auto-replied"})
        async with running.store.read() as tx:
            assert await tx.value("SELECT COUNT(*) FROM tickets") == 1
            assert await tx.value("SELECT t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                  " WHERE m.message_id = 'a2@customer.test'") == 1000
        assert (await ticket(running, 1000))["status"] == "closed"
