"""SLA: business-minute math, clocks that pause and resume, warnings and escalations once, through a real daemon."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate import config as config_mod
from mailgate.clock import ManualClock
from mailgate.config import BusinessHoursConfig, Config, ConfigError
from mailgate.daemon import Running, started
from mailgate.ops import fields, lifecycle, opening, sla
from mailgate.ops.business_hours import Hours, add_minutes, minutes_between
from mailgate.store import Store, open_store, timers

from .conftest import cli_ok, mail, send, settle, wait_until, write_config
from .sink import Received, Sink, relay_section, wait_mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = pytest.mark.engines


HELSINKI = ZoneInfo("Europe/Helsinki")
WEEKDAYS = Hours.from_config(BusinessHoursConfig(timezone="Europe/Helsinki"))  # mon-fri 08-17

SLA_CONFIG = """
[tickets]
sla_warning_percent = 80

[[queues]]
name = "support"
addresses = ["support@example.test"]
members = ["aino", "pekka"]
sla = { normal = { first_response = 60, resolution = 480 }, urgent = { first_response = 15, resolution = 120 } }

[[queues]]
name = "lab"
members = ["aino"]
sla = { urgent = { first_response = 15 } }

[[queues]]
name = "office"
addresses = ["billing@example.test"]
members = ["pekka"]
language = "fi"
sla = { normal = { first_response = 120 } }
business_hours = { days = ["mon", "tue", "wed", "thu", "fri"], start = "08:00", end = "17:00", timezone = "Europe/Helsinki" }

[[agents]]
id = "aino"
name = "Aino Agent"
addresses = ["aino@agents.test"]

