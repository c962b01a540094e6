"""`mailgate report`: help-desk statistics for a period, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import click

from mailgate.cli.support import emit_json, run_txn
from mailgate.config import DIMENSIONS, PERIODS, Config
from mailgate.ops import periods
from mailgate.ops import report as ops
from mailgate.outgoing.report_mail import duration
from mailgate.store import Txn

COLUMNS = (
    "group", "opened", "resolved", "first_response_count", "first_response_median_minutes",
    "first_response_p90_minutes", "resolution_count", "resolution_median_minutes", "resolution_p90_minutes",
    "sla_first_response_met", "sla_first_response_breached", "sla_resolution_met", "sla_resolution_breached",
    "backlog_total", *(f"backlog_{label}" for label, _ in ops.AGES),
)


def flat(key: str, figures: dict[str, Any]) -> dict[str, Any]:
    """One CSV row of a group's (or the total's) figures."""
    row: dict[str, Any] = {"group": key, "opened": figures["opened"], "resolved": figures["resolved"]}
    for name in ("first_response", "resolution"):
        times = figures[name]
        row |= {f"{name}_count": times["count"], f"{name}_median_minutes": times["median_minutes"],
                f"{name}_p90_minutes": times["p90_minutes"]}
        row |= {f"sla_{name}_{k}": v for k, v in figures["sla"][name].items()}
    row |= {f"backlog_{k}": v for k, v in figures["backlog"].items()}
    return row


def to_csv(report: dict[str, Any]) -> str:
    """The report as CSV: one row per group, then the total (empty cells for no data)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for group in report["groups"]:
        writer.writerow(flat(group["key"], group))
    writer.writerow(flat("(total)", report["total"]))
    return out.getvalue()


def table(report: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    clock = {"wall": "wall-clock time", "business": "business hours",
             "mixed": "business hours where the queue has them, else wall-clock time"}[report["clock"]]
    period = report["period"]
    named = "" if period["name"] == "dates" else f"{period['name']}: "
    lines = [f"Report {named}{period['from']} to {period['to']} ({period['timezone']})"
             f"{', queue ' + report['queue'] if report['queue'] else ''}; times in {clock}, median / 90th percentile",
             "open: at the end of the period, by age", ""]
    head = f"{'':<24} {'opened':>6} {'resolved':>8}  {'1st reply':>13}  {'resolution':>13}  {'SLA met/breached':>16}  " \
           f"{'open':>5} " + " ".join(f"{label:>5}" for label, _ in ops.AGES)
    lines.append(head)
    rows = [(g["key"], g) for g in report["groups"]] + [("total", report["total"])]
    for key, f in rows:
        met = sum(v["met"] for v in f["sla"].values())
        breached = sum(v["breached"] for v in f["sla"].values())
        times = [f"{duration(f[n]['median_minutes'])} / {duration(f[n]['p90_minutes'])}"
                 for n in ("first_response", "resolution")]
        ages = " ".join(f"{f['backlog'][label]:>5}" for label, _ in ops.AGES)
        lines.append(f"{key[:24]:<24} {f['opened']:>6} {f['resolved']:>8}  {times[0]:>13}  {times[1]:>13}  "
                     f"{f'{met} / {breached}':>16}  {f['backlog']['total']:>5} {ages}")
    return "\n".join(lines)


def attach(main: click.Group) -> None:
    main.add_command(report)


@click.command()
@click.option("--period", type=click.Choice(PERIODS), default=None,
              help="A named period in gateway.timezone (default: week, unless --from/--to are given).")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First day, YYYY-MM-DD.")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day (included).")
@click.option("--by", type=click.Choice(DIMENSIONS), default=None, help="One row per tag, queue, agent …")
@click.option("--queue", default=None, help="Only this queue's tickets.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.pass_context
def report(ctx: click.Context, period: str | None, first: datetime | None, last: datetime | None, by: str | None,
           queue: str | None, as_json: bool, as_csv: bool) -> None:
    """Tickets opened and resolved, first-reply and resolution times, SLA met/breached, open backlog by age."""
    if period is not None and (first or last):
        raise click.UsageError("--period or --from/--to, not both")

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        now = tx.now()
        span = periods.named(period or "week", now, config.gateway.timezone) if period or not (first or last) else \
            periods.between(_day(first), _day(last), now, config.gateway.timezone)
        return await ops.build(tx, config, span, by, queue)

    found = run_txn(ctx, as_json, work, write=False)
    if as_json:
        emit_json(found)
    elif as_csv:
        click.echo(to_csv(found), nl=False)
    else:
        click.echo(table(found))


def _day(value: datetime | None) -> date | None:
    return value.replace(tzinfo=UTC).date() if value is not None else None
