"""Tickets agents open, tasks, watchers and read state, and the agent CLI: real SMTP in, a real sink out."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailgate import config as config_mod
from mailgate import tokens
from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.store import timers as timer_rows

from .conftest import SECRET, SUPPORT, mail, send, settle, wait_until, write_config
from .conftest import run_cli as cli
from .sink import AGENTS, Sink, relay_section
from .test_agent_mail import (
    AINO,
    CECILIA,
    CUSTOMER,
    agent_sends,
    open_ticket,
    reply,
    rows,
    ticket,
    to,
    wait_mail,
)

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

KEY = SECRET.encode()
BARTEK = "bartek@agents.test"
BOB = "bob@customer.test"
# Cecilia in support; Dora in two queues, so a new ticket of hers needs [queue:…].
EXTRA = """
[[agents]]
id = "cecilia"
name = "Cecilia Agent"
addresses = ["cecilia@agents.test"]
queues = ["support"]

[[agents]]
id = "dora"
name = "Dora Agent"
addresses = ["dora@agents.test"]
queues = ["support", "billing"]
"""


@pytest.fixture
def cfg(tmp_path: Path, sink: Sink) -> Callable[..., Config]:
    def make(send_delay: float = 0.3) -> Config:
        extra = relay_section(sink.port, send_delay=send_delay) + AGENTS + EXTRA
        return config_mod.load(write_config(tmp_path, extra, gateway='timezone = "Europe/Helsinki"'))

    return make


def command_address(agent: str) -> str:
    return tokens.reply_address(KEY, SUPPORT, tokens.Token("a", 0, agent))


async def command_mail(running: Running, subject: str, body: str, n: int, agent: str = "aino") -> None:
    rcpt = command_address(agent)
    sender = f"{agent}@agents.test"
    await agent_sends(running, mail(sender=sender, to=rcpt, subject=subject, body=body, message_id=f"<cmd{n}@agents.test>"),
                      rcpt, sender=sender)


def due(days: int = 20) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%d")


async def count(running: Running, sql: str, params: tuple[Any, ...] = ()) -> int:
    [row] = await rows(running, sql, params)
    return int(row[0])


# -- part 7: new tickets ----------------------------------------------------------------------------


async def test_new_ticket_mails_the_customer_and_their_answer_threads_back(sink: Sink, cfg: Callable[..., Config]) -> None:
    async with started(cfg()) as running:
        await command_mail(running, f"[new] [to:{BOB}] Your order 42", "Hello Bob,\n\nyour order shipped.\n", 1)
        done = await wait_mail(sink, AINO, "Your order 42")
        assert "#1000 opened in support, mail to bob@customer.test" in done.text()
        out = await wait_mail(sink, BOB, "Your order 42")
        assert "your order shipped" in out.text() and AINO not in out.raw.decode() and "[new]" not in out.header("Subject")
        t = await ticket(running)
        assert (t["direction"], t["channel"], t["status"], t["queue"], t["assignee"]) == (
            "outbound", "email", "pending", "support", "aino")
        # The customer's answer lands in the ticket (open again), and the opener hears of it.
        answer = mail(sender=BOB, to=out.msg["Reply-To"].addresses[0].addr_spec, subject=f"Re: {out.header('Subject')}",
                      body="Thanks!\n", message_id="<bob1@customer.test>", in_reply_to=out.header("Message-ID"))
        await send(running.smtp_port, answer, [out.msg["Reply-To"].addresses[0].addr_spec], sender=BOB)
        await settle(running)
        await wait_mail(sink, AINO, "Customer replied")
        assert (await ticket(running))["status"] == "open"
        assert await count(running, "SELECT COUNT(*) FROM tickets") == 1
        [watch] = await rows(running, "SELECT * FROM ticket_watchers WHERE ticket_id = 1")
        assert watch["agent"] == "aino" and watch["following"] == 1 and watch["unread"] == 1


@pytest.mark.parametrize(("subject", "body", "agent", "why"), [
    (f"[new] [to:{BOB}]", "Hello", "aino", "needs a subject"),
    (f"[new] [to:{BOB}] Invoice", "Hello", "dora", "needs a queue: add [queue:NAME] (you are in support, billing)"),
    (f"[new] [to:{BOB}] [queue:nope] Invoice", "Hello", "aino", "unknown queue 'nope'"),
    ("[new] Invoice", "Hello", "aino", "needs the customer's address"),
    (f"[new] [to:{CECILIA}] Invoice", "Hello", "aino", "an agent's address"),
    (f"[new] [to:{BOB}] Invoice", "", "aino", "needs the text to send"),
    (f"[new] [to:{BOB}] [priority:ultra] Invoice", "Hello", "aino", "unknown priority"),
    (f"[new] [to:{BOB}] [assign:bartek] Invoice", "Hello", "aino", "bartek is not a member of queue 'support'"),
])
async def test_new_ticket_refused_leaves_nothing(
    sink: Sink, cfg: Callable[..., Config], subject: str, body: str, agent: str, why: str
) -> None:
    async with started(cfg()) as running:
        await command_mail(running, subject, body, 1, agent=agent)
        refused = await wait_mail(sink, f"{agent}@agents.test", "Not done")
        assert why in refused.text()
        for table in ("tickets", "contacts", "messages", "ticket_watchers", "ticket_sla"):
            assert await count(running, f"SELECT COUNT(*) FROM {table}") == 0, table
        assert not sink.to(BOB)


async def test_behalf_records_a_phone_case_without_mailing(sink: Sink, cfg: Callable[..., Config]) -> None:
    async with started(cfg()) as running:
        await command_mail(running, "[behalf:carl@customer.test] [channel:sms] [priority:high] Router broken",
                           "Carl texted: the router blinks red.\n", 1, agent="dora")
        # Not done without a queue for Dora: refused, nothing kept; then with one.
        await wait_mail(sink, "dora@agents.test", "Not done")
        assert await count(running, "SELECT COUNT(*) FROM tickets") == 0
        await command_mail(running, "[behalf:carl@customer.test] [queue:billing] [priority:high] Router broken",
                           "Carl called: the router blinks red.\n", 2, agent="dora")
        done = await wait_mail(sink, "dora@agents.test", "Router broken")
        assert "phone case for carl@customer.test" in done.text()
        t = await ticket(running)
        assert (t["direction"], t["channel"], t["status"], t["priority"], t["queue"]) == (
            "inbound", "phone", "open", "high", "billing")
        [note] = await rows(running, "SELECT direction, reply_text FROM messages")
        assert note["direction"] == "note" and "blinks red" in note["reply_text"]
        await settle(running)
        assert not sink.to("carl@customer.test")


# -- part 9: tasks ----------------------------------------------------------------------------------


async def test_task_notifies_the_queue_threads_answers_and_done_closes_it(sink: Sink, cfg: Callable[..., Config]) -> None:
    async with started(cfg()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "Please refund 20 EUR to Alice.", subject=f"Re: [task:billing due:{due()}] x")
        await agent_sends(running, raw, rcpt)
        asked = await wait_mail(sink, BARTEK, "billing")
        assert "Please refund 20 EUR" in asked.text() and "Aino Agent" in asked.text()
        [task] = await rows(running, "SELECT * FROM tasks")
        assert task["queue"] == "billing" and task["status"] == "open" and task["created_by"] == "aino"
        assert await count(running, "SELECT COUNT(*) FROM timers WHERE kind = 'task.due' AND ref = ?", (task["id"],)) == 1
        # Resolving with the task still open: done, with a warning in the confirmation.
        raw, rcpt = reply(notice, "", subject="Re: [status:resolved] " + notice.header("Subject"))
        await agent_sends(running, raw, rcpt)
        first = await wait_mail(sink, AINO, "Done")
        assert "task 1 for billing" in first.text()
        confirm = await wait_mail(sink, AINO, "Done", count=2)
        assert "warning: 1 open task" in confirm.text()
        # Bartek answers the task and closes it: a note in the task; Aino (who asked, a follower) hears of it.
        answer = reply(asked, "Refunded today.", sender=f"Bartek Agent <{BARTEK}>",
                       subject=f"Re: [done] {asked.header('Subject')}")
        await agent_sends(running, *answer, sender=BARTEK)
        note = await wait_mail(sink, AINO, "Internal note")
        assert "Refunded today." in note.text() and "(done)" in note.text()
        [task] = await rows(running, "SELECT * FROM tasks")
        assert task["status"] == "done" and task["done_by"] == "bartek"
        assert await count(running, "SELECT COUNT(*) FROM timers WHERE kind = 'task.due'") == 0
        [stored] = await rows(running, "SELECT * FROM messages WHERE task_id = ?", (task["id"],))
        assert stored["direction"] == "note" and stored["reply_text"] == "Refunded today."
        await settle(running)
        assert not [r for r in sink.to(CUSTOMER) if "Refunded" in r.text() or "refund" in r.text()]


async def test_task_for_unknown_queue_or_without_text_is_refused_whole(sink: Sink, cfg: Callable[..., Config]) -> None:
    async with started(cfg()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "Do it.", subject=f"Re: [task:nope due:{due()}] [priority:high] x")
        await agent_sends(running, raw, rcpt)
        refused = await wait_mail(sink, AINO, "Not done")
        assert "unknown queue 'nope'" in refused.text()
        raw, rcpt = reply(notice, "", subject="Re: [task:billing due:2020-01-01] x")
        await agent_sends(running, raw, rcpt)
        refused = await wait_mail(sink, AINO, "Not done", count=2)
        assert "in the past" in refused.text()
        raw, rcpt = reply(notice, "", subject=f"Re: [task:billing due:{due()}] x")
        await agent_sends(running, raw, rcpt)
        refused = await wait_mail(sink, AINO, "Not done", count=3)
        assert "a task needs its text" in refused.text()
        assert await count(running, "SELECT COUNT(*) FROM tasks") == 0
        assert (await ticket(running))["priority"] == "normal"
        assert not sink.to(BARTEK)


async def test_overdue_task_reminds_once(sink: Sink, cfg: Callable[..., Config]) -> None:
    clock = ManualClock()
    async with started(cfg(send_delay=0), clock=clock) as running:  # nothing waits on the clock but the task
        assert running.outgoing is not None
        await open_ticket(running, sink)
        result = await cli(running, "tickets", "task", "1000", "billing", "--due", "3d", "--text", "Check the invoice",
                           "--as", "aino", "--json")
        assert result.exit_code == 0, result.output
        # The CLI read the real time, which went on while the daemon's clock stood: catch up a second.
        clock.advance(timedelta(seconds=1))
        running.outgoing.sender.wake()
        await wait_mail(sink, BARTEK, "billing")
        await running.outgoing.timers.reschedule()  # by the clock that has not moved: not due yet
        assert await count(running, "SELECT COUNT(*) FROM timers WHERE kind = 'task.due'") == 1
        assert not to(sink, BARTEK, "Task overdue")
        # Three days and a minute pass: the timer fires, once.
        clock.advance(timedelta(days=3, minutes=1))
        await running.outgoing.timers.reschedule()
        reminder = await wait_mail(sink, BARTEK, "Task overdue")
        assert "Check the invoice" in reminder.text()
        await wait_mail(sink, AINO, "Task overdue")
        # Fault injection: a second due row for the same task, as a database restored from a backup
        # taken before the first firing would hold; the task remembers it reminded, so no second mail.
        async with running.store.txn() as tx:
            await timer_rows.add(tx, "task.due", 1, tx.now())
        await running.outgoing.timers.reschedule()

        async def none_left() -> bool:
            return await count(running, "SELECT COUNT(*) FROM timers WHERE kind = 'task.due'") == 0

        await wait_until(none_left, what="the second row fired")
        await settle(running)
        assert len(to(sink, BARTEK, "Task overdue")) == 1
        [task] = await rows(running, "SELECT reminded_at FROM tasks")
        assert task["reminded_at"]


# -- part 10: watchers and read state ---------------------------------------------------------------


async def test_acting_follows_unfollow_stops_and_customer_mail_makes_unread(sink: Sink, cfg: Callable[..., Config]) -> None:
    async with started(cfg()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "", subject="Re: [take] " + notice.header("Subject"))
        await agent_sends(running, raw, rcpt)
        # Dora (not assignee, but in the queue) adds a note: she follows it now.
        note_rcpt = tokens.reply_address(KEY, SUPPORT, tokens.Token("n", 1000, "dora"))
        await agent_sends(running, mail(sender="dora@agents.test", to=note_rcpt, subject="note", body="I know Alice.",
                                        message_id="<d1@agents.test>"), note_rcpt, sender="dora@agents.test")
        read = await cli(running, "tickets", "read", "1000", "--show", "--as", "aino", "--json")
        state = json.loads(read.output)
        assert state["following"] and not state["unread"]
        assert {w["agent"] for w in state["watchers"] if w["following"]} == {"aino", "dora"}

        async def customer_writes(n: int) -> None:
            raw = mail(sender=CUSTOMER, subject="Re: [#1000] Printer on fire 1", body=f"Still burning {n}.\n",
                       message_id=f"<again{n}@customer.test>", in_reply_to=notice.header("Message-ID"))
            await send(running.smtp_port, raw, [SUPPORT], sender=CUSTOMER)
            await settle(running)

        await customer_writes(1)
        await wait_mail(sink, "dora@agents.test", "Customer replied")  # a follower, though Aino holds it
        await wait_mail(sink, AINO, "Customer replied")
        state = json.loads((await cli(running, "tickets", "read", "1000", "--show", "--as", "aino", "--json")).output)
        assert state["unread"]
        dora = tokens.reply_address(KEY, SUPPORT, tokens.Token("a", 1000, "dora"))
        await agent_sends(running, mail(sender="dora@agents.test", to=dora, subject="[unfollow]", body="",
                                        message_id="<d2@agents.test>"), dora, sender="dora@agents.test")
        await wait_mail(sink, "dora@agents.test", "Done")
        await customer_writes(2)
        await wait_mail(sink, AINO, "Customer replied", count=2)
        await settle(running)
        assert len(to(sink, "dora@agents.test", "Customer replied")) == 1
        # Aino acts: read again.
        raw, rcpt = reply(notice, "", subject="Re: [priority:high] " + notice.header("Subject"))
        await agent_sends(running, raw, rcpt)
        state = json.loads((await cli(running, "tickets", "read", "1000", "--show", "--as", "aino", "--json")).output)
        assert not state["unread"]


# -- part 11: the CLI -------------------------------------------------------------------------------


async def test_cli_operations_share_the_mail_commands_functions(sink: Sink, cfg: Callable[..., Config]) -> None:
    async with started(cfg()) as running:
        await open_ticket(running, sink)
        ok = [
            ("status", "1000", "pending"), ("priority", "1000", "urgent"), ("queue", "1000", "billing"),
            ("assign", "1000", "bartek"), ("tag", "1000", "--", "+vip", "-spam"),
        ]
        for args in ok:
            result = await cli(running, "tickets", args[0], "--as", "dora", "--json", *args[1:])
            assert result.exit_code == 0, result.output
            assert json.loads(result.output)["ok"]
        t = await ticket(running)
        assert (t["status"], t["priority"], t["queue"], t["assignee"]) == ("pending", "urgent", "billing", "bartek")
        assert [r["tag"] for r in await rows(running, "SELECT tag FROM ticket_tags")] == ["vip"]
        note = await cli(running, "tickets", "note", "1000", "Called her back.", "--as", "dora")
        assert note.exit_code == 0, note.output
        await wait_mail(sink, BARTEK, "Notatka wewnętrzna")  # the assignee hears of the note (billing: Polish)
        # Refusals: nothing changes.
        for args, why in [
            (("status", "1000", "sleeping"), "unknown status"),
            (("assign", "1000", "aino"), "aino is not a member of queue 'billing'"),
            (("queue", "1000", "nope"), "unknown queue"),
            (("status", "4242", "open"), "no ticket #4242"),
            (("task", "1000", "nope", "--due", due(), "--text", "x"), "unknown queue"),
            (("new", "--to", "x@customer.test", "--subject", "Hi", "--text", "Hello"), "needs a queue"),
        ]:
            result = await cli(running, "tickets", *args, "--as", "dora", "--json")
            assert result.exit_code == 1, (args, result.output)
            assert why in json.loads(result.output.splitlines()[0])["error"], (args, result.output)
        assert (await ticket(running))["status"] == "pending"
        assert await count(running, "SELECT COUNT(*) FROM tasks") == 0
        # New ticket and a case on someone's behalf from the CLI.
        made = await cli(running, "tickets", "new", "--to", "x@customer.test", "--subject", "Hi there", "--queue", "support",
                         "--text", "Hello X", "--as", "dora", "--json")
        assert made.exit_code == 0, made.output
        assert json.loads(made.output)["ticket"] == 1001
        await wait_mail(sink, "x@customer.test", "Hi there")
        phone = await cli(running, "tickets", "new", "--behalf", "y@customer.test", "--subject", "Call", "--queue",
                          "support", "--channel", "chat", "--text", "-", "--as", "dora")
        assert phone.exit_code == 0, phone.output
        assert dict((await rows(running, "SELECT channel, direction FROM tickets WHERE number = 1002"))[0]) == {
            "channel": "chat", "direction": "inbound"}
        # Tasks, following.
        made = await cli(running, "tickets", "task", "1000", "support", "--due", due(), "--text", "Look at it",
                         "--as", "dora", "--json")
        assert made.exit_code == 0, made.output
        listed = json.loads((await cli(running, "tickets", "tasks", "1000", "--json")).output)["tasks"]
        assert [t["queue"] for t in listed] == ["support"]
        resolved = await cli(running, "tickets", "status", "1000", "resolved", "--as", "dora")
        assert "warning: 1 open task" in resolved.output
        assert (await cli(running, "tickets", "task-done", str(listed[0]["id"]), "--as", "aino")).exit_code == 0
        assert (await cli(running, "tickets", "unfollow", "1000", "--as", "dora")).exit_code == 0
        state = json.loads((await cli(running, "tickets", "read", "1000", "--show", "--as", "dora", "--json")).output)
        assert not state["following"]


async def test_inbox_lists_unread_tickets_first(sink: Sink, cfg: Callable[..., Config]) -> None:
    async with started(cfg()) as running:
        await open_ticket(running, sink, n=1)
        second = await open_ticket(running, sink, n=2)
        # Aino reads #1001 by acting on it (it stays in her inbox): #1000, unread, comes first though older.
        raw, rcpt = reply(second, "", subject="Re: [tag:+seen] " + second.header("Subject"))
        await agent_sends(running, raw, rcpt)
        await command_mail(running, "[list:inbox]", "", 1)
        listing = (await wait_mail(sink, AINO, "Done: inbox")).text()
        assert listing.index("[#1000]") < listing.index("[#1001]")
        state = json.loads((await cli(running, "tickets", "read", "1001", "--unread", "--as", "aino", "--json")).output)
        assert state["unread"]
        await command_mail(running, "[list:inbox]", "", 2)
        listing = (await wait_mail(sink, AINO, "Done: inbox", count=2)).text()
        assert listing.index("[#1001]") < listing.index("[#1000]")  # both unread: the newest activity first
