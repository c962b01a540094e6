"""Business-minute arithmetic for SLA clocks: count and add minutes inside a queue's working hours; pure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailgate.config import WEEKDAYS, BusinessHoursConfig

# A deadline further away than this is a configuration mistake (e.g. no working day at all).
_HORIZON_DAYS = 3 * 366


@dataclass(frozen=True, slots=True)
class Hours:
    """Working windows: on these weekdays (0 = Monday), from start to end local time, except holidays."""

    days: frozenset[int]
    start: time
    end: time | None  # None: midnight at the end of the day ("24:00")
    zone: ZoneInfo
    holidays: frozenset[date] = frozenset()

    @classmethod
    def from_config(cls, config: BusinessHoursConfig) -> Hours:
        end = None if config.end == "24:00" else time.fromisoformat(config.end)
        return cls(
            days=frozenset(WEEKDAYS.index(d) for d in config.days), start=time.fromisoformat(config.start),
            end=end, zone=ZoneInfo(config.timezone), holidays=frozenset(config.holidays),
        )

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working window of one local day, in UTC, or None on a day off."""
        if day.weekday() not in self.days or day in self.holidays:
            return None
        # The local wall time: zoneinfo applies that day's offset, so DST changes need no special case.
        opens = datetime.combine(day, self.start, tzinfo=self.zone).astimezone(UTC)
        if self.end is None:
            closes = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone).astimezone(UTC)
        else:
            closes = datetime.combine(day, self.end, tzinfo=self.zone).astimezone(UTC)
        return opens, closes

    def windows_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows that end after `moment`, in order (clipped to start at `moment`)."""
        day = moment.astimezone(self.zone).date() - timedelta(days=1)  # the previous day may reach past midnight
        for _ in range(_HORIZON_DAYS + 2):
            window = self.window(day)
            day += timedelta(days=1)
            if window is None or window[1] <= moment:
                continue
            yield max(window[0], moment), window[1]


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: SLA clocks need aware times")
    return moment.astimezone(UTC)


def minutes_between(start: datetime, end: datetime, hours: Hours | None) -> float:
    """Minutes of working time from start to end (0 when end is not after start); None = every minute counts."""
    start, end = _aware(start), _aware(end)
    if end <= start:
        return 0.0
    if hours is None:
        return (end - start).total_seconds() / 60
    total = 0.0
    for opens, closes in hours.windows_from(start):
        if opens >= end:
            break
        total += (min(closes, end) - opens).total_seconds() / 60
    return total


def add_minutes(start: datetime, minutes: float, hours: Hours | None) -> datetime:
    """The moment when `minutes` of working time have passed after start (start itself when minutes <= 0).

    With working hours, a deadline reached exactly at closing time stays there rather than
    moving to the next morning: the minutes were all spent that day.
    """
    start = _aware(start)
    if minutes <= 0:
        return start
    if hours is None:
        return start + timedelta(minutes=minutes)
    left = timedelta(minutes=minutes)
    for opens, closes in hours.windows_from(start):
        if closes - opens >= left:
            return opens + left
        left -= closes - opens
    raise ValueError(f"no {minutes:.0f} working minutes within {_HORIZON_DAYS} days: check the business hours")
