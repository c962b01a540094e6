"""The one source of "now": the daemon builds a clock and hands it down; tests move it instead of rewriting rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in UTC, as every stored timestamp is."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until told to move: SLA deadlines, wake-ups and retention in tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def iso(when: datetime) -> str:
    """The stored form of a time: UTC, ISO 8601 with microseconds (sorts as text)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")
