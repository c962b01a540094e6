"""Agent commands from a mail: "[status:closed]" subject tags and "#status closed" lines atop the body; pure."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from mailgate.config import PRIORITIES

STATUSES: tuple[str, ...] = ("open", "pending", "resolved", "closed")
LISTS: tuple[str, ...] = ("inbox", "waiting", "mine", "all")
# name → whether it takes a value: True must, False must not, None may.
_VALUES: dict[str, bool | None] = {
    "status": True, "priority": True, "queue": True, "assign": True, "tag": True, "category": True,
    "snooze": True, "note": False, "cancel": False, "take": False, "next": False, "list": None, "send": False,
}
# Ticket life (issue 7 parts 3-6): merge, forward, ask a colleague, split; values checked in case_command.
_VALUES.update({"merge": True, "forward": True, "forward+notes": True, "help": True, "split": False})
# Issue 7 parts 7, 9, 10: a ticket an agent opens, tasks, following; values checked in life_tags.
_LIFE = {"new": False, "to": True, "behalf": True, "channel": True, "task": True, "done": False,
         "follow": False, "unfollow": False}
_VALUES.update(_LIFE)
# Who receives replies: [cc:add a@x.example] confirms someone who wrote in, [cc:remove …] takes a Cc off.
_VALUES["cc"] = True
# The ticket's files mailed to the asking agent: [files] all of them, [files:2, 5] those of its listing.
_VALUES["files"] = None
_ALIASES = {"comment": "note", "tags": "tag", "prio": "priority"}
NAMES: tuple[str, ...] = (*_VALUES, "comment")
# Commands that need no ticket: an agent may send them to the command address.
TICKETLESS = frozenset({"next", "list"})

_IDENT = re.compile(r"[a-z0-9_]{1,40}")
_TAG = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,39}")
_SUBJECT_TAG = re.compile(r"\[\s*([A-Za-z]{2,12}(?:\+[A-Za-z]{2,12})?)\s*(?::\s*([^\[\]\r\n]*?)\s*)?\]")
_BODY_LINE = re.compile(r"^[ \t]*#([A-Za-z]{2,12}(?:\+[A-Za-z]{2,12})?)(?:[ \t]*:[ \t]*|[ \t]+|$)(.*?)[ \t]*$")
SNOOZE_HOUR = time(9, 0)
MAX_SNOOZE = timedelta(days=366 * 2)


@dataclass(frozen=True, slots=True)
class Command:
    """One command, its value normalised (lower case where case means nothing)."""

    name: str
    value: str = ""
    raw: str = ""  # as written, for messages back to the agent
    add: tuple[str, ...] = ()  # tag: added tags
    remove: tuple[str, ...] = ()  # tag: removed tags
    until: datetime | None = field(default=None, compare=False)  # snooze: when it ends (aware)
    # The mail around it (issue 7): forward/help the words to the recipients; split the Message-IDs it answers.
    text: str = field(default="", compare=False)

    def render(self) -> str:
        """The subject-tag form, e.g. "[status:closed]"."""
        return f"[{self.name}:{self.value}]" if self.value else f"[{self.name}]"


@dataclass(frozen=True, slots=True)
class TagError:
    raw: str
    reason: str

    def __str__(self) -> str:
        return f"{self.raw}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Parsed:
    commands: tuple[Command, ...]
    subject: str  # without the command tags
    body: str  # without the command lines at its top
    errors: tuple[TagError, ...]
    quoted: tuple[str, ...] = ()  # tags left alone: they were in the subject answered, not written by the sender

    def has(self, name: str) -> bool:
        return any(c.name == name for c in self.commands)

    def get(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)


def _canonical(name: str) -> str | None:
    name = name.lower()
    name = _ALIASES.get(name, name)
    return name if name in _VALUES else None


def _near_miss(name: str) -> str | None:
    """A typo of a command name ("stauts"): better an error than silently ignored."""
    close = difflib.get_close_matches(name.lower(), NAMES, n=1, cutoff=0.75)
    return close[0] if close else None


def _read_as_tag(match: re.Match[str]) -> bool:
    """Whether parse() acts on this [name:value]: a command, or a typo of one (an error)."""
    name, value = match.group(1), match.group(2)
    return _canonical(name) is not None or (value is not None and _near_miss(name) is not None)


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
        if _canonical(name) is not None:
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
        match = _BODY_LINE.match(lines[index])
        if match is None:
            break
        name, value = match.group(1), match.group(2)
        if _canonical(name) is None:
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
        command = _command(_canonical(name) or name, (value or "").strip(), raw, now, zone)
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


def _command(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    needs = _VALUES[name]
    if needs is True and not value:
        return TagError(raw, f"needs a value, e.g. {_EXAMPLES[name]}")
    if needs is False and value:
        return TagError(raw, "takes no value")
    lowered = value.lower()
    if name == "status":
        if lowered not in STATUSES:
            return TagError(raw, f"unknown status {value!r} (one of {', '.join(STATUSES)})")
        return Command(name, lowered, raw)
    if name == "priority":
        if lowered not in PRIORITIES:
            return TagError(raw, f"unknown priority {value!r} (one of {', '.join(PRIORITIES)})")
        return Command(name, lowered, raw)
    if name in ("queue", "assign"):
        if not _IDENT.fullmatch(lowered):
            return TagError(raw, f"{value!r} is not a {name if name == 'queue' else 'agent'} name")
        return Command(name, lowered, raw)
    if name == "tag":
        add: list[str] = []
        remove: list[str] = []
        for word in lowered.replace(",", " ").split():
            sign, tag = (word[0], word[1:]) if word[0] in "+-" else ("+", word)
            if not _TAG.fullmatch(tag):
                return TagError(raw, f"{word!r} is not a tag (letters, digits, . _ -)")
            (add if sign == "+" else remove).append(tag)
        normal = " ".join([*(f"+{t}" for t in add), *(f"-{t}" for t in remove)])
        return Command(name, normal, raw, add=tuple(add), remove=tuple(remove))
    if name == "category":
        if len(value) > 60:
            return TagError(raw, "a category is at most 60 characters")
        return Command(name, value, raw)
    if name == "snooze":
        until = snooze_until(value, now, zone)
        if isinstance(until, str):
            return TagError(raw, until)
        return Command(name, lowered, raw, until=until)
    if name in _LIFE:
        from mailgate.commands import life_tags  # imports this module

        return life_tags.command(name, value, raw, now, zone)
    if name in _CASE:
        return case_command(name, value, raw)
    if name == "cc":
        return cc_command(value, raw)
    if name == "files":
        return files_command(value, raw)
    if name == "list":
        which = lowered or "inbox"
        if which not in LISTS:
            return TagError(raw, f"unknown list {value!r} (one of {', '.join(LISTS)})")
        return Command(name, which, raw)
    return Command(name, "", raw)


_EXAMPLES = {
    "status": "[status:resolved]", "priority": "[priority:high]", "queue": "[queue:billing]",
    "assign": "[assign:me]", "tag": "[tag:+vip -spam]", "category": "[category:hardware]",
    "snooze": "[snooze:3d]", "cc": "[cc:add a@x.example]",
}
_EXAMPLES.update({"merge": "[merge:#1042]", "forward": "[forward:a@x.example, b@y.example]",
                  "forward+notes": "[forward+notes:a@x.example]", "help": "[help:anna, pekka]"})
_CASE = frozenset({"merge", "forward", "forward+notes", "help"})
MAX_RECIPIENTS = 10
# A bare addr-spec (dot-atom local part, a domain with a dot): what an agent types into a tag.
_ADDRESS = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


def case_command(name: str, value: str, raw: str) -> Command | TagError:
    """[merge:#N] → "N"; [forward:a@x, b@y] and [help:anna pekka] → their items, comma-joined."""
    if name == "merge":
        match = re.fullmatch(r"#?\s*(\d{1,12})", value)
        if match is None:
            return TagError(raw, f"{value!r} is not a ticket number (e.g. [merge:#1042])")
        return Command(name, match.group(1), raw)
    items = [i.strip().strip("<>").lower() for i in re.split(r"[,;\s]+", value) if i.strip()]
    if not items:
        return TagError(raw, f"needs a value, e.g. {_EXAMPLES[name]}")
    if len(items) > MAX_RECIPIENTS:
        return TagError(raw, f"at most {MAX_RECIPIENTS} at once")
    for item in items:
        if name == "help" and not _IDENT.fullmatch(item):
            return TagError(raw, f"{item!r} is not an agent name")
        if name != "help" and (len(item) > 254 or not _ADDRESS.fullmatch(item)):
            return TagError(raw, f"{item!r} is not an email address")
    return Command(name, ", ".join(dict.fromkeys(items)), raw)


def cc_command(value: str, raw: str) -> Command | TagError:
    """[cc:add a@x, b@y] (or [cc:a@x] or [cc:+a@x]) and [cc:remove a@x] (or [cc:-a@x]) → add and remove."""
    add: list[str] = []
    remove: list[str] = []
    into = add
    for word in re.split(r"[,;\s]+", value.strip().lower()):
        if word in ("add", "remove", "del", "delete"):
            into = add if word == "add" else remove
            continue
        sign, address = (word[0], word[1:]) if word[:1] in "+-" and len(word) > 1 else ("", word)
        address = address.strip("<>")
        if not address:
            continue
        if len(address) > 254 or not _ADDRESS.fullmatch(address):
            return TagError(raw, f"{address!r} is not an email address (e.g. [cc:add a@x.example])")
        (remove if sign == "-" else add if sign == "+" else into).append(address)
    if not add and not remove:
        return TagError(raw, "needs an address, e.g. [cc:add a@x.example]")
    if len(add) + len(remove) > MAX_RECIPIENTS:
        return TagError(raw, f"at most {MAX_RECIPIENTS} at once")
    add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))
    normal = " ".join([*(f"+{a}" for a in add), *(f"-{a}" for a in remove)])
    return Command("cc", normal, raw, add=tuple(add), remove=tuple(remove))


