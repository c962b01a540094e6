"""The span of time a report covers: a named period or two dates, as local days in gateway.timezone; pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailgate.config import PERIODS
from mailgate.errors import Refused

MAX_DAYS = 3 * 366  # a longer span is a typo in a year, and would read every row of the store


@dataclass(frozen=True, slots=True)
class Period:
    """From local midnight of `first` to `end` (the next midnight after `last`, or now if that is earlier)."""

    name: str  # "week", "last-week" … or "dates"
    first: date
    last: date
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    zone: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "from": self.first.isoformat(), "to": self.last.isoformat(),
                "start": self.start.isoformat(), "end": self.end.isoformat(), "timezone": self.zone}

    def label(self) -> str:
        span = self.first.isoformat() if self.first == self.last else f"{self.first} – {self.last}"
        return span if self.name == "dates" else f"{self.name} ({span})"


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # zoneinfo applies that day's UTC offset, so a week across a DST change still starts at local 00:00.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _span(name: str, first: date, last: date, now: datetime, zone: ZoneInfo) -> Period:
    end = min(_midnight(last + timedelta(days=1), zone), now.astimezone(UTC))
    return Period(name, first, last, _midnight(first, zone), end, str(zone.key))


def named(name: str, now: datetime, timezone: str) -> Period:
    """day, yesterday, week (Monday to today), last-week (Monday to Sunday before), month, last-month."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    first_of_month = today.replace(day=1)
    spans = {
        "day": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "week": (monday, monday + timedelta(days=6)),
        "last-week": (monday - timedelta(days=7), monday - timedelta(days=1)),
        "month": (first_of_month, (first_of_month + timedelta(days=32)).replace(day=1) - timedelta(days=1)),
        "last-month": ((first_of_month - timedelta(days=1)).replace(day=1), first_of_month - timedelta(days=1)),
    }
    if name not in spans:
        raise Refused(f"unknown period {name!r} (one of {', '.join(PERIODS)})")
    first, last = spans[name]
    return _span(name, first, last, now, zone)


def between(first: date | None, last: date | None, now: datetime, timezone: str) -> Period:
    """From the first to the last day, both included; a missing first is 30 days before, a missing last today."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    last = last or today
    first = first or last - timedelta(days=29)
    if last < first:
        raise Refused(f"--to {last} is before --from {first}")
    if (last - first).days >= MAX_DAYS:
        raise Refused(f"at most {MAX_DAYS} days at once")
    return _span("dates", first, last, now, zone)
