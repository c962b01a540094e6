"""Routing rules: ordered predicates over a new message → queue, priority, tags …, with an explain trace; pure.

facts (what conditions look at) → matchers and conditions (compiled once per config) → ruleset
→ route (the decision) → outcome (Routing and its trace) → report (what `rules test` prints).
"""

from __future__ import annotations

from mailgate.rules.conditions import Condition, Verdict
from mailgate.rules.facts import Facts
from mailgate.rules.outcome import Routing, RuleTrace
from mailgate.rules.route import route
from mailgate.rules.ruleset import Rule, RuleSet, compile_rules

__all__ = ["Condition", "Facts", "Routing", "Rule", "RuleSet", "RuleTrace", "Verdict", "compile_rules", "route"]
