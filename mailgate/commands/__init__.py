"""Agent commands from a mail: "[status:closed]" subject tags and "#status closed" lines atop the body; pure."""

from __future__ import annotations

import difflib
import re
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from mailgate.commands import registry, values
from mailgate.commands.dates import due_at, snooze_until
from mailgate.commands.model import Command, Parsed, TagError
from mailgate.commands.registry import NAMES, NOTE_COMMANDS, TICKETLESS
from mailgate.commands.values import CHANNELS, LISTS, MAX_RECIPIENTS, STATUSES

__all__ = [
    "CHANNELS", "LISTS", "MAX_RECIPIENTS", "NAMES", "NOTE_COMMANDS", "STATUSES", "TICKETLESS", "Command", "Parsed",
    "TagError", "case_command", "due_at", "neutralise", "parse", "snooze_until", "strip_body",
]

_SUBJECT_TAG = re.compile(r"\[\s*([A-Za-z]{2,12}(?:\+[A-Za-z]{2,12})?)\s*(?::\s*([^\[\]\r\n]*?)\s*)?\]")
_BODY_LINE = re.compile(r"^[ \t]*#([A-Za-z]{2,12}(?:\+[A-Za-z]{2,12})?)(?:[ \t]*:[ \t]*|[ \t]+|$)(.*?)[ \t]*$")


def _near_miss(name: str) -> str | None:
    """A typo of a command name ("stauts"): better an error than silently ignored."""
    close = difflib.get_close_matches(name.lower(), NAMES, n=1, cutoff=0.75)
    return close[0] if close else None


def _read_as_tag(match: re.Match[str]) -> bool:
    """Whether parse() acts on this [name:value]: a command, or a typo of one (an error)."""
    name, value = match.group(1), match.group(2)
    return registry.canonical(name) is not None or (value is not None and _near_miss(name) is not None)


def _key(match: re.Match[str]) -> str:
    """A tag as a mail client may rewrite it (case, spaces): "[Priority:  urgent]" is "[priority:urgent]"."""
    value = match.group(2)
    return match.group(1).lower() + ("" if value is None else ":" + " ".join(value.lower().split()))


def neutralise(text: str) -> str:
    """Text from a customer, fit for a subject an agent may answer: "[priority:urgent]" → "(priority:urgent)".

    An agent pressing Reply sends our subject back; a tag in it would run as the agent's command.
    Repeated, since "[status:[x:y]]" turns into a tag once its inner one is gone.
    """
    while True:
        changed = _SUBJECT_TAG.sub(lambda m: f"({m.group(0)[1:-1]})" if _read_as_tag(m) else m.group(0), text)
        if changed == text:
            return text
        text = changed


def parse(subject: str, body: str, *, now: datetime, tz: tzinfo | str = "UTC", inherited: str = "") -> Parsed:
    """Every command in the subject and at the very top of the body; the cleaned subject and body.

    inherited: the subject of the mail being answered. Its tags are not the sender's commands (a
    customer's "[forward+notes:…]" comes back in the agent's "Re:"); only tags added to it count.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    found: list[tuple[str, str | None, str]] = []
    errors: list[TagError] = []
    quoted: dict[str, int] = {}
    kept: list[str] = []
    for match in _SUBJECT_TAG.finditer(inherited):
        if _read_as_tag(match):
            quoted[_key(match)] = quoted.get(_key(match), 0) + 1

    def subject_tag(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if quoted.get(_key(match), 0) > 0:
            quoted[_key(match)] -= 1
            kept.append(match.group(0))
            return match.group(0)  # was in the subject answered: someone else's words, kept as text
        if registry.canonical(name) is not None:
            found.append((name, value, match.group(0)))
            return " "
        guess = _near_miss(name)
        if guess is not None and value is not None:
            errors.append(TagError(match.group(0), f"unknown command (did you mean [{guess}:…]?)"))
            return " "
        return match.group(0)  # "[EXTERNAL]", "[JIRA-12]": part of the subject, not ours

    cleaned_subject = " ".join(_SUBJECT_TAG.sub(subject_tag, subject).split())
    lines = body.splitlines()
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    while index < len(lines):
        line = _BODY_LINE.match(lines[index])
        if line is None:
            break
        name, value = line.group(1), line.group(2)
        if registry.canonical(name) is None:
            guess = _near_miss(name)
            if guess is None:
                break
            errors.append(TagError(lines[index].strip(), f"unknown command (did you mean #{guess}?)"))
        else:
            found.append((name, value or None, lines[index].strip()))
        index += 1
    cleaned_body = "\n".join(lines[index:]).strip("\n") if index else body
    commands: list[Command] = []
    for name, value, raw in found:
        command = registry.read(registry.canonical(name) or name, (value or "").strip(), raw, now, zone)
        if isinstance(command, TagError):
            errors.append(command)
            continue
        twin = next((c for c in commands if c.name == command.name), None)
        if twin is not None and command.name != "tag":
            if twin.value != command.value:
                errors.append(TagError(raw, f"contradicts {twin.raw}"))
            continue
        commands.append(command)
    return Parsed(tuple(commands), cleaned_subject, cleaned_body, tuple(errors), tuple(kept))


def case_command(name: str, value: str, raw: str) -> Command | TagError:
    """A [merge:…], [forward:…] or [help:…] value, read as the mail tag reads it (for the CLI)."""
    return values.case(name, value, raw)


def strip_body(body: str) -> str:
    """The body without command lines at its top (for the stored full text)."""
    return parse("", body, now=datetime.now(ZoneInfo("UTC"))).body
