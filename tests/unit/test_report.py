"""Report and export, the pure parts: periods, percentiles, bars, the tags' values, mboxrd, the printable page."""

from __future__ import annotations

import mailbox
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.commands import values
from mailgate.commands.model import Command, TagError
from mailgate.config import ConfigError
from mailgate.errors import Refused
from mailgate.ops import export, periods
from mailgate.ops.report import age_bucket, median, p90
from mailgate.ops.report_weekly import next_run
from mailgate.outgoing import export_html
from mailgate.outgoing.report_mail import duration, text_bar, view, width
from mailgate.outgoing.templates import Templates
from mailgate.store.export import FileInfo, ThreadMessage
from mailgate.store.ticket_facts import TicketFacts

from ..conftest import AGENTS, write_config

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # a Thursday


def test_named_periods_are_local_days_and_end_now_at_the_latest() -> None:
    week = periods.named("week", NOW, "Europe/Helsinki")
    assert (week.first, week.last) == (date(2026, 11, 23), date(2026, 11, 29))
    assert week.start == datetime(2026, 11, 22, 22, 0, tzinfo=UTC) and week.end == NOW
    last = periods.named("last-week", NOW, "Europe/Helsinki")
    assert (last.first, last.last, last.end) == (date(2026, 11, 16), date(2026, 11, 22), week.start)
    month = periods.named("last-month", NOW, "UTC")
    assert (month.first, month.last) == (date(2026, 10, 1), date(2026, 10, 31))
    assert periods.named("day", NOW, "UTC").start == datetime(2026, 11, 26, tzinfo=UTC)


def test_a_week_across_the_dst_change_starts_at_local_midnight() -> None:
    # Helsinki leaves summer time on Sunday 25 October 2026: that week is 169 hours long.
    week = periods.named("last-week", datetime(2026, 10, 27, 12, 0, tzinfo=UTC), "Europe/Helsinki")
    assert week.start == datetime(2026, 10, 18, 21, 0, tzinfo=UTC)
    assert week.end == datetime(2026, 10, 25, 22, 0, tzinfo=UTC)


def test_dates_include_both_days_and_refuse_nonsense() -> None:
    span = periods.between(date(2026, 11, 2), date(2026, 11, 8), NOW, "UTC")
    assert (span.start, span.end) == (datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC))
    assert periods.between(None, None, NOW, "UTC").first == date(2026, 10, 28)  # the last 30 days
    with pytest.raises(Refused, match="before"):
        periods.between(date(2026, 11, 8), date(2026, 11, 2), NOW, "UTC")
    with pytest.raises(Refused, match="at most"):
        periods.between(date(2000, 1, 1), date(2026, 11, 2), NOW, "UTC")
    with pytest.raises(Refused, match="unknown period"):
        periods.named("fortnight", NOW, "UTC")


def test_median_and_nearest_rank_p90() -> None:
    assert median([]) is None and p90([]) is None
    assert median([30, 90]) == 60 and p90([30, 90]) == 90
    ten = [float(n) for n in range(1, 11)]
    assert median(ten) == 5.5 and p90(ten) == 9
    assert p90([5.0]) == 5 and p90(list(range(1, 101))) == 90


def test_backlog_ages() -> None:
    assert [age_bucket(d) for d in (0, 0.99, 1, 2.9, 3, 6.5, 7, 29.9, 30, 400)] == [
        "<1d", "<1d", "1-3d", "1-3d", "3-7d", "3-7d", "7-30d", "7-30d", ">30d", ">30d"]


def test_bars_are_proportional_and_never_hide_a_small_value() -> None:
    assert width(50, 100) == 50 and width(1, 1000) == 1 and width(0, 10) == 0 and width(3, 0) == 0
    assert text_bar(42, 42, 10) == "█" * 10 + " 42" and text_bar(1, 1000, 10) == "█ 1" and text_bar(0, 5) == "0"
    assert [duration(m) for m in (None, 45, 210, 3 * 1440)] == ["-", "45m", "3.5h", "3.0d"]


def test_report_and_print_tags_read_their_values() -> None:
    read = values.report
    assert read("report", "", "[report]") == Command("report", "week", "[report]")
    assert read("report", "Last-Week by:Queue", "[r]") == Command("report", "last-week by:queue", "[r]")
    assert isinstance(read("report", "fortnight", "[r]"), TagError)
    assert isinstance(read("report", "week by:mood", "[r]"), TagError)
    assert values.printing("print", "notes", "[p]") == Command("print", "notes", "[p]")
    assert isinstance(values.printing("print", "everything", "[print:everything]"), TagError)


def test_weekly_run_is_the_next_such_local_time_after_now() -> None:
    monday_8 = (0, 8, 0)
    assert next_run(datetime(2026, 11, 26, 10, 0, tzinfo=UTC), monday_8, "UTC") == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    exactly = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert next_run(exactly, monday_8, "UTC") == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    # 08:00 Helsinki is 05:00 UTC in summer and 06:00 UTC after the change.
    assert next_run(datetime(2026, 10, 13, tzinfo=UTC), monday_8, "Europe/Helsinki").astimezone(UTC).hour == 5
    assert next_run(datetime(2026, 10, 20, tzinfo=UTC), monday_8, "Europe/Helsinki").astimezone(UTC).hour == 6


def _message(number: int, direction: str = "in", text: str = "Hello", raw: bytes | None = None) -> ThreadMessage:
    return ThreadMessage(
        number=number, direction=direction, message_id=f"m{number}@customer.test",
        in_reply_to=f"m{number - 1}@customer.test" if number > 1 else None, from_name="Zoë <z>",
        from_address="zoe@customer.test", to=("support@example.test",), cc=(), subject="Printer <on> fire",
        date="2026-11-23T10:00:00+00:00", created_at="2026-11-23T10:00:01+00:00", text=text, kind="message",
        files=(FileInfo("scan <1>.pdf", "application/pdf", 86016),), raw=raw,
    )


