"""Rules compiled once per loaded config: conditions, actions, and the address → queue map."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailgate.config import Config, RuleConfig
from mailgate.rules.conditions import Condition, Verdict, compile_condition
from mailgate.rules.facts import Facts


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
        Rule(r.name, r.description, compile_condition(r, f"rules.{i}"), r, r.stops) for i, r in enumerate(config.rules)
    )
    address_queues: dict[str, str] = {}
    for queue in config.queues:
        for address in queue.addresses:
            address_queues.setdefault(address, queue.name)  # the first queue an address feeds
    return RuleSet(rules, config, address_queues)