_FILE_NUMBER = re.compile(r"#?\d{1,6}")


def files_command(value: str, raw: str) -> Command | TagError:
    """[files] (or [files:all]) → "", every file; [files:2] or [files:#2, 5] → "2, 5", numbers as listed."""
    words = [w for w in re.split(r"[,;\s]+", value.strip().lower()) if w]
    if not words or words == ["all"]:
        return Command("files", "", raw)
    if len(words) > 50 or not all(_FILE_NUMBER.fullmatch(w) for w in words):
        return TagError(raw, "write the numbers of the files as listed, e.g. [files:2] or [files:1, 3]")
    numbers = dict.fromkeys(int(w.lstrip("#")) for w in words)
    return Command("files", ", ".join(str(n) for n in numbers), raw)


_UNITS = {"m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hour": 3600,
          "hours": 3600, "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
_RELATIVE = re.compile(r"(\d{1,4})\s*([a-z]+)")
# Weekday names agents write in (en, fi, pl, hu), Monday = 0.
_WEEKDAYS: dict[str, int] = {}
for _day, _names in enumerate((
    ("monday", "mon", "maanantai", "ma", "poniedziałek", "poniedzialek", "pon", "hétfő", "hetfo"),
    ("tuesday", "tue", "tiistai", "ti", "wtorek", "wt", "kedd"),
    ("wednesday", "wed", "keskiviikko", "ke", "środa", "sroda", "śr", "szerda", "sze"),
    ("thursday", "thu", "torstai", "to", "czwartek", "czw", "csütörtök", "csutortok", "cs"),
    ("friday", "fri", "perjantai", "pe", "piątek", "piatek", "pt", "péntek", "pentek", "p"),
    ("saturday", "sat", "lauantai", "la", "sobota", "sob", "szombat", "szo"),
    ("sunday", "sun", "sunnuntai", "su", "niedziela", "niedz", "nd", "vasárnap", "vasarnap", "v"),
)):
    for _name in _names:
        _WEEKDAYS[_name] = _day
_TOMORROW = ("tomorrow", "huomenna", "jutro", "holnap")
_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y.%m.%d %H:%M", "%Y.%m.%d",
                 "%d.%m.%Y %H:%M", "%d.%m.%Y")


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


def _local(day: date, at: time, zone: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)


def strip_body(body: str) -> str:
    """The body without command lines at its top (for the stored full text)."""
    return parse("", body, now=datetime.now(ZoneInfo("UTC"))).body