def test_picking_messages_keeps_notes_out_unless_asked() -> None:
    thread = [_message(1), _message(2, "agent"), _message(3, "out"), _message(4, "note")]
    assert [m.number for m in export.pick(thread, None, False)] == [1, 3]
    assert [m.number for m in export.pick(thread, None, True)] == [1, 2, 3, 4]
    assert [m.number for m in export.pick(thread, [3, 1], False)] == [1, 3]
    with pytest.raises(Refused, match="internal"):
        export.pick(thread, [4], False)
    with pytest.raises(Refused, match="no message 9"):
        export.pick(thread, [9], False)
    assert export.numbers("1, 3 #4") == [1, 3, 4]
    with pytest.raises(Refused):
        export.numbers("1-3")


def test_mbox_escapes_from_lines_and_reads_back_as_separate_messages(tmp_path: Path) -> None:
    raw = (b"From: Zoe <zoe@customer.test>\r\nMessage-ID: <m1@customer.test>\r\nSubject: x\r\n\r\n"
           b"Hi\r\nFrom here on it broke.\r\n>From quoted\r\n")
    data = export.mbox([_message(1, raw=raw), _message(2, "note", "A note")], "Printer")
    assert b"\n>From here on it broke.\n>>From quoted\n" in data
    path = tmp_path / "t.mbox"
    path.write_bytes(data)
    box = mailbox.mbox(path, create=False)
    messages = [box[key] for key in box.keys()]
    assert [m["Message-ID"] for m in messages] == ["<m1@customer.test>", "<m2@customer.test>"]
    assert messages[1]["In-Reply-To"] == "<m1@customer.test>" and messages[1]["X-Mailgate-Internal"] == "note"
    assert messages[1]["Subject"] == "[internal note] Printer <on> fire"


def test_printable_page_escapes_everything_and_marks_notes() -> None:
    facts = TicketFacts(id=1, number=1042, subject="<script>x</script>", status="open", priority="high",
                        assignee=None, queue="support", customer_name="Zoë & co", customer_address="zoe@customer.test",
                        contact_language=None, ack_suppressed=False, quarantined=False, detected_language=None,
                        references=(), last_inbound=None, written_to=())
    page = export_html.page(facts, [_message(1, text="<img src=x onerror=alert(1)>"), _message(2, "note", "secret")],
                            tag="#", gateway="Support", zone="Europe/Helsinki", printed=NOW)
    assert "<script>x" not in page and "<img" not in page and "&lt;img src=x" in page
    assert "Zoë &amp; co" in page and "scan &lt;1&gt;.pdf (application/pdf, 84 KB)" in page
    assert page.count('class="message internal"') == 1 and "Internal note" in page
    assert "2026-11-23 12:00 EET" in page


def test_report_mail_renders_text_bars_and_escaped_html() -> None:
    figures = {"opened": 4, "resolved": 2, "first_response": {"count": 1, "median_minutes": 30.0, "p90_minutes": 30.0},
               "resolution": {"count": 0, "median_minutes": None, "p90_minutes": None},
               "sla": {"first_response": {"met": 1, "breached": 0}, "resolution": {"met": 0, "breached": 0}},
               "backlog": {"total": 2, "<1d": 2, "1-3d": 0, "3-7d": 0, "7-30d": 0, ">30d": 0}}
    report = {"period": {"name": "week", "from": "2026-11-23", "to": "2026-11-29", "timezone": "UTC"},
              "by": "tag", "queue": None, "clock": "wall", "total": figures,
              "groups": [{"key": "<b>vip</b>", **figures}]}
    data = {"gateway": {"name": "Support"}, "agent": {"name": "Aino", "id": "aino"}, "report": view(report)}
    rendered = Templates().render("report", "en", data)
    assert rendered.subject == "Report week: 4 opened, 2 resolved, 2 open"
    assert "█" * 24 + " 4" in rendered.text and "█" * 12 + " 2" in rendered.text
    assert rendered.html is not None and "&lt;b&gt;vip&lt;/b&gt;" in rendered.html and "<b>vip" not in rendered.html
    assert "width:100%" in rendered.html and "width:50%" in rendered.html


def test_an_mbox_envelope_line_left_on_stored_mail_is_not_copied_as_a_header() -> None:
    raw = b"From MAILER-DAEMON Mon Nov 23 10:00:00 2026\nFrom: zoe@customer.test\nMessage-ID: <m1@customer.test>\n\nHi\n"
    assert export.wire(_message(1, raw=raw), "x").startswith(b"From: zoe@customer.test\n")


def test_report_section_is_checked_with_its_keys(tmp_path: Path) -> None:
    good = config_mod.load(write_config(tmp_path, AGENTS + '\n[report]\nweekly = "fri 16:30"\nqueues = ["billing"]\n'))
    assert good.report.when() == (4, 16, 30) and good.report.by == "tag"
    assert config_mod.load(write_config(tmp_path, AGENTS)).report.when() is None
    for section, key in (('weekly = "monday 8am"', "report.weekly"), ('queues = ["nope"]', "report.queues.0"),
                         ('by = "mood"', "report.by")):
        with pytest.raises(ConfigError) as caught:
            config_mod.load(write_config(tmp_path, AGENTS + f"\n[report]\n{section}\n"))
        assert [i.key for i in caught.value.issues] == [key]
