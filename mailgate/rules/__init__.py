"""Routing rules: ordered predicates over a new message → queue, priority, tags …, with an explain trace; pure."""

from __future__ import annotations

import bisect
import fnmatch
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mailgate.config import (
    MATCH_FIELDS,
    Config,
    MatchConfig,
    RuleConfig,
    _ConditionFields,
)
from mailgate.mail import language as language_mod
from mailgate.models import ParsedMail

_BODY_LIMIT = 200_000  # characters of body text that conditions look at; bounds regex cost on huge mail
_SHOW = 60
_WORDS = re.compile(r"\w+")


def _base(address: str) -> str:
    """support+token@x.example → support@x.example (lowercased)."""
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if at else address.lower()


class Facts:
    """What conditions look at in one message, computed on first use (language detection is not free).

    Values are keyed by field name, or "header:<lowercased name>" for a header.
    """

    def __init__(self, mail: ParsedMail, recipients: Sequence[str] = ()) -> None:
        self.mail = mail
        self.envelope = tuple(recipients)
        self._values: dict[str, tuple[str, ...]] = {}
        self._words: dict[str, frozenset[str]] = {}
        self._sorted: dict[str, list[str]] = {}
        self._headers: dict[str, tuple[str, ...]] | None = None
        self._language: tuple[str | None] | None = None

    def values(self, key: str) -> tuple[str, ...]:
        found = self._values.get(key)
        if found is None:
            found = self._values[key] = self._compute(key)
        return found

    def words(self, key: str) -> frozenset[str]:
        """The lowercased words of a field, for keyword conditions (one tokenizing per field)."""
        found = self._words.get(key)
        if found is None:
            found = self._words[key] = frozenset(w for v in self.values(key) for w in _WORDS.findall(v.lower()))
        return found

    def sorted_words(self, key: str) -> list[str]:
        found = self._sorted.get(key)
        if found is None:
            found = self._sorted[key] = sorted(self.words(key))
        return found

    def _compute(self, key: str) -> tuple[str, ...]:
        mail = self.mail
        if key.startswith("header:"):
            if self._headers is None:
                headers: dict[str, list[str]] = {}
                for name, value in mail.headers:
                    headers.setdefault(name.lower(), []).append(value)
                self._headers = {k: tuple(v) for k, v in headers.items()}
            return self._headers.get(key[7:], ())
        sender = mail.from_[0].address.lower() if mail.from_ and mail.from_[0].address else ""
        if key == "recipient":
            addresses = [*self.envelope, *(a.address for a in mail.to), *(a.address for a in mail.cc)]
            out = [form for a in addresses if a for form in (a.lower(), _base(a))]
            return tuple(dict.fromkeys(out))
        if key == "sender":
            return (sender,) if sender else ()
        if key == "sender_domain":
            return (sender.rpartition("@")[2],) if "@" in sender else ()
        if key == "subject":
            return (mail.subject,)
        if key == "body":
            return (mail.text[:_BODY_LIMIT],)
        if key == "language":
            detected = self.language
            return (detected,) if detected else ()
        if key == "kind":
            return (str(mail.kind),)
        raise ValueError(f"unknown field {key!r}")

    @property
    def language(self) -> str | None:
        if self._language is None:
            # The new text of a reply, not the quoted history (which may be the agent's language).
            text = f"{self.mail.subject}\n{self.mail.reply_text or self.mail.text}"
            self._language = (language_mod.detect(text),)
        return self._language[0]

    @property
    def attachments(self) -> int:
        # Inline parts are mostly signature logos; they are not what "has an attachment" means.
        return sum(1 for a in self.mail.attachments if not a.inline)


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


