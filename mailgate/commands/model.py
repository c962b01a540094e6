"""The values agent-command parsing produces: a command, a refused tag, a parsed mail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailgate.errors import Refused


@dataclass(frozen=True, slots=True)
class Command:
    """One command, its value normalised (lower case where case means nothing)."""

    name: str
    value: str = ""
    raw: str = ""  # as written, for messages back to the agent
    add: tuple[str, ...] = ()  # tag, cc: what is added
    remove: tuple[str, ...] = ()  # tag, cc: what is removed
    until: datetime | None = field(default=None, compare=False)  # snooze, task: when it ends (aware)
    # The mail around it: forward/help/task take the words, split the Message-IDs the mail answers.
    text: str = field(default="", compare=False)

    def render(self) -> str:
        """The subject-tag form, e.g. "[status:closed]"."""
        return f"[{self.name}:{self.value}]" if self.value else f"[{self.name}]"


class TagError(Refused):
    """A refused tag: what the agent wrote (raw) and why it cannot be done."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"{raw}: {reason}" if raw else reason)
        self.raw = raw
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.raw}: {self.reason}" if self.raw else self.reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TagError) and (self.raw, self.reason) == (other.raw, other.reason)

    def __hash__(self) -> int:
        return hash((self.raw, self.reason))


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
