"""A rule's condition tree: leaves, all/any/not, and the verdict that explains an outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mailgate.config import MATCH_FIELDS, ConditionFields, MatchConfig
from mailgate.rules.facts import Facts
from mailgate.rules.matchers import Matcher

_SHOW = 60  # characters of a value shown in an explanation


class Condition(Protocol):
    """One node of a rule's condition tree, named by its dotted config key."""

    @property
    def key(self) -> str: ...

    def test(self, facts: Facts) -> bool:
        """Whether it holds; the fast path, building nothing."""
        ...

    def check(self, facts: Facts) -> Verdict:
        """Whether it holds and why; for traces."""
        ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one condition, with what is needed to explain it (formatted only when asked)."""

    matched: bool
    node: Condition
    hit: str | None = None  # leaf: the text that matched
    seen: tuple[str, ...] = ()  # leaf: the values looked at
    parts: tuple[Verdict, ...] = ()  # combinators: the children that decided
    decisive: bool = False  # combinators: one child decided (else all of them together)

    def decider(self) -> Verdict:
        """The innermost condition that settled this outcome."""
        return self.parts[0].decider() if self.decisive and self.parts else self

    def why(self) -> str:
        node = self.node
        if isinstance(node, _Not):
            return f"not ({self.parts[0].why()})"
        if self.decisive and self.parts:
            return self.parts[0].why()
        if isinstance(node, (_All, _Any)):
            word = "all of" if isinstance(node, _All) else "none of"
            return f"{word}: " + "; ".join(p.why() for p in self.parts)
        if isinstance(node, _Always):
            return "no conditions: always matches"
        if isinstance(node, _Attachment):
            return f"{node.describe()}: {self.seen[0]} attachment(s)"
        if self.matched:
            return f"{node.describe()}: matched {_short(self.hit or '')!r}"
        return f"{node.describe()}: no match in {_show(node, self.seen)}"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOW else text[: _SHOW - 1] + "…"


def _show(node: Condition, seen: tuple[str, ...]) -> str:
    if not seen:
        return f"(no {node.header} header)" if isinstance(node, _Field) and node.header else "(nothing)"
    if isinstance(node, _Field) and node.field == "body":
        return f"the body ({len(seen[0])} characters)"
    shown = ", ".join(repr(_short(v)) for v in seen[:3])
    return shown + (f" and {len(seen) - 3} more" if len(seen) > 3 else "")


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    field: str
    header: str | None
    matcher: Matcher
    facts_key: str

    def test(self, facts: Facts) -> bool:
        return self.matcher.test(facts, self.facts_key)

    def check(self, facts: Facts) -> Verdict:
        seen = facts.values(self.facts_key)
        hit = self.matcher.find(seen)
        return Verdict(hit is not None, self, hit=hit, seen=seen)

    def describe(self) -> str:
        label = f"header {self.header}" if self.field == "header" else self.field
        if self.matcher.how == "present":
            return f"{label} present"
        return f"{label} {self.matcher.how} {self.matcher.text}"


@dataclass(frozen=True, slots=True)
class _Attachment:
    key: str
    expected: bool

    def test(self, facts: Facts) -> bool:
        return (facts.attachments > 0) == self.expected

    def check(self, facts: Facts) -> Verdict:
        count = facts.attachments
        return Verdict((count > 0) == self.expected, self, seen=(str(count),))

    def describe(self) -> str:
        return f"has_attachment = {str(self.expected).lower()}"


@dataclass(frozen=True, slots=True)
class _All:
    key: str
    children: tuple[Condition, ...]

    def test(self, facts: Facts) -> bool:
        for child in self.children:
            if not child.test(facts):
                return False
        return True

    def check(self, facts: Facts) -> Verdict:
        verdicts = []
        for child in self.children:
            verdict = child.check(facts)
            if not verdict.matched:
                return Verdict(False, self, parts=(verdict,), decisive=True)
            verdicts.append(verdict)
        if len(verdicts) == 1:
            return Verdict(True, self, parts=tuple(verdicts), decisive=True)
        return Verdict(True, self, parts=tuple(verdicts))

    def describe(self) -> str:
        return "all"


@dataclass(frozen=True, slots=True)
class _Any:
    key: str
    children: tuple[Condition, ...]

    def test(self, facts: Facts) -> bool:
        for child in self.children:
            if child.test(facts):
                return True
        return False

    def check(self, facts: Facts) -> Verdict:
        verdicts = []
        for child in self.children:
            verdict = child.check(facts)
            if verdict.matched:
                return Verdict(True, self, parts=(verdict,), decisive=True)
            verdicts.append(verdict)
        return Verdict(False, self, parts=tuple(verdicts))

    def describe(self) -> str:
        return "any"


@dataclass(frozen=True, slots=True)
class _Not:
    key: str
    child: Condition

    def test(self, facts: Facts) -> bool:
        return not self.child.test(facts)

    def check(self, facts: Facts) -> Verdict:
        verdict = self.child.check(facts)
        return Verdict(not verdict.matched, self, parts=(verdict,))

    def describe(self) -> str:
        return "not"


@dataclass(frozen=True, slots=True)
class _Always:
    key: str

    def test(self, facts: Facts) -> bool:
        return True

    def check(self, facts: Facts) -> Verdict:
        return Verdict(True, self)

    def describe(self) -> str:
        return "always"


def compile_condition(cond: ConditionFields, key: str) -> Condition:
    """A condition table → its node: every key given must hold."""
    nodes: list[Condition] = []
    for name in cond.condition_keys():
        if name == "has_attachment":
            assert cond.has_attachment is not None
            nodes.append(_Attachment(f"{key}.has_attachment", cond.has_attachment))
        elif name in MATCH_FIELDS:
            match: MatchConfig = getattr(cond, name)
            facts_key = f"header:{match.name.lower()}" if name == "header" and match.name else name
            nodes.append(_Field(f"{key}.{name}", name, match.name, Matcher(match), facts_key))
        elif name in ("all", "any"):
            children = tuple(compile_condition(c, f"{key}.{name}.{i}") for i, c in enumerate(getattr(cond, name)))
            nodes.append((_All if name == "all" else _Any)(f"{key}.{name}", children))
        else:
            assert cond.not_ is not None
            nodes.append(_Not(f"{key}.not", compile_condition(cond.not_, f"{key}.not")))
    if not nodes:
        return _Always(key)
    return nodes[0] if len(nodes) == 1 else _All(key, tuple(nodes))

