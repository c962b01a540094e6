"""Help-desk statistics for a period: opened, resolved, reply and resolution times, SLA and backlog, by a dimension.

One report is read in one transaction. Durations are counted per ticket in its queue's business hours
when the queue has them ([queues.business_hours], as the SLA clocks count), else in wall-clock minutes;
the report says which. Medians and 90th percentiles are computed here from every duration.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailgate.config import DIMENSIONS, Config
from mailgate.errors import Refused
from mailgate.models import CLOSED_STATUSES, TicketStatus
from mailgate.ops.business_hours import minutes_between
from mailgate.ops.periods import Period
from mailgate.ops.sla import hours_for
from mailgate.store import Txn
from mailgate.store import report as rows
from mailgate.store.report import Facts

NONE = "(none)"
# Open tickets by how long ago they were opened: (label, upper bound in days; None: no bound).
AGES: tuple[tuple[str, float | None], ...] = (("<1d", 1), ("1-3d", 3), ("3-7d", 7), ("7-30d", 30), (">30d", None))
DONE = sorted(CLOSED_STATUSES)
# A duplicate merged into another ticket, and spam, are no new work: not counted as opened.
NOT_OPENED = sorted({TicketStatus.MERGED, TicketStatus.SPAM})
TARGETS = ("first_response", "resolution")

_KEYS: dict[str, Callable[[Facts], Sequence[str]]] = {
    "tag": lambda t: t.tags or (NONE,),
    "queue": lambda t: (t.queue or NONE,),
    "agent": lambda t: (t.assignee or NONE,),
    "channel": lambda t: (t.channel or NONE,),
    "category": lambda t: (t.category or NONE,),
}


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank: the smallest value at least 90% of the values do not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(math.ceil(0.9 * len(ordered)), 1) - 1])


def _times(values: Sequence[float]) -> dict[str, Any]:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {"count": len(values), "median_minutes": rounded(median(values)), "p90_minutes": rounded(p90(values))}


def age_bucket(days: float) -> str:
    for label, bound in AGES:
        if bound is None or days < bound:
            return label
    return AGES[-1][0]


@dataclass
class Figures:
    """The counts and durations of one group (or of the whole report)."""

    opened: int = 0
    resolved: int = 0
    first_response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    sla: dict[str, dict[str, int]] = field(default_factory=lambda: {t: {"met": 0, "breached": 0} for t in TARGETS})
    backlog: dict[str, int] = field(default_factory=lambda: dict.fromkeys((label for label, _ in AGES), 0))

    def to_json(self) -> dict[str, Any]:
        return {
            "opened": self.opened, "resolved": self.resolved,
            "first_response": _times(self.first_response), "resolution": _times(self.resolution),
            "sla": {t: dict(v) for t, v in self.sla.items()},
            "backlog": {"total": sum(self.backlog.values()), **self.backlog},
        }


class _Tally:
    """Figures for the whole report and per group, filled ticket by ticket."""

    def __init__(self, by: str | None, queue: str | None) -> None:
        self.keys = _KEYS[by] if by else None
        self.queue = queue
        self.total = Figures()
        self.groups: dict[str, Figures] = {}

    def each(self, ticket: Facts) -> Iterable[Figures]:
        if self.queue is not None and ticket.queue != self.queue:
            return []
        found = [self.total]
        if self.keys is not None:
            found += [self.groups.setdefault(key, Figures()) for key in self.keys(ticket)]
        return found


def _since(config: Config, ticket: Facts, at: str) -> float:
    """Minutes from the ticket's opening to `at`, in its queue's business hours if it has them."""
    return minutes_between(datetime.fromisoformat(ticket.created_at), datetime.fromisoformat(at),
                           hours_for(config, ticket.queue))


def _within(period: Period, at: str | None) -> bool:
    return at is not None and period.start <= datetime.fromisoformat(at) < period.end


def clock_of(config: Config, queue: str | None) -> str:
    """Which minutes the durations count: business (every queue reported has hours), wall, or mixed."""
    queues = [q for q in config.queues if queue is None or q.name == queue]
    with_hours = [q for q in queues if q.business_hours is not None]
    if not with_hours:
        return "wall"
    return "business" if len(with_hours) == len(queues) else "mixed"


async def build(tx: Txn, config: Config, period: Period, by: str | None = None, queue: str | None = None) -> dict[str, Any]:
    """The report as JSON: the period, totals, one entry per group (when `by` is given), newest data first read."""
    if by is not None and by not in DIMENSIONS:
        raise Refused(f"unknown dimension {by!r} (one of {', '.join(DIMENSIONS)})")
    if queue is not None and config.queue(queue) is None:
        raise Refused(f"unknown queue {queue!r}")
    start, end = period.start.isoformat(timespec="microseconds"), period.end.isoformat(timespec="microseconds")
    tally = _Tally(by, queue)
    for ticket in await rows.opened(tx, start, end, NOT_OPENED):
        for figures in tally.each(ticket):
            figures.opened += 1
    for timed in await rows.resolved(tx, start, end, DONE):
        minutes = _since(config, timed.ticket, timed.at)
        for figures in tally.each(timed.ticket):
            figures.resolved += 1
            figures.resolution.append(minutes)
    for timed in await rows.first_replies(tx, start, end):
        minutes = _since(config, timed.ticket, timed.at)
        for figures in tally.each(timed.ticket):
            figures.first_response.append(minutes)
    for clock in await rows.sla(tx, start, end):
        outcomes = {
            "first_response": _sla_outcome(period, clock.first_response_at, clock.first_response_late,
                                           clock.first_response_breached),
            "resolution": _sla_outcome(period, clock.resolved_at, clock.resolution_late, clock.resolution_breached),
        }
        for figures in tally.each(clock.ticket):
            for target, outcome in outcomes.items():
                if outcome is not None:
                    figures.sla[target][outcome] += 1
    for ticket in await rows.backlog(tx, end, DONE):
        days = (period.end - datetime.fromisoformat(ticket.created_at)).total_seconds() / 86400
        for figures in tally.each(ticket):
            figures.backlog[age_bucket(days)] += 1
    groups = sorted(tally.groups.items(), key=lambda kv: (kv[0] == NONE, -kv[1].opened, kv[0]))
    return {
        "period": period.to_json(), "by": by, "queue": queue, "clock": clock_of(config, queue),
        "total": tally.total.to_json(), "groups": [{"key": key, **f.to_json()} for key, f in groups],
    }


def _sla_outcome(period: Period, met_at: str | None, late: bool | None, breached: str | None) -> str | None:
    """Each target counts once: breached when its breach fell in the period (or it was met late
    without a recorded breach), met when it was met on time in the period."""
    if _within(period, breached):
        return "breached"
    if _within(period, met_at):
        if not late:
            return "met"
        if breached is None:
            return "breached"
    return None
