"""What the steps of one mail share: the mail, its transaction, and what earlier steps decided."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mailgate.config import Config
from mailgate.models import Address, Correlation, ParsedMail, ThreadRule
from mailgate.ops.parties import Joined
from mailgate.outgoing import guard
from mailgate.outgoing.notices import Mailer
from mailgate.pipeline.agent_mail import Decision
from mailgate.rules import RuleSet
from mailgate.store import Txn
from mailgate.store.spool import SpoolEntry
from mailgate.store.threads import Duplicate


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one spooled mail, for the log line after the commit and for callers."""

    spool_id: int
    state: str  # done | duplicate | skipped (already handled elsewhere)
    ticket_number: int | None = None
    message_row: int | None = None
    rule: ThreadRule | None = None
    new_ticket: bool = False
    queue: str | None = None
    by: str = "customer"  # customer | agent: whose mail it was (an agent's is a command, reply or note)


@dataclass(slots=True)
class MailContext:
    """One mail on its way through the steps; each step reads what it needs and fills in what it decided."""

    tx: Txn
    config: Config
    ruleset: RuleSet  # compiled from the same config, so a reload never mixes two rule sets in one mail
    secret: bytes
    mailer: Mailer
    entry: SpoolEntry
    mail: ParsedMail
    key: str  # content_key of the raw bytes: the same body under other trace headers is a duplicate
    found: Correlation = field(default_factory=lambda: Correlation(None, ThreadRule.NEW, ""))
    agent: Decision | None = None  # what the agent-mail step made of the sender
    follows: int | None = None  # the closed ticket a new one follows up
    admission: guard.Admission | None = None  # the storm fuse's count of this sender's hour
    ticket_id: int | None = None
    number: int | None = None
    queue: str | None = None  # the ticket's queue, as open_or_append found or routed it
    new_ticket: bool = False
    joined: Joined | None = None
    message_row: int | None = None
    duplicate: Duplicate | None = None  # the stored message this mail repeats, as claim read it

    @property
    def sender(self) -> Address | None:
        """The From address (the first, when a mail names several)."""
        return self.mail.from_[0] if self.mail.from_ else None

    @property
    def actor(self) -> str:
        """Who the event log names for what this mail changes."""
        sender = self.sender
        return f"customer:{sender.address.lower()}" if sender else "system"

    @property
    def held(self) -> bool:
        """Over the sender's hourly cap: stored on a ticket, nobody told."""
        return self.admission is not None and self.admission.held

    @property
    def storm_key(self) -> str:
        """Whose hourly count a mail goes to: its From, else its envelope sender, else '<>' (mail from nobody)."""
        sender = self.sender
        if sender and sender.address:
            return sender.address.strip().lower()
        return self.entry.envelope.mail_from.strip().strip("<>").lower() or "<>"


# A step does one job on the mail in hand; returning an Outcome ends the mail there.
Step = Callable[[MailContext], Awaitable[Outcome | None]]