[[agents]]
id = "pekka"
name = "Pekka Agent"
addresses = ["pekka@agents.test"]
"""


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=HELSINKI)  # type: ignore[misc]


# -- business-hours arithmetic (pure) -------------------------------------------------------------


def test_without_business_hours_every_minute_counts() -> None:
    start = datetime(2026, 11, 21, 23, 30, tzinfo=UTC)  # a Saturday night
    assert add_minutes(start, 90, None) == start + timedelta(minutes=90)
    assert minutes_between(start, start + timedelta(hours=2), None) == 120
    assert minutes_between(start, start - timedelta(hours=2), None) == 0


def test_friday_afternoon_deadline_moves_to_monday_morning() -> None:
    # 60 minutes left on Friday, the other 60 on Monday from 08:00.
    assert add_minutes(local(2026, 11, 20, 16, 0), 120, WEEKDAYS) == local(2026, 11, 23, 9, 0)
    assert minutes_between(local(2026, 11, 20, 16, 0), local(2026, 11, 23, 9, 0), WEEKDAYS) == 120


def test_clock_started_at_weekend_or_night_counts_from_the_next_opening() -> None:
    assert add_minutes(local(2026, 11, 21, 12, 0), 30, WEEKDAYS) == local(2026, 11, 23, 8, 30)  # Saturday
    assert add_minutes(local(2026, 11, 24, 22, 0), 30, WEEKDAYS) == local(2026, 11, 25, 8, 30)  # Tuesday night
    assert minutes_between(local(2026, 11, 21, 0, 0), local(2026, 11, 22, 23, 59), WEEKDAYS) == 0


def test_deadline_reached_at_closing_time_stays_there() -> None:
    assert add_minutes(local(2026, 11, 23, 16, 0), 60, WEEKDAYS) == local(2026, 11, 23, 17, 0)


def test_daylight_saving_change_keeps_local_opening_hours() -> None:
    # Helsinki leaves summer time on Sunday 25 October 2026: Friday is UTC+3, Monday UTC+2.
    due = add_minutes(local(2026, 10, 23, 16, 0), 120, WEEKDAYS)
    assert due == local(2026, 10, 26, 9, 0)
    assert due.astimezone(UTC) == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)


def test_holidays_and_full_days() -> None:
    hours = Hours.from_config(BusinessHoursConfig(
        days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), start="00:00", end="24:00", timezone="Europe/Helsinki",
        holidays=(date(2026, 12, 24), date(2026, 12, 25)),
    ))
    assert add_minutes(local(2026, 12, 23, 23, 0), 120, hours) == local(2026, 12, 26, 1, 0)
    assert minutes_between(local(2026, 12, 23, 0, 0), local(2026, 12, 27, 0, 0), hours) == 2 * 24 * 60


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        add_minutes(datetime(2026, 11, 23, 9, 0), 10, WEEKDAYS)


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    minutes=st.integers(min_value=1, max_value=20_000),
)
def test_adding_then_counting_gives_the_same_minutes(start: datetime, minutes: int) -> None:
    due = add_minutes(start, minutes, WEEKDAYS)
    assert abs(minutes_between(start, due, WEEKDAYS) - minutes) < 1e-6
    # Nothing earlier would do: one working minute before the deadline, the target is not reached.
    assert minutes_between(start, due - timedelta(minutes=1), WEEKDAYS) < minutes


def test_business_hours_config_errors_name_the_line(tmp_path: Path) -> None:
    extra = '\n[[queues]]\nname = "x"\nbusiness_hours = { start = "17:00", end = "08:00", timezone = "Mars/Olympus" }\n'
    with pytest.raises(ConfigError) as caught:
        config_mod.load(write_config(tmp_path, extra))
    text = str(caught.value)
    assert "queues.0.business_hours.timezone" in text and "unknown time zone 'Mars/Olympus'" in text
    extra = '\n[[queues]]\nname = "x"\nbusiness_hours = { start = "17:00", end = "08:00" }\n'
    with pytest.raises(ConfigError, match="must be after start"):
        config_mod.load(write_config(tmp_path, extra))
    extra = "\n[tickets]\nreopen_days = -1\n"
    with pytest.raises(ConfigError, match="tickets.reopen_days"):
        config_mod.load(write_config(tmp_path, extra))


# -- the clock in the store, with an injected time ------------------------------------------------


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[Config, Store]]:
    config = config_mod.load(write_config(tmp_path, SLA_CONFIG))
    s = await open_store(config, ManualClock(T0))
    try:
        yield config, s
    finally:
        await s.close()


T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 09:00 in Helsinki


def at(s: Store, when: datetime) -> None:
    """Move the store's clock (a ManualClock in these tests) to `when`."""
    assert isinstance(s.clock, ManualClock)
    s.clock.set(when)


async def new_ticket(s: Store, config: Config, *, queue: str = "support", priority: str = "normal",
                     agent: str = "aino", now: datetime = T0) -> int:
    """A case an agent opens for a customer at `now`, as from the command address: queue chosen,
    the agent holds it, open; then the agent's priority, when not the default."""
    at(s, now)
    who = config.agent(agent)
    assert who is not None
    async with s.txn() as tx:
        opened = await opening.open_ticket(tx, config, who, customer="alice@customer.test", subject="Printer",
                                           text="", queue=queue, send=False)
        if priority != "normal":
            await fields.set_priority(tx, config, opened.ticket_id, priority, who)
        return opened.ticket_id


async def one(s: Store, sql: str, params: tuple[Any, ...] = ()) -> Any:
    async with s.read() as tx:
        return await tx.one(sql, params)


async def timer_rows(s: Store, ticket_id: int) -> dict[str, datetime]:
    async with s.read() as tx:
        rows = await tx.all("SELECT kind, due_at FROM timers WHERE ref = ? AND kind LIKE 'sla.%'", (ticket_id,))
    return {r["kind"]: datetime.fromisoformat(r["due_at"]) for r in rows}