class _Matcher:
    """A compiled matcher: equals (case-insensitive), glob, regex (search) or keywords (whole words).

    `find` returns the matching text (for traces); `test` only decides, as cheaply as it can.
    """

    def __init__(self, match: MatchConfig) -> None:
        self.how = match.how
        self.find: Callable[[tuple[str, ...]], str | None]
        self.plain: frozenset[str] = frozenset()  # keywords that are single words: set lookups
        self.prefixes: tuple[str, ...] = ()  # "lasku*": a lookup in the sorted words
        self.rest: Callable[[tuple[str, ...]], str | None] | None = None  # phrases, punctuation: a scan
        if match.equals is not None:
            wanted = frozenset(v.casefold() for v in match.equals)
            self.find = lambda values: next((v for v in values if v.casefold() in wanted), None)
            self.text = _list(match.equals)
        elif match.glob is not None:
            self.find = _glob_finder(match.glob)
            self.text = _list(match.glob)
        elif match.regex is not None:
            self.find = _searcher(re.compile(match.regex, re.IGNORECASE))
            self.text = repr(match.regex)
        elif match.keywords is not None:
            keywords = [k.lower() for k in match.keywords if k.strip("*")]
            # "lasku*" matches lasku, laskun, laskussa: Finnish, Polish and Hungarian inflect.
            self.find = _keyword_searcher(keywords)
            self.plain = frozenset(k for k in keywords if _WORDS.fullmatch(k))
            self.prefixes = tuple(k[:-1] for k in keywords if k.endswith("*") and _WORDS.fullmatch(k[:-1]))
            others = [k for k in keywords if k not in self.plain and k[:-1] not in self.prefixes]
            self.rest = _keyword_searcher(others) if others else None
            self.text = _list(match.keywords)
        else:
            self.find = lambda values: values[0] if values else None
            self.text = ""

    def test(self, facts: Facts, key: str) -> bool:
        if self.how != "keywords":
            return self.find(facts.values(key)) is not None
        if self.plain and not self.plain.isdisjoint(facts.words(key)):
            return True
        if self.prefixes:
            words = facts.sorted_words(key)
            for prefix in self.prefixes:
                i = bisect.bisect_left(words, prefix)
                if i < len(words) and words[i].startswith(prefix):
                    return True
        return self.rest is not None and self.rest(facts.values(key)) is not None


def _glob_finder(globs: tuple[str, ...]) -> Callable[[tuple[str, ...]], str | None]:
    if any(c in g for g in globs for c in "?["):
        pattern = re.compile("|".join(fnmatch.translate(g) for g in globs), re.IGNORECASE)
        return lambda values: next((v for v in values if pattern.match(v)), None)
    # Only '*': match the pieces in order with str.find; fnmatch's ".*" regex backtracks on "*x*".
    pieces = [g.lower().split("*") for g in globs]

    def star(value: str, parts: list[str]) -> bool:
        first, last = parts[0], parts[-1]
        if len(parts) == 1:
            return value == first
        if len(value) < len(first) + len(last) or not value.startswith(first) or not value.endswith(last):
            return False
        at, end = len(first), len(value) - len(last)
        for part in parts[1:-1]:
            found = value.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
        return True

    return lambda values: next((v for v in values if any(star(v.lower(), p) for p in pieces)), None)


def _keyword_searcher(keywords: list[str]) -> Callable[[tuple[str, ...]], str | None]:
    words = [re.escape(k.rstrip("*")) + (r"\w*" if k.endswith("*") else "") for k in keywords]
    return _searcher(re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)", re.IGNORECASE))


def _searcher(pattern: re.Pattern[str]) -> Callable[[tuple[str, ...]], str | None]:
    def find(values: tuple[str, ...]) -> str | None:
        for value in values:
            found = pattern.search(value)
            if found is not None:
                return found.group(0)
        return None

    return find


def _list(values: tuple[str, ...]) -> str:
    return repr(values[0]) if len(values) == 1 else "[" + ", ".join(repr(v) for v in values) + "]"


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    field: str
    header: str | None
    matcher: _Matcher
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


def _compile(cond: _ConditionFields, key: str) -> Condition:
    """A condition table → its node: every key given must hold."""
    nodes: list[Condition] = []
    for name in cond.condition_keys():
        if name == "has_attachment":
            assert cond.has_attachment is not None
            nodes.append(_Attachment(f"{key}.has_attachment", cond.has_attachment))
        elif name in MATCH_FIELDS:
            match: MatchConfig = getattr(cond, name)
            facts_key = f"header:{match.name.lower()}" if name == "header" and match.name else name
            nodes.append(_Field(f"{key}.{name}", name, match.name, _Matcher(match), facts_key))
        elif name in ("all", "any"):
            children = tuple(_compile(c, f"{key}.{name}.{i}") for i, c in enumerate(getattr(cond, name)))
            nodes.append((_All if name == "all" else _Any)(f"{key}.{name}", children))
        else:
            assert cond.not_ is not None
            nodes.append(_Not(f"{key}.not", _compile(cond.not_, f"{key}.not")))
    if not nodes:
        return _Always(key)
    return nodes[0] if len(nodes) == 1 else _All(key, tuple(nodes))


