"""Values of the new-ticket, task and follow tags ([to:…], [behalf:…], [channel:…], [task:Q due:…]); pure."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from mailgate.commands import Command, TagError, snooze_until

# name → whether it takes a value (as commands._VALUES).
VALUES: dict[str, bool | None] = {
    "new": False, "to": True, "behalf": True, "channel": True,  # part 7: a ticket an agent opens
    "task": True, "done": False,  # part 9
    "follow": False, "unfollow": False,  # part 10
}
NEW_TICKET = frozenset({"new", "to", "behalf", "channel"})
CHANNELS: tuple[str, ...] = ("email", "phone", "web", "sms", "chat")
EXAMPLES = {"to": "[to:customer@example.com]", "behalf": "[behalf:customer@example.com]",
            "channel": "[channel:phone]", "task": "[task:billing due:2026-12-05]"}
_IDENT = re.compile(r"[a-z0-9_]{1,40}")
# A bare addr-spec, what an agent types into a tag (the same shape [forward:…] accepts).
_ADDRESS = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_TASK = re.compile(r"([A-Za-z0-9_]+)[\s,;]*(?:due\s*[:=]?\s*)?(.*)", re.IGNORECASE)
_DAY_FORMATS = ("%Y-%m-%d", "%Y.%m.%d", "%d.%m.%Y")


def command(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    """One of these tags, its value checked; the caller has checked presence/absence of a value."""
    lowered = value.strip().lower()
    if name in ("to", "behalf"):
        address = lowered.strip("<>")
        if len(address) > 254 or not _ADDRESS.fullmatch(address):
            return TagError(raw, f"{value!r} is not an email address (e.g. {EXAMPLES[name]})")
        return Command(name, address, raw)
    if name == "channel":
        if lowered not in CHANNELS:
            return TagError(raw, f"unknown channel {value!r} (one of {', '.join(CHANNELS)})")
        return Command(name, lowered, raw)
    if name == "task":
        match = _TASK.fullmatch(value.strip())
        if match is None or not _IDENT.fullmatch(match.group(1).lower()):
            return TagError(raw, f"write the queue, then the deadline, e.g. {EXAMPLES['task']}")
        when = match.group(2).strip()
        if not when:
            return TagError(raw, f"a task needs a deadline, e.g. {EXAMPLES['task']}")
        due = due_at(when, now, zone)
        if isinstance(due, str):
            return TagError(raw, due)
        return Command(name, match.group(1).lower(), raw, until=due)
    return Command(name, "", raw)


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