@pytest.mark.asyncio
async def test_deadlines_and_timers_from_the_queue_targets(store: tuple[Config, Store]) -> None:
    config, s = store
    ticket = await new_ticket(s, config)
    row = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
    assert (row["first_response_minutes"], row["resolution_minutes"]) == (60, 480)
    assert datetime.fromisoformat(row["first_response_due"]) == T0 + timedelta(minutes=60)
    assert datetime.fromisoformat(row["resolution_due"]) == T0 + timedelta(minutes=480)
    assert await timer_rows(s, ticket) == {
        "sla.first_response.warning": T0 + timedelta(minutes=48),
        "sla.first_response.breach": T0 + timedelta(minutes=60),
        "sla.resolution.warning": T0 + timedelta(minutes=384),
        "sla.resolution.breach": T0 + timedelta(minutes=480),
    }
    # A queue without targets for the priority: no clock at all.
    other = await new_ticket(s, config, queue="lab")
    assert await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (other,)) is None
    assert await timer_rows(s, other) == {}


@pytest.mark.asyncio
async def test_the_clock_runs_on_the_stores_time(tmp_path: Path) -> None:
    """No time passed in: pauses, resumes, deadlines and the report read the store's clock, which the test moves."""
    config = config_mod.load(write_config(tmp_path, SLA_CONFIG))
    clock = ManualClock(T0)
    async with Store(config.database_path, clock=clock) as s:
        ticket = await new_ticket(s, config)
        clock.advance(timedelta(minutes=30))
        async with s.txn() as tx:
            await sla.status_changed(tx, config, ticket, "open", "pending", actor="test")
        paused = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
        assert paused["running_since"] is None and paused["used_minutes"] == 30
        clock.advance(timedelta(days=2))  # waiting on the customer: none of this counts
        async with s.txn() as tx:
            await sla.status_changed(tx, config, ticket, "pending", "open", actor="test")
        resumed = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
        assert datetime.fromisoformat(resumed["first_response_due"]) == clock.now() + timedelta(minutes=30)
        assert datetime.fromisoformat(resumed["updated_at"]) == clock.now()
        clock.advance(timedelta(minutes=10))
        async with s.read() as tx:
            report = await sla.report(tx, config, ticket)
        assert report is not None and report["used_minutes"] == 40
        assert report["first_response"]["left_minutes"] == 20 and report["resolution"]["left_minutes"] == 440


@pytest.mark.asyncio
async def test_business_hours_deadline_and_pause_while_waiting_on_the_customer(store: tuple[Config, Store]) -> None:
    config, s = store
    friday = local(2026, 11, 20, 16, 0)
    ticket = await new_ticket(s, config, queue="office", agent="pekka", now=friday)
    row = await one(s, "SELECT first_response_due FROM ticket_sla WHERE ticket_id = ?", (ticket,))
    assert datetime.fromisoformat(row["first_response_due"]) == local(2026, 11, 23, 9, 0)
    # 30 working minutes pass, then the ticket waits on the customer over the weekend and Monday.
    async with s.txn() as tx:
        await lifecycle.set_status(tx, config, ticket, "pending", actor="test", now=friday + timedelta(minutes=30))
    paused = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
    assert paused["running_since"] is None and paused["used_minutes"] == 30 and paused["first_response_due"] is None
    assert await timer_rows(s, ticket) == {}
    async with s.txn() as tx:
        await lifecycle.set_status(tx, config, ticket, "open", actor="test", now=local(2026, 11, 24, 10, 0))
    resumed = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
    # 90 working minutes left from Tuesday 10:00.
    assert datetime.fromisoformat(resumed["first_response_due"]) == local(2026, 11, 24, 11, 30)
    assert await timer_rows(s, ticket) == {
        "sla.first_response.warning": local(2026, 11, 24, 11, 6).astimezone(UTC),
        "sla.first_response.breach": local(2026, 11, 24, 11, 30).astimezone(UTC),
    }
    async with s.read() as tx:
        kinds = [r["kind"] for r in await tx.all("SELECT kind FROM events WHERE ticket_id = ? ORDER BY id", (ticket,))]
    assert "sla.paused" in kinds and "sla.resumed" in kinds


