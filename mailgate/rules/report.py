"""What `rules test` and `check-config` print about routing: the explain trace, and the config's rule tests."""

from __future__ import annotations

from typing import Any

from mailgate.config import Config, ConfigIssue, RuleTestConfig, key_line
from mailgate.config.rule_tests import RuleTestFiles, read_rule_test_files
from mailgate.mail.parse import parse
from mailgate.rules.outcome import Routing
from mailgate.rules.route import route
from mailgate.rules.ruleset import RuleSet

_MARK = {True: "match", False: "no   ", None: "skip "}


def explain(ruleset: RuleSet, routing: Routing) -> dict[str, Any]:
    """The full trace plus what the queue's assignment strategy would do (it needs the store to decide)."""
    data = routing.to_json()
    queue = ruleset.config.queue(routing.queue) if routing.queue else None
    if routing.quarantined:
        data["assignment"] = "none: quarantined tickets are not assigned"
    elif routing.assignee:
        data["assignment"] = f"{routing.assignee} (by rule)"
    elif queue is not None and queue.assignment != "none":
        present = [a.id for a in ruleset.config.queue_members(queue) if not a.away]
        data["assignment"] = f"{queue.assignment} among {', '.join(present) or 'nobody (all away)'} when the ticket opens"
    else:
        data["assignment"] = "none"
    return data


def format_text(data: dict[str, Any]) -> str:
    """The explain trace for people: each rule, matched or not and why, then the resulting fields."""
    lines = []
    for t in data["trace"]:
        stop = "  [stop]" if t["stopped"] else ""
        where = f" ({t['condition']})" if t["condition"] else ""
        lines.append(f"{_MARK[t['matched']]} {t['rule']}{where}: {t['why']}{stop}")
        if t["actions"]:
            lines.append("        → " + ", ".join(f"{k} = {v}" for k, v in t["actions"].items()))
    if not data["trace"]:
        lines.append("(no rules configured)")
    lines.append("")
    because = data["because"]
    for key in ("queue", "priority", "category", "tags", "assignee", "ack_suppressed", "quarantined", "language"):
        value = data[key]
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        why = f"   ({because[key]})" if key in because else ""
        lines.append(f"{key + ':':<16}{value if value is not None else '-'}{why}")
    lines.append(f"{'assignment:':<16}{data['assignment']}")
    return "\n".join(lines)


def _mismatches(test: RuleTestConfig, routing: Routing) -> list[tuple[str, str]]:
    got: dict[str, Any] = {
        "queue": routing.queue,
        "priority": routing.priority,
        "category": routing.category,
        "tags": tuple(sorted(routing.tags)),
        "assignee": routing.assignee,
        "ack_suppressed": routing.ack_suppressed,
        "quarantined": routing.quarantined,
        "rules": tuple(routing.matched),
    }
    out = []
    for key, actual in got.items():
        expected = getattr(test, key)
        if key == "tags" and expected is not None:
            expected = tuple(sorted(expected))
        if expected is not None and expected != actual:
            out.append((key, f"{test.label}: expected {_show(expected)}, got {_show(actual)}"))
    return out


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return repr(value)


def run_tests(config: Config, ruleset: RuleSet, files: RuleTestFiles | None = None) -> tuple[int, list[ConfigIssue]]:
    """Run the config's [[rule_tests]]; return how many ran and every failure as a config issue.

    `files` is what the tests read (the config text and each message); by default the config
    layer reads them, so nothing here touches the disk.
    """
    if files is None:
        files = read_rule_test_files(config)
    name, text = files.name, files.text
    issues: list[ConfigIssue] = []
    for i, (test, raw) in enumerate(zip(config.rule_tests, files.messages, strict=True)):
        if isinstance(raw, str):
            key = f"rule_tests.{i}.file"
            issues.append(ConfigIssue(name, key_line(text, key), key, raw))
            continue
        routing = route(ruleset, parse(raw), test.recipients)
        for field, message in _mismatches(test, routing):
            key = f"rule_tests.{i}.{field}"
            issues.append(ConfigIssue(name, key_line(text, key), key, message))
    return len(config.rule_tests), issues
