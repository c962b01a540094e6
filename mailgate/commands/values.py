"""How each agent command's value is read and normalised; one reader per kind of value; pure."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from mailgate.commands.dates import due_at, snooze_until
from mailgate.commands.model import Command, TagError
from mailgate.config import DIMENSIONS, PERIODS, PRIORITIES

STATUSES: tuple[str, ...] = ("open", "pending", "resolved", "closed")
LISTS: tuple[str, ...] = ("inbox", "waiting", "mine", "all", "replies")
CHANNELS: tuple[str, ...] = ("email", "phone", "web", "sms", "chat")
MAX_RECIPIENTS = 10
EXAMPLES = {
    "status": "[status:resolved]", "priority": "[priority:high]", "queue": "[queue:billing]",
    "assign": "[assign:me]", "tag": "[tag:+vip -spam]", "category": "[category:hardware]",
    "snooze": "[snooze:3d]", "cc": "[cc:add a@x.example]", "merge": "[merge:#1042]",
    "forward": "[forward:a@x.example, b@y.example]", "forward+notes": "[forward+notes:a@x.example]",
    "help": "[help:anna, pekka]", "to": "[to:customer@example.com]", "behalf": "[behalf:customer@example.com]",
    "channel": "[channel:phone]", "task": "[task:billing due:2026-12-05]", "use": "[use:refund]",
}
_IDENT = re.compile(r"[a-z0-9_]{1,40}")
_TAG = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,39}")
# A bare addr-spec (dot-atom local part, a domain with a dot): what an agent types into a tag.
_ADDRESS = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_TASK = re.compile(r"([A-Za-z0-9_]+)[\s,;]*(?:due\s*[:=]?\s*)?(.*)", re.IGNORECASE)
_FILE_NUMBER = re.compile(r"#?\d{1,6}")


def bare(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    """A command without a value ([take], [note] …), or one whose value is kept as written."""
    return Command(name, "", raw)


def status(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    lowered = value.lower()
    if lowered not in STATUSES:
        return TagError(raw, f"unknown status {value!r} (one of {', '.join(STATUSES)})")
    return Command(name, lowered, raw)


def priority(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    lowered = value.lower()
    if lowered not in PRIORITIES:
        return TagError(raw, f"unknown priority {value!r} (one of {', '.join(PRIORITIES)})")
    return Command(name, lowered, raw)


def ident(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    """A queue or agent name."""
    lowered = value.lower()
    if not _IDENT.fullmatch(lowered):
        return TagError(raw, f"{value!r} is not a {name if name == 'queue' else 'agent'} name")
    return Command(name, lowered, raw)


def tags(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    """"+vip -spam" (a bare word adds)."""
    add: list[str] = []
    remove: list[str] = []
    for word in value.lower().replace(",", " ").split():
        sign, tag = (word[0], word[1:]) if word[0] in "+-" else ("+", word)
        if not _TAG.fullmatch(tag):
            return TagError(raw, f"{word!r} is not a tag (letters, digits, . _ -)")
        (add if sign == "+" else remove).append(tag)
    normal = " ".join([*(f"+{t}" for t in add), *(f"-{t}" for t in remove)])
    return Command(name, normal, raw, add=tuple(add), remove=tuple(remove))


def category(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    if len(value) > 60:
        return TagError(raw, "a category is at most 60 characters")
    return Command(name, value, raw)


def snooze(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    until = snooze_until(value, now, zone)
    if isinstance(until, str):
        return TagError(raw, until)
    return Command(name, value.lower(), raw, until=until)


def listing(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    which = value.lower() or "inbox"
    if which not in LISTS:
        return TagError(raw, f"unknown list {value!r} (one of {', '.join(LISTS)})")
    return Command(name, which, raw)


def customer(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    """[to:…] and [behalf:…]: one address."""
    address = value.strip().lower().strip("<>")
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        return TagError(raw, f"{value!r} is not an email address (e.g. {EXAMPLES[name]})")
    return Command(name, address, raw)


def channel(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    lowered = value.strip().lower()
    if lowered not in CHANNELS:
        return TagError(raw, f"unknown channel {value!r} (one of {', '.join(CHANNELS)})")
    return Command(name, lowered, raw)


def task(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    """[task:QUEUE due:WHEN]: the queue, then the deadline."""
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


def case(name: str, value: str, raw: str, now: datetime | None = None, zone: tzinfo | None = None) -> Command | TagError:
    """[merge:#N] → "N"; [forward:a@x, b@y] and [help:anna pekka] → their items, comma-joined."""
    if name == "merge":
        match = re.fullmatch(r"#?\s*(\d{1,12})", value)
        if match is None:
            return TagError(raw, f"{value!r} is not a ticket number (e.g. [merge:#1042])")
        return Command(name, match.group(1), raw)
    items = [i.strip().strip("<>").lower() for i in re.split(r"[,;\s]+", value) if i.strip()]
    if not items:
        return TagError(raw, f"needs a value, e.g. {EXAMPLES[name]}")
    if len(items) > MAX_RECIPIENTS:
        return TagError(raw, f"at most {MAX_RECIPIENTS} at once")
    for item in items:
        if name == "help" and not _IDENT.fullmatch(item):
            return TagError(raw, f"{item!r} is not an agent name")
        if name != "help" and (len(item) > 254 or not _ADDRESS.fullmatch(item)):
            return TagError(raw, f"{item!r} is not an email address")
    return Command(name, ", ".join(dict.fromkeys(items)), raw)


def cc(name: str, value: str, raw: str, now: datetime | None = None, zone: tzinfo | None = None) -> Command | TagError:
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


def files(name: str, value: str, raw: str, now: datetime | None = None, zone: tzinfo | None = None) -> Command | TagError:
    """[files] (or [files:all]) → "", every file; [files:2] or [files:#2, 5] → "2, 5", numbers as listed."""
    words = [w for w in re.split(r"[,;\s]+", value.strip().lower()) if w]
    if not words or words == ["all"]:
        return Command("files", "", raw)
    if len(words) > 50 or not all(_FILE_NUMBER.fullmatch(w) for w in words):
        return TagError(raw, "write the numbers of the files as listed, e.g. [files:2] or [files:1, 3]")
    numbers = dict.fromkeys(int(w.lstrip("#")) for w in words)
    return Command("files", ", ".join(str(n) for n in numbers), raw)


_REPLY_NAME = re.compile(r"[a-z0-9][a-z0-9_\-]{0,59}")


def saved_reply(name: str, value: str, raw: str, now: datetime | None = None, zone: tzinfo | None = None) -> Command | TagError:
    """[use:refund]: a saved reply's name (its file is <name>.<language>.j2)."""
    lowered = value.strip().lower()
    if not _REPLY_NAME.fullmatch(lowered):
        return TagError(raw, f"{value!r} is not a saved reply's name (letters, digits, - and _; e.g. {EXAMPLES['use']})")
    return Command(name, lowered, raw)


def search(name: str, value: str, raw: str, now: datetime | None = None, zone: tzinfo | None = None) -> Command | TagError:
    """[search:printer toner status:open]: the words and filters as written; ops.search reads and checks them."""
    text = " ".join(value.split())
    if not text:
        return TagError(raw, "needs the words to find, e.g. [search:printer toner status:open]")
    if len(text) > 500:
        return TagError(raw, "at most 500 characters")
    return Command(name, text, raw)


EXAMPLES["search"] = "[search:printer toner status:open]"


def report(name: str, value: str, raw: str, now: datetime | None = None, zone: tzinfo | None = None) -> Command | TagError:
    """[report], [report:last-week], [report:month by:queue] → "week", "last-week", "month by:queue"."""
    words = value.strip().lower().replace("=", ":").split()
    period, by = "week", ""
    for word in words:
        if word.startswith("by:") or word.startswith("by-"):
            by = word[3:]
        elif word in PERIODS:
            period = word
        else:
            return TagError(raw, f"unknown period {word!r} (one of {', '.join(PERIODS)}; e.g. [report:week by:queue])")
    if by and by not in DIMENSIONS:
        return TagError(raw, f"unknown dimension {by!r} (by: one of {', '.join(DIMENSIONS)})")
    return Command(name, f"{period} by:{by}" if by else period, raw)


def printing(name: str, value: str, raw: str, now: datetime | None = None, zone: tzinfo | None = None) -> Command | TagError:
    """[print] → "", the correspondence; [print:notes] → "notes", with the internal notes."""
    lowered = value.strip().lower()
    if lowered not in ("", "notes"):
        return TagError(raw, "write [print] or [print:notes]")
    return Command(name, lowered, raw)
