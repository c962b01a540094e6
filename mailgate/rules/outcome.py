"""What the rules decided for a new ticket, and the explain trace behind it (built only when asked)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailgate.rules.conditions import Verdict
from mailgate.rules.facts import Facts
from mailgate.rules.ruleset import Rule


@dataclass(slots=True)
class RuleTrace:
    """One rule in the explain trace: matched or not (None: not evaluated), and which condition decided."""

    rule: str
    matched: bool | None
    actions: dict[str, Any]
    stopped: bool = False
    stopped_by: str | None = None  # for a rule not evaluated
    # Explaining costs more than deciding: it is done only when the trace is shown or stored.
    explain: Callable[[], Verdict] | None = field(default=None, repr=False, compare=False)
    _verdict: Verdict | None = field(default=None, repr=False, compare=False)

    @property
    def verdict(self) -> Verdict | None:
        if self._verdict is None and self.explain is not None:
            self._verdict = self.explain()
        return self._verdict

    @property
    def condition(self) -> str:
        return self.verdict.decider().node.key if self.verdict is not None else ""

    @property
    def why(self) -> str:
        if self.verdict is None:
            return f"not evaluated: rule {self.stopped_by!r} stopped"
        return self.verdict.why()

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "matched": self.matched, "condition": self.condition, "why": self.why,
            "actions": self.actions, "stopped": self.stopped,
        }


@dataclass(frozen=True, slots=True)
class Routing:
    """What the rules decided for a new ticket, why, and the whole trace."""

    queue: str | None
    priority: str
    category: str | None
    tags: tuple[str, ...]
    assignee: str | None  # a rule's explicit choice; queue strategies are applied with the store
    ack_suppressed: bool
    quarantined: bool
    language: str | None
    because: dict[str, str]  # field → what decided it
    outcomes: tuple[bool, ...]  # per evaluated rule, in order; the rest were not evaluated
    rules: tuple[Rule, ...] = field(repr=False, compare=False)
    facts: Facts = field(repr=False, compare=False)
    _traces: dict[int, RuleTrace] = field(default_factory=dict, repr=False, compare=False)

    @property
    def matched(self) -> list[str]:
        return [rule.name for rule, matched in zip(self.rules, self.outcomes, strict=False) if matched]

    @property
    def trace(self) -> tuple[RuleTrace, ...]:
        """Every rule, matched or not or not evaluated; built on demand (deciding needs none of it)."""
        return tuple(self._trace(i) for i in range(len(self.rules)))

    def _trace(self, i: int) -> RuleTrace:
        found = self._traces.get(i)
        if found is None:
            rule = self.rules[i]
            if i < len(self.outcomes):
                matched = self.outcomes[i]
                actions = rule.config.actions() if matched else {}
                explain = functools.partial(rule.check, self.facts)
                found = RuleTrace(rule.name, matched, actions, matched and rule.stops, explain=explain)
            else:
                found = RuleTrace(rule.name, None, {}, stopped_by=self.rules[len(self.outcomes) - 1].name)
            self._traces[i] = found
        return found

    def to_json(self, *, full: bool = True) -> dict[str, Any]:
        """As JSON; `full=False` keeps only the rules that matched (what a ticket stores)."""
        shown = range(len(self.rules)) if full else [i for i, m in enumerate(self.outcomes) if m]
        return {
            "queue": self.queue,
            "priority": self.priority,
            "category": self.category,
            "tags": list(self.tags),
            "assignee": self.assignee,
            "ack_suppressed": self.ack_suppressed,
            "quarantined": self.quarantined,
            "language": self.language,
            "because": dict(self.because),
            "matched": self.matched,
            "evaluated": len(self.outcomes),
            "rules": len(self.rules),
            "trace": [self._trace(i).to_json() for i in shown],
        }