@pytest.mark.asyncio
async def test_priority_change_recomputes_and_keeps_the_time_used(store: tuple[Config, Store]) -> None:
    config, s = store
    ticket = await new_ticket(s, config)
    aino = config.agent("aino")
    assert aino is not None
    at(s, T0 + timedelta(minutes=10))
    async with s.txn() as tx:
        await fields.set_priority(tx, config, ticket, "urgent", aino)
    row = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
    assert (row["priority"], row["first_response_minutes"], row["resolution_minutes"]) == ("urgent", 15, 120)
    assert datetime.fromisoformat(row["first_response_due"]) == T0 + timedelta(minutes=15)
    due = await timer_rows(s, ticket)
    assert due["sla.first_response.warning"] == T0 + timedelta(minutes=12)
    # Lowering it to one without targets keeps the row, with no deadlines and no timers.
    at(s, T0 + timedelta(minutes=11))
    async with s.txn() as tx:
        await fields.set_priority(tx, config, ticket, "low", aino)
    row = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
    assert row["first_response_due"] is None and row["resolution_due"] is None
    assert await timer_rows(s, ticket) == {}


@pytest.mark.asyncio
async def test_warning_and_breach_go_once_to_the_right_people(store: tuple[Config, Store]) -> None:
    config, s = store
    ticket = await new_ticket(s, config)

    async def fire(kind: str, minutes: float) -> None:
        async with s.txn() as tx:
            await sla.fire(tx, config, timers.Timer(0, kind, ticket, T0), now=T0 + timedelta(minutes=minutes))

    async def mails() -> list[tuple[str, str]]:
        async with s.read() as tx:
            rows = await tx.all("SELECT rcpt_to, subject FROM outbox WHERE kind = 'sla' ORDER BY id")
        return [(r["rcpt_to"], r["subject"]) for r in rows]

    await fire("sla.first_response.warning", 40)  # early (config changed?): nothing yet, comes back later
    assert await mails() == []
    assert (await timer_rows(s, ticket))["sla.first_response.warning"] == T0 + timedelta(minutes=48)
    await fire("sla.first_response.warning", 48)
    await fire("sla.first_response.warning", 49)  # a second firing changes nothing
    assert await mails() == [("aino@agents.test", "SLA deadline approaching [#1000]: Printer")]
    await fire("sla.first_response.breach", 61)
    await fire("sla.first_response.breach", 62)
    assert (await mails())[1:] == [
        ("aino@agents.test", "SLA deadline missed [#1000]: Printer"),
        ("pekka@agents.test", "SLA deadline missed [#1000]: Printer"),
    ]
    # Resolution: both stages due at once; the warning steps aside for the breach notice.
    await fire("sla.resolution.warning", 500)
    await fire("sla.resolution.breach", 500)
    assert len(await mails()) == 5
    row = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
    assert row["resolution_warned"] and row["resolution_breached"]
    async with s.read() as tx:
        kinds = [r["kind"] for r in await tx.all("SELECT kind FROM events WHERE ticket_id = ? ORDER BY id", (ticket,))]
    assert kinds.count("sla.warning") == 1 and kinds.count("sla.breached") == 2 and "sla.warning_skipped" in kinds
    # Once means once, even when the clock is recomputed later.
    async with s.txn() as tx:
        await sla.recompute(tx, config, ticket, now=T0 + timedelta(minutes=600))
    assert await timer_rows(s, ticket) == {}