@dataclass(frozen=True, slots=True)
class Rule:
    """One configured rule, its conditions compiled."""

    name: str
    description: str
    condition: Condition
    config: RuleConfig
    stops: bool

    def test(self, facts: Facts) -> bool:
        return self.condition.test(facts)

    def check(self, facts: Facts) -> Verdict:
        return self.condition.check(facts)


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules compiled once per loaded config, with what routing needs from that config."""

    rules: tuple[Rule, ...]
    config: Config
    address_queues: dict[str, str] = field(default_factory=dict)


def compile_rules(config: Config) -> RuleSet:
    """Compile every rule of a (validated) config; patterns are compiled here and only here."""
    rules = tuple(
        Rule(r.name, r.description, _compile(r, f"rules.{i}"), r, r.stops) for i, r in enumerate(config.rules)
    )
    address_queues: dict[str, str] = {}
    for queue in config.queues:
        for address in queue.addresses:
            address_queues.setdefault(address, queue.name)  # the first queue an address feeds
    return RuleSet(rules, config, address_queues)


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
        return [rule.name for rule, matched in zip(self.rules, self.outcomes) if matched]

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


def route(ruleset: RuleSet, mail: ParsedMail, recipients: Sequence[str] = ()) -> Routing:
    """Evaluate the rules in order for a new ticket.

    A matching rule sets its fields (a later matching rule overrides queue, priority, category and
    assignee), adds its tags, and may suppress the acknowledgement or quarantine (these stay set).
    A match stops the evaluation unless the rule says `continue = true`.
    """
    facts = Facts(mail, recipients)
    decided: dict[str, Any] = {}
    because: dict[str, str] = {}
    tags: list[str] = []
    outcomes: list[bool] = []
    for rule in ruleset.rules:
        matched = rule.test(facts)
        outcomes.append(matched)
        if matched:
            actions = rule.config.actions()
            for key in ("queue", "priority", "category", "assignee"):
                if key in actions:
                    decided[key] = actions[key]
                    because[key] = f"rule {rule.name!r}"
            for tag in rule.config.tags:
                if tag not in tags:
                    tags.append(tag)
            for flag, key in (("suppress_ack", "ack_suppressed"), ("quarantine", "quarantined")):
                if flag in actions and key not in decided:
                    decided[key] = True
                    because[key] = f"rule {rule.name!r}"
            if rule.stops:
                break
    config = ruleset.config
    queue = decided.get("queue")
    if queue is None:
        queue, because["queue"] = _default_queue(ruleset, facts)
    priority = decided.get("priority")
    if priority is None:
        queue_config = config.queue(queue) if queue else None
        if queue_config is not None:
            priority, because["priority"] = queue_config.default_priority, f"default_priority of queue {queue!r}"
        else:
            priority, because["priority"] = "normal", "default"
    quarantined = bool(decided.get("quarantined"))
    ack_suppressed = bool(decided.get("ack_suppressed"))
    if quarantined and not ack_suppressed:
        # A quarantined ticket is not shown to agents; answering its sender would be odd.
        ack_suppressed, because["ack_suppressed"] = True, because["quarantined"]
    return Routing(
        queue=queue,
        priority=priority,
        category=decided.get("category"),
        tags=tuple(tags),
        assignee=decided.get("assignee"),
        ack_suppressed=ack_suppressed,
        quarantined=quarantined,
        language=facts.language,
        because=because,
        outcomes=tuple(outcomes),
        rules=ruleset.rules,
        facts=facts,
    )


def _default_queue(ruleset: RuleSet, facts: Facts) -> tuple[str | None, str]:
    """The queue of the support address the mail was written to: To first, then Cc, then the envelope."""
    mail = facts.mail
    # "To: support@, Cc: billing@" is a mail for support that billing may read. The envelope
    # order says nothing of that: MTAs and clients sort or group recipients (by domain, Bcc
    # last, alphabetically), so billing@ can come first there. A header address counts only when
    # the mail really came to it (a Bcc to support@ with "To: billing@" is billing's copy, not
    # ours); with no envelope (an import) the headers alone decide.
    received = {_base(a) for a in facts.envelope if a}
    written = [_base(a.address) for a in (*mail.to, *mail.cc) if a.address]
    candidates = [a for a in written if not received or a in received] + [_base(a) for a in facts.envelope if a]
    for address in candidates:
        queue = ruleset.address_queues.get(address)
        if queue is not None:
            return queue, f"recipient {address} feeds queue {queue!r}"
    default = ruleset.config.gateway.default_queue
    if default is not None:
        return default, "gateway.default_queue (no queue is fed by the recipient address)"
    return None, "no queue is fed by the recipient address and there is no gateway.default_queue"
