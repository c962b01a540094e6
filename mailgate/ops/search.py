"""Search tickets: read a person's words and filters, check them against the config, run the store's search.

The same words work in `[search:printer toner status:open queue:billing from:2026-01-01]` and on
the command line (`mailgate tickets search "printer toner" --status open`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailgate.clock import iso
from mailgate.commands.values import CHANNELS
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.models import TicketStatus
from mailgate.ops.base import my_queues
from mailgate.outgoing import search_answer
from mailgate.store import Txn
from mailgate.store import search as store
from mailgate.store.search import DIRECTIONS, Filters, Found, Term

MAIL_HITS = 20  # a mail lists this many; the rest is a count and a hint to narrow the search
MAX_TERMS = 16  # each term is one more index lookup; nobody types more, a pasted paragraph is cut here
STATUSES: tuple[str, ...] = tuple(s.value for s in TicketStatus)  # 'deleted' included: asked for, it shows those
KEYS = ("status", "queue", "assignee", "tag", "contact", "direction", "channel", "from", "to", "quarantined")
ALIASES = {"assign": "assignee", "assigned": "assignee", "is": "status", "in": "queue", "since": "from",
           "until": "to", "dir": "direction"}
DIRECTION_WORDS = {"received": "received", "in": "received", "inbound": "received", "sent": "sent", "out": "sent",
                   "outbound": "sent", "note": "note", "notes": "note"}
EXAMPLE = "[search:printer toner status:open]"
# key:"two words", "a phrase", or a run of non-space characters (key:value or a word).
_TOKEN = re.compile(r'(?:([A-Za-z]+):)?"([^"]*)"?|(\S+)')
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TAG = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,39}")


@dataclass(frozen=True, slots=True)
class Asked:
    """What a person wrote: the words to find and the filters, as written (not yet checked)."""

    terms: tuple[Term, ...]
    filters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """A checked search, ready for the store."""

    terms: tuple[Term, ...]
    filters: Filters


def parse(text: str) -> Asked:
    """Words, "phrases", word* prefixes and key:value filters; a word of punctuation alone is dropped."""
    terms: list[Term] = []
    filters: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        key, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and ":" in bare:
            head, _, rest = bare.partition(":")
            if _key(head) is not None and rest:
                key, quoted, bare = head, rest, None
        if key is not None and quoted is not None:
            name = _key(key)
            if name is not None:
                filters.append((name, quoted.strip()))
                continue
            quoted = f"{key} {quoted}"  # "re:" or "ref:" before a phrase: words, not a filter
        word = quoted if quoted is not None else bare or ""
        prefix = quoted is None and word.endswith("*")
        word = " ".join(word.rstrip("*").split()) if prefix else " ".join(word.split())
        if any(c.isalnum() for c in word):
            terms.append(Term(word, prefix=prefix and len(word) >= 2))
    return Asked(tuple(terms[:MAX_TERMS]), tuple(filters))


def _key(word: str) -> str | None:
    lowered = word.lower()
    lowered = ALIASES.get(lowered, lowered)
    return lowered if lowered in KEYS else None


def check(config: Config, asked: Asked, agent: AgentConfig | None = None) -> Query:
    """The filters checked against the config; a Refused names the first wrong one and what is allowed.

    agent: who "assignee:me" is.
    """
    if not asked.terms:
        raise Refused(f"nothing to search for: write the words to find, e.g. {EXAMPLE}")
    f = Filters()
    for key, value in asked.filters:
        f = _filter(config, f, key, value, agent)
    if f.since is not None and f.before is not None and f.since >= f.before:
        raise Refused("from: is after to: (write from:YYYY-MM-DD to:YYYY-MM-DD, the earlier day first)")
    return Query(asked.terms, f)


def seen_by(config: Config, query: Query, agent: AgentConfig) -> Query:
    """By mail an agent finds what [list] shows them: their queues' tickets and those assigned to them."""
    return Query(query.terms, replace(query.filters, queues_seen=tuple(my_queues(config, agent)), seen_by=agent.id))


def _filter(config: Config, f: Filters, key: str, value: str, agent: AgentConfig | None) -> Filters:
    lowered = value.lower()
    if not value:
        raise Refused(f"{key}: needs a value")
    if key == "status":
        wanted = tuple(s.strip() for s in lowered.split(",") if s.strip())
        unknown = [s for s in wanted if s not in STATUSES]
        if unknown or not wanted:
            raise Refused(f"unknown status {unknown[0] if unknown else value!r} (one of {', '.join(STATUSES)})")
        return replace(f, statuses=wanted)
    if key == "queue":
        if config.queue(lowered) is None:
            names = ", ".join(q.name for q in config.queues) or "none configured"
            raise Refused(f"no queue {value!r} (queues: {names})")
        return replace(f, queue=lowered)
    if key == "assignee":
        return replace(f, assignee=_assignee(config, lowered, agent))
    if key == "tag":
        if not _TAG.fullmatch(lowered.lstrip("+")):
            raise Refused(f"{value!r} is not a tag (letters, digits, . _ -)")
        return replace(f, tag=lowered.lstrip("+"))
    if key == "contact":
        return replace(f, contact=value.strip().strip("<>"))
    if key == "direction":
        if lowered not in DIRECTION_WORDS:
            raise Refused(f"unknown direction {value!r} (one of {', '.join(DIRECTIONS)})")
        return replace(f, direction=DIRECTION_WORDS[lowered])
    if key == "channel":
        if lowered not in CHANNELS:
            raise Refused(f"unknown channel {value!r} (one of {', '.join(CHANNELS)})")
        return replace(f, channel=lowered)
    if key == "quarantined":
        return replace(f, quarantined=lowered in ("yes", "true", "1", "only"))
    zone = ZoneInfo(config.gateway.timezone)
    if key == "from":
        return replace(f, since=_day_start(_day(key, value), zone))
    return replace(f, before=_day_start(_day(key, value) + timedelta(days=1), zone))


def _assignee(config: Config, lowered: str, agent: AgentConfig | None) -> str:
    if lowered in ("none", "nobody", "-"):
        return ""
    if lowered == "me":
        if agent is None:
            raise Refused("assignee:me needs to know who you are (--as AGENT)")
        return agent.id
    if config.agent(lowered) is None:
        raise Refused(f"no agent {lowered!r} (agents: {', '.join(a.id for a in config.agents)})")
    return lowered


def _day(key: str, value: str) -> date:
    try:
        if not _DAY.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        hint = " (for a sender write contact:ADDRESS)" if key == "from" and "@" in value else ""
        raise Refused(f"{key}:{value} is not a day: write {key}:YYYY-MM-DD{hint}") from None


def _day_start(day: date, zone: ZoneInfo) -> str:
    """Midnight of a day where the help desk is, as the stored (UTC) form: days are the desk's days."""
    return iso(datetime.combine(day, time(), tzinfo=zone))


async def run(tx: Txn, query: Query, limit: int = 20, offset: int = 0) -> Found:
    """The hits of a checked search, best first."""
    return await store.search(tx, query.terms, query.filters, limit, offset)


async def by_mail(tx: Txn, config: Config, agent: AgentConfig, words: str) -> str:
    """[search:…] from a proven agent: the hits mailed to them; what the confirmation says of it."""
    query = seen_by(config, check(config, parse(words), agent), agent)
    found = await run(tx, query, MAIL_HITS)
    await search_answer.send(tx, config, agent, words, found.hits, found.total, complete=found.complete)
    return f"[search:{words}] {found.total}{'' if found.complete else '+'} found, mailed to you"