@pytest.mark.asyncio
async def test_resolution_met_on_resolve_and_clock_resumes_on_reopen(store: tuple[Config, Store]) -> None:
    config, s = store
    ticket = await new_ticket(s, config)
    async with s.txn() as tx:
        await sla.first_response_sent(tx, ticket, T0 + timedelta(minutes=70))  # late
        await lifecycle.set_status(tx, config, ticket, "resolved", actor="test", now=T0 + timedelta(minutes=100))
    row = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
    assert row["first_response_late"] == 1 and row["resolution_late"] == 0 and row["resolved_at"]
    assert row["used_minutes"] == 100 and await timer_rows(s, ticket) == {}
    async with s.txn() as tx:
        await lifecycle.set_status(tx, config, ticket, "open", actor="test", now=T0 + timedelta(days=1))
    row = await one(s, "SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket,))
    assert row["resolved_at"] is None
    assert datetime.fromisoformat(row["resolution_due"]) == T0 + timedelta(days=1, minutes=380)
    assert set(await timer_rows(s, ticket)) == {"sla.resolution.warning", "sla.resolution.breach"}


# -- end to end: real SMTP in, the daemon's timers, the relay sink out ----------------------------


SPAM_RULE = """
[[rules]]
name = "spam"
header = { name = "X-Spam-Flag", equals = "YES" }
quarantine = true
"""


@pytest.fixture
def slaconfig(tmp_path: Path, sink: Sink) -> Callable[[], Config]:
    # No send delay: an agent's answer goes when the clock says now, with no need to move it for that.
    return lambda: config_mod.load(write_config(tmp_path, relay_section(sink.port, send_delay=0) + SLA_CONFIG + SPAM_RULE))


async def later(running: Running, clock: ManualClock, minutes: float) -> None:
    """`minutes` pass on the daemon's clock; the timers look at their rows again by it."""
    clock.advance(timedelta(minutes=minutes))
    assert running.outgoing is not None
    await running.outgoing.timers.reschedule()


async def still_ahead(running: Running, clock: ManualClock, kind: str, ticket_id: int) -> bool:
    """The timer row is there and due after the clock's now: nothing of that stage can have gone."""
    async with running.store.read() as tx:
        due = await tx.value("SELECT due_at FROM timers WHERE kind = ? AND ref = ?", (kind, ticket_id))
    return due is not None and datetime.fromisoformat(due) > clock.now()


def agent_answer(notice: Received, text: str) -> tuple[bytes, str]:
    """Aino answers the new-request notice from her mail client: to its Reply-To, quoting it."""
    target = notice.msg["Reply-To"].addresses[0].addr_spec
    msg = EmailMessage()
    msg["From"] = "Aino Agent <aino@agents.test>"
    msg["To"] = target
    msg["Subject"] = f"Re: {notice.header('Subject')}"
    msg["Message-ID"] = "<answer1@agents.test>"
    msg["In-Reply-To"] = notice.header("Message-ID")
    msg["References"] = notice.header("Message-ID")
    quoted = "\n".join(f"> {line}" for line in notice.text().splitlines())
    msg.set_content(f"{text}\n\nOn Mon, 23 Nov 2026 at 10:00, Support <support@example.test> wrote:\n\n{quoted}\n")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), target


@pytest.mark.asyncio
async def test_sla_escalation_end_to_end(sink: Sink, slaconfig: Callable[[], Config]) -> None:
    clock = ManualClock()
    async with started(slaconfig(), clock=clock) as running:
        await send(running.smtp_port, mail(message_id="<s1@customer.test>", subject="Down again"))
        await settle(running)
        async with running.store.read() as tx:
            ticket = await tx.one("SELECT id, number FROM tickets")
            assert await tx.value("SELECT COUNT(*) FROM timers WHERE kind LIKE 'sla.%' AND ref = ?", (ticket["id"],)) == 4
        await cli_ok(running, "tickets", "assign", str(ticket["number"]), "aino", "--as", "aino")
        notice = await wait_mail(sink, "aino@agents.test", "New request [#1000]")
        await later(running, clock, 47)  # not yet 80% of the 60-minute first response
        assert await still_ahead(running, clock, "sla.first_response.warning", ticket["id"])
        assert not any("approaching" in x.header("Subject") for x in sink.received)
        await later(running, clock, 3)  # past it
        [warning] = await sink.wait_for(lambda r: any("approaching" in x.header("Subject") for x in r)) and [
            x for x in sink.received if "approaching" in x.header("Subject")]
        assert warning.rcpt_tos == ["aino@agents.test"]
        assert "first response deadline of [#1000] Down again is near" in warning.text()
        assert warning.msg["Auto-Submitted"] == "auto-generated"
        await later(running, clock, 15)
        breach = await sink.wait_for(lambda r: sum("missed" in x.header("Subject") for x in r) >= 2)
        assert sorted(x.rcpt_tos[0] for x in breach if "missed" in x.header("Subject")) == [
            "aino@agents.test", "pekka@agents.test"]
        # Aino's answer by mail reaches the relay: first response met (late), its timers gone.
        raw, rcpt = agent_answer(notice, "We are on it.")
        await send(running.smtp_port, raw, [rcpt], sender="aino@agents.test")
        await settle(running)
        await sink.wait_for(lambda r: any(x.rcpt_tos == ["alice@customer.test"] and "We are on it." in x.text()
                                          for x in r))

        async def answered() -> Any:
            async with running.store.read() as tx:
                row = await tx.one("SELECT * FROM ticket_sla WHERE ticket_id = ?", (ticket["id"],))
            return row if row["first_response_at"] else None

        row = await wait_until(answered, what="the first response recorded")
        assert row["first_response_late"] == 1
        async with running.store.read() as tx:
            kinds = {r["kind"] for r in await tx.all("SELECT kind FROM timers WHERE ref = ?", (ticket["id"],))}
        assert kinds == {"sla.resolution.warning", "sla.resolution.breach"}
        # Mail count: once each, however often the clock is looked at again.
        await later(running, clock, 0)
        await settle(running)
        assert sum("approaching" in x.header("Subject") or "missed" in x.header("Subject") for x in sink.received) == 3

        data = (await cli_ok(running, "tickets", "sla", "1000", "--json")).json["sla"]
        assert data["first_response"]["late"] is True and data["first_response"]["breached_at"]
        assert data["resolution"]["minutes"] == 480 and data["running"] is True


