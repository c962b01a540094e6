"""`mailgate report`: tickets opened, answered and resolved at known times on a ManualClock give exact figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from mailgate.clock import ManualClock
from mailgate.daemon import Running

from .conftest import MakeDaemon, cli_ok, mail, run_cli, send, settle, wait_until
from .sink import Received, Sink, wait_mail
from .test_agent_mail import agent_sends, reply

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

AINO = "aino@agents.test"
MONDAY = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
QUEUES = """
[[queues]]
name = "support"
addresses = ["support@example.test"]
members = ["aino"]
sla = { normal = { first_response = 60 } }

[[queues]]
name = "billing"
addresses = ["billing@example.test"]
members = ["aino"]

[[agents]]
id = "aino"
name = "Aino Agent"
addresses = ["aino@agents.test"]
"""


async def customer_writes(running: Running, sink: Sink, n: int, to: str = "support@example.test") -> Received:
    """Customer n opens a ticket; returns Aino's notification of it."""
    raw = mail(sender=f"Customer {n} <c{n}@customer.test>", to=to, subject=f"Question {n}",
               message_id=f"<q{n}@customer.test>", body=f"Hello,\n\nquestion number {n}.\n")
    await send(running.smtp_port, raw, [to], sender=f"c{n}@customer.test")
    await settle(running)
    return await wait_mail(sink, AINO, f"Question {n}")


async def aino_answers(running: Running, sink: Sink, notice: Received, text: str, subject: str = "") -> None:
    """Aino answers the notification; a text is sent to the customer at once (send_delay 0)."""
    before = len(sink.received)
    raw, rcpt = reply(notice, text, subject=subject or None)
    await agent_sends(running, raw, rcpt)
    await sink.wait_count(before + (2 if text else 1))  # the reply (if any) and her confirmation
    # The sink has a mail a moment before the relay's 250 reaches the sender, which times the reply
    # by it: the test's clock moves on only once every mail is recorded as sent.
    await wait_until(lambda: _outbox_done(running), what="every mail recorded as sent")


async def _outbox_done(running: Running) -> bool:
    async with running.store.read() as tx:
        return not await tx.value("SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending')")


async def busy_week(make_daemon: MakeDaemon, sink: Sink) -> tuple[Running, ManualClock]:
    """Monday 2 Nov 2026, UTC: #1000 answered after 30 min, resolved after 150; #1001 answered after 90
    (SLA 60: late); #1002 in billing never answered. All in the week of 2-8 Nov."""
    clock = ManualClock(MONDAY)
    running = await make_daemon(QUEUES, clock=clock, send_delay=0)
    first = await customer_writes(running, sink, 1)
    clock.advance(timedelta(minutes=30))
    await aino_answers(running, sink, first, "We are looking at it.", subject=f"Re: [tag:+printer] {first.header('Subject')}")
    clock.advance(timedelta(minutes=120))
    await aino_answers(running, sink, first, "", subject=f"Re: [status:resolved] {first.header('Subject')}")
    clock.advance(timedelta(minutes=30))  # 11:00
    second = await customer_writes(running, sink, 2)
    clock.advance(timedelta(minutes=90))
    await aino_answers(running, sink, second, "That takes a while longer.")
    clock.advance(timedelta(minutes=30))  # 13:00
    await customer_writes(running, sink, 3, to="billing@example.test")
    return running, clock


async def test_a_week_gives_exact_figures_in_json_csv_and_table(make_daemon: MakeDaemon, sink: Sink) -> None:
    running, _clock = await busy_week(make_daemon, sink)
    result = await cli_ok(running, "report", "--from", "2026-11-02", "--to", "2026-11-08", "--json")
    found = result.json
    assert found["period"]["start"] == "2026-11-02T00:00:00+00:00"
    assert found["period"]["end"] == "2026-11-09T00:00:00+00:00"
    assert found["clock"] == "wall"
    total = found["total"]
    assert (total["opened"], total["resolved"]) == (3, 1)
    assert total["first_response"] == {"count": 2, "median_minutes": 60.0, "p90_minutes": 90.0}
    assert total["resolution"] == {"count": 1, "median_minutes": 150.0, "p90_minutes": 150.0}
    assert total["sla"]["first_response"] == {"met": 1, "breached": 1}
    # On Monday 9 Nov 00:00 #1001 (opened 2 Nov 11:00) and #1002 (13:00) are open, 6.5 days old.
    assert total["backlog"] == {"total": 2, "<1d": 0, "1-3d": 0, "3-7d": 2, "7-30d": 0, ">30d": 0}

    by_queue = (await cli_ok(running, "report", "--from", "2026-11-02", "--to", "2026-11-08", "--by", "queue",
                             "--json")).json
    groups = {g["key"]: g for g in by_queue["groups"]}
    assert (groups["support"]["opened"], groups["support"]["resolved"]) == (2, 1)
    assert (groups["billing"]["opened"], groups["billing"]["first_response"]["count"]) == (1, 0)
    by_tag = (await cli_ok(running, "report", "--from", "2026-11-02", "--to", "2026-11-08", "--by", "tag",
                           "--json")).json
    assert {g["key"]: g["opened"] for g in by_tag["groups"]} == {"printer": 1, "(none)": 2}

    # The week before: nothing happened, and nothing was open yet.
    empty = (await cli_ok(running, "report", "--from", "2026-10-26", "--to", "2026-11-01", "--json")).json
    assert empty["total"]["opened"] == 0 and empty["total"]["backlog"]["total"] == 0
    assert empty["total"]["first_response"]["median_minutes"] is None

    rows = list(csv.DictReader(io.StringIO((await cli_ok(
        running, "report", "--from", "2026-11-02", "--to", "2026-11-08", "--by", "queue", "--csv")).stdout)))
    assert list(rows[0])[:4] == ["group", "opened", "resolved", "first_response_count"]
    assert [r["group"] for r in rows] == ["support", "billing", "(total)"]
    assert rows[-1]["first_response_p90_minutes"] == "90.0" and rows[1]["first_response_median_minutes"] == ""

    text = (await cli_ok(running, "report", "--from", "2026-11-02", "--to", "2026-11-08", "--by", "queue")).stdout
    assert "wall-clock time" in text and "support" in text and "60m / 1.5h" in text


async def test_report_refuses_what_it_cannot_answer(make_daemon: MakeDaemon, sink: Sink) -> None:
    running = await make_daemon(QUEUES)
    backwards = await run_cli(running, "report", "--from", "2026-11-08", "--to", "2026-11-02", "--json")
    assert backwards.exit_code == 1 and "before" in backwards.json["error"]
    both = await run_cli(running, "report", "--period", "week", "--from", "2026-11-02")
    assert both.exit_code == 2
    unknown = await run_cli(running, "report", "--queue", "nope", "--json")
    assert unknown.exit_code == 1 and "unknown queue" in unknown.json["error"]
