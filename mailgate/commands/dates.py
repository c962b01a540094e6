"""When a snooze ends or a task is due, read from what agents write ("3d", "monday", "2026-12-01 09:00"); pure."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

SNOOZE_HOUR = time(9, 0)
MAX_SNOOZE = timedelta(days=366 * 2)
_UNITS = {"m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hour": 3600,
          "hours": 3600, "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
_RELATIVE = re.compile(r"(\d{1,4})\s*([a-z]+)")
# Weekday names agents write in (en, fi, pl, hu), Monday = 0.
_WEEKDAY_NAMES = (
    ("monday", "mon", "maanantai", "ma", "poniedziałek", "poniedzialek", "pon", "hétfő", "hetfo"),
    ("tuesday", "tue", "tiistai", "ti", "wtorek", "wt", "kedd"),
    ("wednesday", "wed", "keskiviikko", "ke", "środa", "sroda", "śr", "szerda", "sze"),
    ("thursday", "thu", "torstai", "to", "czwartek", "czw", "csütörtök", "csutortok", "cs"),
    ("friday", "fri", "perjantai", "pe", "piątek", "piatek", "pt", "péntek", "pentek", "p"),
    ("saturday", "sat", "lauantai", "la", "sobota", "sob", "szombat", "szo"),
    ("sunday", "sun", "sunnuntai", "su", "niedziela", "niedz", "nd", "vasárnap", "vasarnap", "v"),
)
_WEEKDAYS: dict[str, int] = {name: day for day, names in enumerate(_WEEKDAY_NAMES) for name in names}
_TOMORROW = ("tomorrow", "huomenna", "jutro", "holnap")
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y.%m.%d %H:%M", "%Y.%m.%d",
                 "%d.%m.%Y %H:%M", "%d.%m.%Y")
_DAY_FORMATS = ("%Y-%m-%d", "%Y.%m.%d", "%d.%m.%Y")


def snooze_until(value: str, now: datetime, zone: tzinfo) -> datetime | str:
    """When a snooze ends (aware, UTC), or why the value is not understood."""
    text = " ".join(value.strip().lower().split())
    now = now.astimezone(zone)
    until: datetime | None = None
    relative = _RELATIVE.fullmatch(text)
    if relative and relative.group(2) in _UNITS:
        until = now + timedelta(seconds=int(relative.group(1)) * _UNITS[relative.group(2)])
    elif text in _WEEKDAYS or text in _TOMORROW:
        days = 1 if text in _TOMORROW else (_WEEKDAYS[text] - now.weekday() - 1) % 7 + 1
        until = _local(now.date() + timedelta(days=days), SNOOZE_HOUR, zone)
    else:
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
            except ValueError:
                continue
            at = parsed.time() if "%H" in fmt else SNOOZE_HOUR
            until = _local(parsed.date(), at, zone)
            break
    if until is None:
        return (f"cannot read the date {value!r}; write e.g. 2026-12-01 09:00, 3d, 4h or monday")
    if until <= now:
        return f"{value!r} is in the past"
    if until - now > MAX_SNOOZE:
        return f"{value!r} is more than two years away"
    return until.astimezone(ZoneInfo("UTC"))


def due_at(value: str, now: datetime, zone: tzinfo) -> datetime | str:
    """A task's deadline (aware, UTC): a bare date means the end of that day; else as a snooze reads it."""
    text = value.strip()
    for fmt in _DAY_FORMATS:
        try:
            day = datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        due = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone)
        if due <= now:
            return f"{value!r} is in the past"
        return due.astimezone(ZoneInfo("UTC"))
    return snooze_until(text, now, zone)


def _local(day: date, at: time, zone: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)
