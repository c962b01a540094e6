"""Every agent command in one table: its name, value, apply order, whether it needs a ticket or makes a note; pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum

from mailgate.commands import values
from mailgate.commands.model import Command, TagError

Reader = Callable[[str, str, str, datetime, tzinfo], Command | TagError]


class Value(StrEnum):
    """Whether a command takes a value."""

    REQUIRED = "required"
    NONE = "none"
    OPTIONAL = "optional"


class Ticket(StrEnum):
    """What a command needs to be about."""

    NEEDED = "needed"  # a ticket: reply to its notification
    ANY = "any"  # with or without one (the command address)
    OPENS = "opens"  # opens one: only with [new] or [behalf:…], to the command address


class Words(StrEnum):
    """What of the mail around it a command takes."""

    NONE = "none"
    BODY = "body"  # the mail's words: for the recipients or the task, never a reply
    PARENTS = "parents"  # the Message-IDs the mail answers (which message to split off)


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    value: Value
    read: Reader
    ticket: Ticket = Ticket.NEEDED
    makes_note: bool = False  # the mail's words stay an internal note, never a reply to the customer
    words: Words = Words.NONE
    applied: bool = True  # run by ops' apply (False: read by the caller: [list], [note], new-ticket tags, [done])


_R, _N, _O = Value.REQUIRED, Value.NONE, Value.OPTIONAL
# In apply order: queue before assign (membership is judged after a move); task, follow, cc and files
# before merge, which ends the ticket and moves its files; merge last.
REGISTRY: tuple[Spec, ...] = (
    Spec("queue", _R, values.ident),
    Spec("priority", _R, values.priority),
    Spec("category", _R, values.category),
    Spec("tag", _R, values.tags),
    Spec("assign", _R, values.ident),
    Spec("take", _N, values.bare),
    Spec("status", _R, values.status),
    Spec("snooze", _R, values.snooze),
    Spec("cancel", _N, values.bare),
    Spec("send", _N, values.bare),
    Spec("next", _N, values.bare, ticket=Ticket.ANY),
    Spec("list", _O, values.listing, ticket=Ticket.ANY, applied=False),
    Spec("note", _N, values.bare, makes_note=True, applied=False),
    Spec("task", _R, values.task, makes_note=True, words=Words.BODY),
    Spec("follow", _N, values.bare),
    Spec("unfollow", _N, values.bare),
    Spec("cc", _R, values.cc),
    Spec("files", _O, values.files),
    Spec("forward", _R, values.case, makes_note=True, words=Words.BODY),
    Spec("forward+notes", _R, values.case, makes_note=True, words=Words.BODY),
    Spec("help", _R, values.case, makes_note=True, words=Words.BODY),
    # Deleting asks first: [delete] is answered by a mail that [confirm] answers; [restore] undoes it.
    # The mail's words stay a note, never a reply; before split and merge (merge is the last applied).
    Spec("delete", _N, values.bare, makes_note=True),
    Spec("confirm", _N, values.bare, makes_note=True),
    Spec("restore", _N, values.bare, makes_note=True),
    Spec("split", _N, values.bare, words=Words.PARENTS),
    Spec("merge", _R, values.case),
    # A ticket an agent opens ([new] mails the customer, [behalf:…] records a phone case) and a
    # task's [done]: read by their own paths, never applied to an existing ticket.
    Spec("new", _N, values.bare, ticket=Ticket.OPENS, applied=False),
    Spec("to", _R, values.customer, ticket=Ticket.OPENS, applied=False),
    Spec("behalf", _R, values.customer, ticket=Ticket.OPENS, applied=False),
    Spec("channel", _R, values.channel, ticket=Ticket.OPENS, applied=False),
    Spec("done", _N, values.bare, applied=False),
    # A saved reply to the customer (read by the agent-mail path, which renders it under the agent's words).
    Spec("use", _R, values.saved_reply, applied=False),
    # Answered by its own mail (ops.search), with or without a ticket; changes nothing.
    Spec("search", _R, values.search, ticket=Ticket.ANY, applied=False),
    # Answered with a mail of their own to the asking agent: statistics, a ticket's printable page.
    Spec("report", _O, values.report, ticket=Ticket.ANY, applied=False),
    Spec("print", _O, values.printing, applied=False),
)
SPECS: dict[str, Spec] = {s.name: s for s in REGISTRY}
ALIASES = {"comment": "note", "tags": "tag", "prio": "priority"}
# Typos are matched against the names and "comment" (a near miss of "tags" or "prio" is one of "tag", "priority").
NAMES: tuple[str, ...] = (*SPECS, "comment")
TICKETLESS = frozenset(s.name for s in REGISTRY if s.ticket is Ticket.ANY)
NEW_TICKET = frozenset(s.name for s in REGISTRY if s.ticket is Ticket.OPENS)
NOTE_COMMANDS = frozenset(s.name for s in REGISTRY if s.makes_note)
# What may come along with [new] / [behalf:…], applied to the new ticket after it is opened.
WITH_NEW = frozenset({"priority", "category", "tag", "assign", "take", "status", "follow", "unfollow"})
_ORDER = {s.name: i for i, s in enumerate(REGISTRY)}


def canonical(name: str) -> str | None:
    """The command a written name means ("Prio" → "priority"), or None."""
    name = name.lower()
    name = ALIASES.get(name, name)
    return name if name in SPECS else None


def in_order(commands: Iterable[Command]) -> list[Command]:
    """The commands ops applies, in the order it applies them."""
    return sorted((c for c in commands if SPECS[c.name].applied), key=lambda c: _ORDER[c.name])


def read(name: str, value: str, raw: str, now: datetime, zone: tzinfo) -> Command | TagError:
    """One command from its canonical name and written value."""
    spec = SPECS[name]
    if spec.value is Value.REQUIRED and not value:
        return TagError(raw, f"needs a value, e.g. {values.EXAMPLES[name]}")
    if spec.value is Value.NONE and value:
        return TagError(raw, "takes no value")
    return spec.read(name, value, raw, now, zone)
