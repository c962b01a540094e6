"""The [report] section: the weekly report mailed to each queue's members, and what it is grouped by."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mailgate.config.base import WEEKDAYS, Ident, StrictModel

DIMENSIONS: tuple[str, ...] = ("tag", "queue", "agent", "channel", "category")
# The periods a report is asked for by name (`mailgate report --period`, [report:…]), in gateway.timezone.
PERIODS: tuple[str, ...] = ("day", "yesterday", "week", "last-week", "month", "last-month")
Dimension = Literal["tag", "queue", "agent", "channel", "category"]


class ReportConfig(StrictModel):
    """When the weekly report goes out (off unless `weekly` is set), for which queues, grouped by what."""

    # "mon 08:00": the day and local time (gateway.timezone) the report of the week before is mailed.
    weekly: str | None = Field(default=None, pattern=r"^(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):[0-5]\d$")
    queues: tuple[Ident, ...] = ()  # the queues whose members get it; empty: every queue
    by: Dimension = "tag"

    def when(self) -> tuple[int, int, int] | None:
        """(weekday with 0 = Monday, hour, minute) of the weekly run, or None when it is off."""
        if self.weekly is None:
            return None
        day, _, clock = self.weekly.partition(" ")
        hour, _, minute = clock.partition(":")
        return WEEKDAYS.index(day), int(hour), int(minute)

    def problems(self, queue_names: list[str]) -> list[tuple[str, str]]:
        """Queues named here that the config does not have (key, message)."""
        return [(f"report.queues.{i}", f"unknown queue {name!r}")
                for i, name in enumerate(self.queues) if name not in queue_names]