@pytest.mark.asyncio
async def test_quarantined_mail_starts_no_clock(sink: Sink, slaconfig: Callable[[], Config]) -> None:
    """Quarantined mail is kept, not worked on: no SLA clock, no timers, so no one is warned about spam."""
    async with started(slaconfig()) as running:
        await send(running.smtp_port, mail(message_id="<spam1@customer.test>", subject="Cheap toner",
                                           headers={"X-Spam-Flag": "YES"}))
        await send(running.smtp_port, mail(message_id="<ham1@customer.test>", subject="Toner empty"))
        await settle(running)
        async with running.store.read() as tx:
            found = {r["subject"]: (r["quarantined"], r["clocks"], r["timers"]) for r in await tx.all(
                "SELECT t.subject, t.quarantined,"
                " (SELECT COUNT(*) FROM ticket_sla c WHERE c.ticket_id = t.id) AS clocks,"
                " (SELECT COUNT(*) FROM timers m WHERE m.ref = t.id AND m.kind LIKE 'sla.%') AS timers"
                " FROM tickets t")}
    assert found == {"Cheap toner": (1, 0, 0), "Toner empty": (0, 1, 4)}


@pytest.mark.asyncio
async def test_breach_notice_in_the_queue_language(sink: Sink, slaconfig: Callable[[], Config]) -> None:
    clock = ManualClock(local(2026, 11, 23, 9, 0))  # Monday morning: the office is open
    async with started(slaconfig(), clock=clock) as running:
        await send(running.smtp_port, mail(to="billing@example.test", message_id="<f1@customer.test>",
                                           subject="Lasku"), ["billing@example.test"])
        await settle(running)
        await later(running, clock, 119)  # two working hours less a minute: not missed yet
        async with running.store.read() as tx:
            ticket_id = await tx.value("SELECT id FROM tickets")
        assert await still_ahead(running, clock, "sla.first_response.breach", ticket_id)
        assert not any("ylittyi" in x.header("Subject") for x in sink.received)
        await later(running, clock, 2)
        [notice] = await sink.wait_for(lambda r: any("ylittyi" in x.header("Subject") for x in r)) and [
            x for x in sink.received if "ylittyi" in x.header("Subject")]
        assert notice.rcpt_tos == ["pekka@agents.test"]
        assert "ensimmäisen vastauksen määräaika on ylittynyt" in notice.text()
        assert "(Europe/Helsinki)" in notice.text()
