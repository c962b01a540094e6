"""Routing rules as the operator writes them: conditions, actions, rule tests, and the checks across them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from mailgate.config.base import PersonAddress, Priority, StrictModel

MATCH_FIELDS: tuple[str, ...] = (
    "recipient", "sender", "sender_domain", "subject", "body", "header", "language", "kind",
)
DETECTED_LANGUAGES: tuple[str, ...] = ("en", "fi", "pl", "hu", "de", "sv")
MAIL_KINDS: tuple[str, ...] = ("message", "auto-reply", "bounce", "bulk")
_CONDITION_ORDER = (
    "kind", "has_attachment", "recipient", "sender", "sender_domain", "language", "header", "subject", "body",
    "all", "any",
)


class MatchConfig(StrictModel):
    """How a field is matched: one of equals, glob, regex, keywords (a header: also its name)."""

    name: str | None = Field(default=None, pattern=r"^[!-9;-~]{1,100}$")  # header conditions only
    equals: tuple[str, ...] | None = None
    glob: tuple[str, ...] | None = None
    regex: str | None = None
    keywords: tuple[str, ...] | None = None

    @field_validator("equals", "glob", "keywords", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_matcher(self) -> MatchConfig:
        given = [k for k in ("equals", "glob", "regex", "keywords") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of equals, glob, regex, keywords (got {', '.join(given)})")
        if not given and self.name is None:
            raise ValueError("give one of equals, glob, regex, keywords")
        for key in ("equals", "glob", "keywords"):
            if getattr(self, key) == ():
                raise ValueError(f"{key!r} needs at least one value")
        return self

    @property
    def how(self) -> str:
        """Which matcher this is; 'present' for a header condition without one."""
        return next((k for k in ("equals", "glob", "regex", "keywords") if getattr(self, k) is not None), "present")


class ConditionFields(StrictModel):
    """Conditions on a new message; every key given must hold (all/any/not nest further ones)."""

    all: tuple[ConditionConfig, ...] | None = None
    any: tuple[ConditionConfig, ...] | None = None
    not_: ConditionConfig | None = Field(default=None, alias="not")
    recipient: MatchConfig | None = None
    sender: MatchConfig | None = None
    sender_domain: MatchConfig | None = None
    subject: MatchConfig | None = None
    body: MatchConfig | None = None
    header: MatchConfig | None = None
    language: MatchConfig | None = None
    kind: MatchConfig | None = None
    has_attachment: bool | None = None

    @field_validator(*MATCH_FIELDS, mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        # `subject = "x"` or `subject = ["x", "y"]` is short for `subject = { equals = ... }`.
        return {"equals": value} if isinstance(value, (str, list, tuple)) else value

    @model_validator(mode="after")
    def _consistent(self) -> ConditionFields:
        for key in MATCH_FIELDS:
            match: MatchConfig | None = getattr(self, key)
            if match is None:
                continue
            if key == "header" and match.name is None:
                raise ValueError("a header condition needs the header's 'name'")
            if key != "header" and match.name is not None:
                raise ValueError(f"'name' belongs to header conditions, not to {key!r}")
            if key != "header" and match.how == "present":
                raise ValueError(f"{key!r}: give one of equals, glob, regex, keywords")
        for key in ("all", "any"):
            if getattr(self, key) == ():
                raise ValueError(f"{key!r} needs at least one condition")
        return self

    def condition_keys(self) -> list[str]:
        """The condition keys set here, in evaluation order (cheap ones first)."""
        keys = [k for k in _CONDITION_ORDER if getattr(self, k) is not None]
        return [*keys, "not"] if self.not_ is not None else keys


class ConditionConfig(ConditionFields):
    """A nested condition (inside all, any or not)."""

    @model_validator(mode="after")
    def _not_empty(self) -> ConditionConfig:
        if not self.condition_keys():
            raise ValueError("an empty condition; give e.g. subject, sender_domain, any, not")
        return self


class RuleConfig(ConditionFields):
    """A routing rule: its conditions (none: it always matches) and what it decides for a new ticket."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,60}$")
    description: str = ""
    queue: str | None = None
    priority: Priority | None = None
    category: str | None = Field(default=None, min_length=1, max_length=60)
    tags: tuple[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,39}$")], ...] = ()
    assignee: str | None = None
    suppress_ack: bool = False
    quarantine: bool = False
    stop: bool = True
    continue_: bool = Field(default=False, alias="continue")

    @model_validator(mode="after")
    def _stop_or_continue(self) -> RuleConfig:
        if self.continue_ and self.stop and "stop" in self.model_fields_set:
            raise ValueError("'stop = true' and 'continue = true' contradict each other")
        return self

    @property
    def stops(self) -> bool:
        """Whether a match ends the evaluation (the default; `continue = true` or `stop = false` go on)."""
        return self.stop and not self.continue_

    def actions(self) -> dict[str, object]:
        """What this rule sets, for traces."""
        out: dict[str, object] = {
            k: getattr(self, k) for k in ("queue", "priority", "category", "assignee") if getattr(self, k) is not None
        }
        if self.tags:
            out["tags"] = list(self.tags)
        if self.suppress_ack:
            out["suppress_ack"] = True
        if self.quarantine:
            out["quarantine"] = True
        return out


