"""The report as a mail to an agent: an HTML part with inline bars and a plain-text part with text bars.

No images and no scripts: mail clients block remote images and strip scripts, so the bars are
<div style="width:NN%"> blocks (HTML) and runs of "█" (text), readable in any client and on paper.
Templates report.txt / report.html ship in every language; an override folder's language without
its own falls back to English.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateNotFound

from mailgate.config import LANGUAGES, AgentConfig, Config
from mailgate.outgoing import templates
from mailgate.outgoing.ticketless import queue_to_agent
from mailgate.outgoing.writer import Writer
from mailgate.store import Txn

BAR = "█"
WIDTH = 24  # characters of the longest text bar


def duration(minutes: float | None) -> str:
    """45m, 3.5h, 2.1d: readable at a glance; "-" without data."""
    if minutes is None:
        return "-"
    if minutes < 90:
        return f"{minutes:.0f}m"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f}h"
    return f"{minutes / 1440:.1f}d"


def width(value: int, top: int) -> int:
    """A bar's length in percent of the largest value; at least 1 for any value above zero."""
    if value <= 0 or top <= 0:
        return 0
    return max(1, round(100 * value / top))


def text_bar(value: int, top: int, chars: int = WIDTH) -> str:
    """"█████ 42": a bar as long as the value is to the largest, then the value."""
    blocks = 0 if value <= 0 or top <= 0 else max(1, round(chars * value / top))
    return f"{BAR * blocks} {value}".strip()


def view(report: dict[str, Any]) -> dict[str, Any]:
    """What the templates show: every figure already formatted, every bar already measured."""
    total = report["total"]
    groups = report["groups"] or [{"key": "all", **total}]
    top = max([max(g["opened"], g["resolved"]) for g in groups] + [1])
    rows = [{"key": g["key"], "opened": g["opened"], "resolved": g["resolved"],
             "opened_width": width(g["opened"], top), "resolved_width": width(g["resolved"], top),
             "opened_bar": text_bar(g["opened"], top), "resolved_bar": text_bar(g["resolved"], top)} for g in groups]
    ages = [(label, n) for label, n in total["backlog"].items() if label != "total"]
    oldest = max([n for _, n in ages] + [1])
    backlog = [{"label": label, "count": n, "width": width(n, oldest), "bar": text_bar(n, oldest)} for label, n in ages]
    times = {name: {"median": duration(total[name]["median_minutes"]), "p90": duration(total[name]["p90_minutes"]),
                    "count": total[name]["count"]} for name in ("first_response", "resolution")}
    clock = {"wall": "wall-clock time", "business": "business hours",
             "mixed": "business hours where the queue has them, else wall-clock time"}[report["clock"]]
    # clock_kind (wall, business, mixed) lets a translation word the clock in its own language.
    return {"period": report["period"], "queue": report["queue"] or "", "by": report["by"] or "", "clock": clock,
            "clock_kind": report["clock"],
            "opened": total["opened"], "resolved": total["resolved"], "open": total["backlog"]["total"],
            "rows": rows, "backlog": backlog, "times": times, "sla": total["sla"]}


async def queue_report(
    writer: Writer, tx: Txn, config: Config, agent: AgentConfig, report: dict[str, Any], *, kind: str = "report"
) -> int:
    """Render the report for one agent and queue it; Reply-To is their command address (another [report:…])."""
    language = agent.language or config.gateway.default_language
    data = {"gateway": {"name": config.gateway.name}, "agent": {"name": agent.name or agent.id, "id": agent.id},
            "report": view(report)}
    try:
        rendered = writer.templates.render("report", language, data)
    except TemplateNotFound:
        rendered = writer.templates.render("report", "en", data)
    return await queue_to_agent(writer, tx, config, agent, rendered, language=language, kind=kind)


def _sample_figures(opened: int, resolved: int) -> dict[str, Any]:
    times = {"count": resolved, "median_minutes": 75.0, "p90_minutes": 3000.0}
    return {"opened": opened, "resolved": resolved, "first_response": times, "resolution": times,
            "sla": {"first_response": {"met": 3, "breached": 1}, "resolution": {"met": 2, "breached": 0}},
            "backlog": {"total": 4, "<1d": 2, "1-3d": 1, "3-7d": 0, "7-30d": 1, ">30d": 0}}


# A report with every field filled (two groups, one with markup to escape), for check-config.
SAMPLE: dict[str, Any] = {
    "period": {"name": "week", "from": "2026-11-02", "to": "2026-11-08", "start": "2026-11-01T22:00:00+00:00",
               "end": "2026-11-08T22:00:00+00:00", "timezone": "Europe/Helsinki"},
    "by": "tag", "queue": "support", "clock": "mixed", "total": _sample_figures(7, 5),
    "groups": [{"key": "printer <laser>", **_sample_figures(5, 4)}, {"key": "(none)", **_sample_figures(2, 1)}],
}


def check(config: Config) -> list[str]:
    """check-config: the report rendered in every language with SAMPLE; one line per problem."""
    shipped = templates.for_config(config)
    data = {"gateway": {"name": "Example Support"}, "agent": {"name": "Aino Agent", "id": "aino"},
            "report": view(SAMPLE)}
    problems = []
    for language in LANGUAGES:
        try:
            shipped.render("report", language, data)
        except Exception as exc:  # noqa: BLE001 - a missing or broken template, a sandbox refusal ...
            problems.append(f"{language}/report: {type(exc).__name__}: {exc}")
    return problems
