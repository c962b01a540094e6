"""The report by mail: [report:…] answers the asking agent, and the weekly timer mails each queue's members."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailgate.config import AgentConfig, Config
from mailgate.ops import periods
from mailgate.ops.report import build
from mailgate.outgoing import notices as outbound
from mailgate.outgoing.report_mail import queue_report
from mailgate.store import Store, Txn, timers
from mailgate.store import report as rows
from mailgate.store.retention import run_booked

log = logging.getLogger("mailgate.report")

WEEKLY = "report.weekly"


async def by_mail(tx: Txn, config: Config, agent: AgentConfig, ticket_id: int | None, value: str) -> str:
    """[report:week by:queue]: the report mailed to the agent; what the confirmation says of it."""
    name, _, by = value.partition(" by:")
    period = periods.named(name or "week", tx.now(), config.gateway.timezone)
    report = await build(tx, config, period, by or None)
    await queue_report(outbound.mailer_for(tx, config), tx, config, agent, report)
    return f"{period.label()} mailed to you"


def next_run(now: datetime, when: tuple[int, int, int], timezone: str) -> datetime:
    """The first moment after `now` on that weekday at that local time (gateway.timezone)."""
    weekday, hour, minute = when
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    for _ in range(3):
        # zoneinfo gives each day its own offset: 08:00 stays 08:00 local across a DST change.
        moment = datetime.combine(day, time(hour, minute), tzinfo=zone)
        if moment > local:
            return moment
        day += timedelta(days=7)
    raise AssertionError("unreachable: a week later is always after now")


async def weekly(tx: Txn, config: Config) -> int:
    """Each chosen queue's report of the week before (Monday to Sunday) to its members, once per queue and
    week whatever fires how often; the next run booked. Returns how many mails were queued."""
    when = config.report.when()
    if when is None:
        return 0  # switched off since it was booked: nothing sent, nothing booked
    period = periods.named("last-week", tx.now(), config.gateway.timezone)
    chosen = [q for q in config.queues if not config.report.queues or q.name in config.report.queues]
    mailer = outbound.mailer_for(tx, config)
    sent = 0
    for queue in chosen:
        members = [a for a in config.queue_members(queue) if not a.away]
        if not members or not await rows.claim_weekly(tx, queue.name, period.first.isoformat()):
            continue
        report = await build(tx, config, period, config.report.by, queue.name)
        for agent in members:
            await queue_report(mailer, tx, config, agent, report, kind="report")
            sent += 1
        log.info("report.weekly queue=%s week=%s mails=%s", queue.name, period.first, len(members))
    if not await run_booked(tx, WEEKLY):
        await timers.add(tx, WEEKLY, 0, next_run(tx.now(), when, config.gateway.timezone))
    return sent


async def start(registry: timers.Registry, store: Store, current_config: Callable[[], Config]) -> None:
    """Register the weekly run and, when [report] weekly is set, make sure one timer row waits for it."""

    async def due(tx: Txn, timer: timers.Timer) -> None:
        await timers.cancel(tx, WEEKLY, 0)  # this row and any twin: weekly() books exactly one next run
        await weekly(tx, current_config())

    registry.register(WEEKLY, due)
    config = current_config()
    when = config.report.when()
    if when is None:
        return
    try:
        async with store.txn() as tx:
            if not await run_booked(tx, WEEKLY):
                await timers.add(tx, WEEKLY, 0, next_run(tx.now(), when, config.gateway.timezone))
    except Exception as exc:  # the daemon starts anyway; the next start books it
        log.error("report.schedule_failed error=%s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
