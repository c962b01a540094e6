"""The report by mail: [report:…] to the command address, and the weekly report on a ManualClock, once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import tokens
from mailgate.clock import ManualClock
from mailgate.daemon import Running, started
from mailgate.store import timers as timer_rows

from .conftest import SECRET, SUPPORT, MakeDaemon, mail, settle, wait_until, write_config
from .sink import Received, Sink, relay_section, to, wait_mail
from .test_agent_mail import agent_sends
from .test_report import AINO, MONDAY, QUEUES, busy_week, customer_writes

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]


def command_address(agent: str = "aino") -> str:
    return tokens.reply_address(SECRET.encode(), SUPPORT, tokens.Token("a", 0, agent))


def assert_self_contained(report: Received) -> None:
    """Readable in any client: a text part and an HTML part, no images, scripts or remote resources."""
    html = report.html()
    assert report.text() and html
    for needle in ("<img", "<script", "src=", "url(", "http://", "https://"):
        assert needle not in html.lower(), needle
    assert not list(report.msg.iter_attachments())


async def test_report_week_by_mail_answers_with_bars(make_daemon: MakeDaemon, sink: Sink) -> None:
    running, clock = await busy_week(make_daemon, sink)
    clock.advance(timedelta(minutes=5))  # Aino asks a little after the last ticket came in
    await agent_sends(running, mail(sender=f"Aino Agent <{AINO}>", to=command_address(),
                                    subject="[report:week by:queue]", body="", message_id="<r1@agents.test>"),
                      command_address())
    report = await wait_mail(sink, AINO, "Report week")
    assert report.header("Subject") == "Report week: 3 opened, 1 resolved, 2 open"
    assert_self_contained(report)
    text = report.text()
    assert "2026-11-02 to 2026-11-08" in text and "median 60m, 90% within 1.5h" in text
    # support opened 2 of the largest 2 (a full bar), billing 1 (half of it).
    assert "█" * 24 + " 2" in text and "\n    opened   " + "█" * 12 + " 1" in text
    assert "width:100%" in report.html() and "width:50%" in report.html()
    assert report.msg["Auto-Submitted"] == "auto-generated"
    done = await wait_mail(sink, AINO, "Done: your commands")
    assert "[report:week by:queue] week (2026-11-02 – 2026-11-08) mailed to you" in done.text()

    # A period that does not exist is refused, with the words that do.
    await agent_sends(running, mail(sender=f"Aino Agent <{AINO}>", to=command_address(), subject="[report:fortnight]",
                                    body="", message_id="<r2@agents.test>"), command_address())
    refused = await wait_mail(sink, AINO, "Not done")
    assert "last-week" in refused.text() and len(to(sink, AINO, "Report")) == 1


WEEKLY = '\n[report]\nweekly = "mon 08:00"\nby = "tag"\n'


async def test_weekly_report_goes_once_per_queue_even_after_a_double_fire_and_a_restart(
    tmp_path: Path, sink: Sink
) -> None:
    config = config_mod.load(write_config(tmp_path, relay_section(sink.port, send_delay=0) + QUEUES + WEEKLY))
    clock = ManualClock(MONDAY)  # Monday 2 Nov 08:00: the first run is booked for the next Monday
    async with started(config, clock=clock) as running:
        assert running.outgoing is not None
        await customer_writes(running, sink, 1)
        clock.set(datetime(2026, 11, 9, 7, 59, tzinfo=UTC))
        await running.outgoing.timers.reschedule()
        await settle(running)
        assert not to(sink, AINO, "Report")
        clock.advance(timedelta(minutes=2))
        await running.outgoing.timers.reschedule()
        support = await wait_mail(sink, AINO, "Report last-week support")
        billing = await wait_mail(sink, AINO, "Report last-week billing")
        assert support.header("Subject") == "Report last-week support: 1 opened, 0 resolved, 1 open"
        assert billing.header("Subject") == "Report last-week billing: 0 opened, 0 resolved, 0 open"
        assert "2026-11-02 to 2026-11-08" in support.text()
        assert_self_contained(support)
        # Fault injection: a second due row, as a database restored from a backup taken before the
        # run would hold; the week is already recorded as sent, so nothing goes twice.
        async with running.store.txn() as tx:
            await timer_rows.add(tx, "report.weekly", 0, tx.now())
        await running.outgoing.timers.reschedule()
        await wait_until(lambda: _booked(running, datetime(2026, 11, 16, 8, 0, tzinfo=UTC)), what="next run booked")
    async with started(config, clock=clock) as running:  # a restart in the same week
        assert running.outgoing is not None
        await running.outgoing.timers.reschedule()
        await settle(running)
        assert await _booked(running, datetime(2026, 11, 16, 8, 0, tzinfo=UTC))
    assert len(to(sink, AINO, "Report")) == 2


async def _booked(running: Running, when: datetime) -> bool:
    """Exactly one weekly run waits, and it is at `when`."""
    async with running.store.read() as tx:
        rows = await tx.all("SELECT due_at FROM timers WHERE kind = 'report.weekly'")
    return [datetime.fromisoformat(r["due_at"]) for r in rows] == [when]
