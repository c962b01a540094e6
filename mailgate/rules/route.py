"""Route a new message: evaluate the rules in order and fill in the queue's defaults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailgate.models import ParsedMail
from mailgate.rules.facts import Facts, base_address
from mailgate.rules.outcome import Routing
from mailgate.rules.ruleset import RuleSet


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
    received = {base_address(a) for a in facts.envelope if a}
    written = [base_address(a.address) for a in (*mail.to, *mail.cc) if a.address]
    candidates = [a for a in written if not received or a in received] + [base_address(a) for a in facts.envelope if a]
    for address in candidates:
        queue = ruleset.address_queues.get(address)
        if queue is not None:
            return queue, f"recipient {address} feeds queue {queue!r}"
    default = ruleset.config.gateway.default_queue
    if default is not None:
        return default, "gateway.default_queue (no queue is fed by the recipient address)"
    return None, "no queue is fed by the recipient address and there is no gateway.default_queue"