class RuleTestConfig(StrictModel):
    """A message file and the ticket fields routing must give it; `check-config` runs these."""

    name: str | None = None
    file: Path  # relative to the config file
    recipients: tuple[PersonAddress, ...] = ()  # envelope recipients (default: none, To/Cc decide)
    queue: str | None = None
    priority: Priority | None = None
    category: str | None = None
    tags: tuple[str, ...] | None = None  # exactly these tags
    assignee: str | None = None  # as a rule decides it (strategies need the store)
    ack_suppressed: bool | None = None
    quarantined: bool | None = None
    rules: tuple[str, ...] | None = None  # exactly these rules matched, in order

    @property
    def label(self) -> str:
        return self.name or str(self.file)


def routing_errors(
    rules: tuple[RuleConfig, ...], rule_tests: tuple[RuleTestConfig, ...], queue_names: list[str], agent_ids: list[str],
) -> list[tuple[str, str]]:
    """Rules naming unknown queues or agents, patterns that do not compile, duplicate rule names."""
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            errors.append((f"rules.{i}.name", f"duplicate rule name {rule.name!r}"))
        seen.add(rule.name)
        if rule.queue is not None and rule.queue not in queue_names:
            errors.append((f"rules.{i}.queue", f"unknown queue {rule.queue!r}"))
        if rule.assignee is not None and rule.assignee not in agent_ids:
            errors.append((f"rules.{i}.assignee", f"unknown agent {rule.assignee!r}"))
        errors.extend(condition_errors(rule, f"rules.{i}"))
    for i, test in enumerate(rule_tests):
        if test.queue is not None and test.queue not in queue_names:
            errors.append((f"rule_tests.{i}.queue", f"unknown queue {test.queue!r}"))
        if test.assignee is not None and test.assignee not in agent_ids:
            errors.append((f"rule_tests.{i}.assignee", f"unknown agent {test.assignee!r}"))
        for name in test.rules or ():
            if name not in seen:
                errors.append((f"rule_tests.{i}.rules", f"unknown rule {name!r}"))
    return errors


def condition_errors(cond: ConditionFields, key: str) -> list[tuple[str, str]]:
    """Regexes that do not compile and values no message can have, in a condition and those nested in it."""
    errors: list[tuple[str, str]] = []
    for field in MATCH_FIELDS:
        match: MatchConfig | None = getattr(cond, field)
        if match is None:
            continue
        if match.regex is not None:
            try:
                re.compile(match.regex)
            except re.error as exc:
                errors.append((f"{key}.{field}.regex", f"bad regex {match.regex!r}: {exc}"))
        allowed = {"language": DETECTED_LANGUAGES, "kind": MAIL_KINDS}.get(field, ())
        for value in (match.equals or ()) if allowed else ():
            if value.lower() not in allowed:
                errors.append((f"{key}.{field}.equals", f"{value!r} is not one of {', '.join(allowed)}"))
    for combinator in ("all", "any"):
        for j, child in enumerate(getattr(cond, combinator) or ()):
            errors.extend(condition_errors(child, f"{key}.{combinator}.{j}"))
    if cond.not_ is not None:
        errors.extend(condition_errors(cond.not_, f"{key}.not"))
    return errors
