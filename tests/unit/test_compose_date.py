"""The Date header: format_datetime's text for the mail's own time and offset, whatever was written before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from mailgate.outgoing import compose


def date_of(when: datetime | None) -> str:
    raw = compose.wire(compose.Outgoing(
        from_name="Support", from_address="support@example.test", to_name="Ann", to_address="ann@customer.test",
        reply_to="support+r-1-abcdefghijklmnop@example.test", subject="x", message_id="m1@example.test",
        text="hello", html=None, marker="[ref:r-1-abcdefghijklmnop]", date=when,
    ))
    return next(line for line in raw.decode().split("\r\n") if line.startswith("Date: "))[6:]


def test_the_same_instant_in_two_offsets_keeps_each_offset() -> None:
    utc = datetime(2026, 11, 30, 21, 5, 7, 999_999, tzinfo=UTC)
    helsinki = utc.astimezone(timezone(timedelta(hours=2)))
    assert date_of(utc) == format_datetime(utc) == "Mon, 30 Nov 2026 21:05:07 +0000"
    assert date_of(helsinki) == format_datetime(helsinki) == "Mon, 30 Nov 2026 23:05:07 +0200"
    assert date_of(utc + timedelta(microseconds=1)) == "Mon, 30 Nov 2026 21:05:08 +0000"


def test_without_a_date_the_mail_has_the_current_time() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    written = datetime.strptime(date_of(None), "%a, %d %b %Y %H:%M:%S %z")
    assert before <= written <= datetime.now(UTC)
