"""Queues and agents: who works which mail, when, and within which deadlines."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from mailgate.config.base import (
    Ident,
    Language,
    MailAddress,
    PersonAddress,
    Priority,
    StrictModel,
    TimeZoneName,
    Weekday,
)


class SlaTimes(StrictModel):
    """Action times for one priority, in minutes."""

    first_response: int | None = Field(default=None, gt=0)
    resolution: int | None = Field(default=None, gt=0)


class BusinessHoursConfig(StrictModel):
    """When a queue works: SLA deadlines count only these minutes."""

    days: tuple[Weekday, ...] = Field(default=("mon", "tue", "wed", "thu", "fri"), min_length=1)
    start: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="17:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    timezone: TimeZoneName = "UTC"
    holidays: tuple[date, ...] = ()  # whole days off, in the queue's time zone

    @model_validator(mode="after")
    def _order(self) -> BusinessHoursConfig:
        if self.end > "24:00" or self.end <= self.start:
            raise ValueError(f"end {self.end!r} must be after start {self.start!r} (overnight shifts: not supported)")
        return self


class QueueConfig(StrictModel):
    """A queue (department): the support addresses that feed it and the agents who work it."""

    name: Ident
    addresses: tuple[MailAddress, ...] = ()
    members: tuple[Ident, ...] = ()
    language: Language | None = None
    default_priority: Priority = "normal"
    acknowledge: bool = True  # an acknowledgement to the customer when a ticket opens
    notify: bool = True  # notifications to the agents
    resolution_notice: bool = True  # a notice to the customer when the ticket is resolved
    sla: dict[Priority, SlaTimes] = Field(default_factory=dict)
    assignment: Literal["none", "round-robin", "least-open"] = "none"
    business_hours: BusinessHoursConfig | None = None  # SLA clocks count only these


class AgentConfig(StrictModel):
    """An agent: who may act on tickets by mail, from which addresses, in which queues."""

    id: Ident
    name: str
    addresses: tuple[PersonAddress, ...] = Field(min_length=1)
    queues: tuple[Ident, ...] = ()
    away: bool = False
    language: Language | None = None
    # Whether the agent's own signature block (under "-- ") reaches the customer with their words.
    # Off by default: the reply template signs every answer, and a personal signature often holds a
    # direct phone number or internal notes the team does not hand out.
    keep_signature: bool = False


