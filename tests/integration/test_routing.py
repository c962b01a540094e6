"""Routing end to end: real SMTP into a running daemon, rules applied to new tickets, trace kept, assignment."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.ops import assign
from mailgate.store import open_store

from .conftest import BILLING, SUPPORT, cli_ok, mail, run_cli, send, settle

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = pytest.mark.engines


ROUTING = """
[[queues]]
name = "general"
addresses = ["support@example.test"]
members = ["anna", "ben", "carl"]
assignment = "round-robin"

[[queues]]
name = "billing"
addresses = ["billing@example.test"]
members = ["anna", "ben"]
default_priority = "high"
assignment = "least-open"

[[queues]]
name = "hardware"

[[agents]]
id = "anna"
name = "Anna"
addresses = ["anna@example.test"]

[[agents]]
id = "ben"
name = "Ben"
addresses = ["ben@example.test"]
away = true

[[agents]]
id = "carl"
name = "Carl"
addresses = ["carl@example.test"]

[[rules]]
name = "spam"
header = { name = "X-Spam-Flag", equals = "YES" }
quarantine = true

[[rules]]
name = "vip"
sender_domain = "bigcorp.test"
priority = "urgent"
tags = ["vip"]
continue = true

[[rules]]
name = "fire"
subject = { keywords = ["fire", "smoke"] }
queue = "hardware"
category = "printer"
tags = ["fire"]
assignee = "carl"
suppress_ack = true
"""


async def ticket_row(running: Running, number: int) -> dict[str, Any]:
    async with running.store.read() as tx:
        row = await tx.one("SELECT * FROM tickets WHERE number = ?", (number,))
        assert row is not None
        data = dict(row)
        data["tags"] = [r["tag"] for r in await tx.all("SELECT tag FROM ticket_tags WHERE ticket_id = ? ORDER BY tag", (row["id"],))]
        trace = await tx.value("SELECT trace FROM ticket_routing WHERE ticket_id = ?", (row["id"],))
        data["trace"] = json.loads(trace) if trace else None
        data["events"] = [
            (e["kind"], json.loads(e["data"]))
            for e in await tx.all("SELECT kind, data FROM events WHERE ticket_id = ? ORDER BY id", (row["id"],))
        ]
        return data


async def all_tickets(running: Running) -> list[dict[str, Any]]:
    async with running.store.read() as tx:
        return [dict(r) for r in await tx.all("SELECT number, queue, assignee, quarantined FROM tickets ORDER BY id")]


@pytest.mark.asyncio
async def test_a_new_ticket_gets_queue_priority_tags_assignee_and_trace(make_config: Callable[..., Config]) -> None:
    config = make_config(ROUTING)
    async with started(config) as running:
        await send(running.smtp_port, mail(sender="Boss <boss@bigcorp.test>", message_id="<m1@bigcorp.test>"))
        await settle(running)
        (only,) = await all_tickets(running)
        ticket = await ticket_row(running, only["number"])
    assert (ticket["queue"], ticket["priority"], ticket["category"]) == ("hardware", "urgent", "printer")
    assert ticket["tags"] == ["fire", "vip"] and ticket["assignee"] == "carl"
    assert ticket["ack_suppressed"] == 1 and ticket["quarantined"] == 0
    assert ticket["detected_language"] == "en"
    trace = ticket["trace"]
    assert trace["because"] == {
        "priority": "rule 'vip'", "queue": "rule 'fire'", "category": "rule 'fire'", "assignee": "rule 'fire'",
        "ack_suppressed": "rule 'fire'",
    }
    assert [t["rule"] for t in trace["trace"]] == ["vip", "fire"]
    assert trace["trace"][1]["why"] == "subject keywords ['fire', 'smoke']: matched 'fire'"
    assert trace["assignment"] == {"agent": "carl", "strategy": "rule", "why": "a rule assigns 'carl'"}
    kinds = [k for k, _ in ticket["events"]]
    assert kinds[:3] == ["ticket.created", "ticket.routed", "ticket.assigned"]
    routed = dict(ticket["events"])["ticket.routed"]
    assert routed["rules"] == ["vip", "fire"] and routed["queue"] == "hardware"

    # `tickets show` says why: queue and priority with the rule that decided each.
    result = await run_cli(config, "tickets", "show", str(only["number"]))
    assert result.exit_code == 0, result.output
    assert "    queue = hardware: rule 'fire'" in result.output
    assert "    priority = urgent: rule 'vip'" in result.output
    assert "    rule 'vip' matched (rules.1.sender_domain): sender_domain equals 'bigcorp.test': matched 'bigcorp.test'" in result.output
    assert "  tags: fire, vip" in result.output
    result = await run_cli(config, "tickets", "show", "--json", str(only["number"]))
    data = json.loads(result.output)
    assert data["category"] == "printer" and data["routing"]["matched"] == ["vip", "fire"]


@pytest.mark.asyncio
async def test_default_queue_from_the_recipient_address_and_replies_keep_their_routing(
    make_config: Callable[..., Config],
) -> None:
    async with started(make_config(ROUTING)) as running:
        await send(running.smtp_port, mail(subject="Wrong amount", to=BILLING, message_id="<b1@customer.test>"), [BILLING])
        await settle(running)
        (first,) = await all_tickets(running)
        # A reply that would match the fire rule threads into the ticket and is not routed again.
        reply = mail(subject="Re: Wrong amount, and smoke", to=BILLING, message_id="<b2@customer.test>",
                     in_reply_to="<b1@customer.test>")
        await send(running.smtp_port, reply, [BILLING])
        await settle(running)
        assert len(await all_tickets(running)) == 1
        ticket = await ticket_row(running, first["number"])
    assert (ticket["queue"], ticket["priority"]) == ("billing", "high")
    assert ticket["trace"]["because"]["queue"] == "recipient billing@example.test feeds queue 'billing'"
    assert ticket["trace"]["because"]["priority"] == "default_priority of queue 'billing'"
    assert [k for k, _ in ticket["events"]].count("ticket.routed") == 1
    assert ticket["tags"] == [] and ticket["ack_suppressed"] == 0


@pytest.mark.asyncio
async def test_quarantined_tickets_are_kept_but_hidden(make_config: Callable[..., Config]) -> None:
    config = make_config(ROUTING)
    async with started(config) as running:
        await send(running.smtp_port, mail(subject="Cheap pills", headers={"X-Spam-Flag": "YES"}))
        await send(running.smtp_port, mail(subject="A question", message_id="<q@customer.test>"))
        await settle(running)
        spam, question = await all_tickets(running)
        spam_row = await ticket_row(running, spam["number"])
    assert spam_row["quarantined"] == 1 and spam_row["ack_suppressed"] == 1 and spam_row["assignee"] is None
    listed = await run_cli(config, "tickets", "list", "--json")
    assert [t["number"] for t in json.loads(listed.output)] == [question["number"]]
    hidden = await run_cli(config, "tickets", "list", "--json", "--quarantined")
    assert [t["number"] for t in json.loads(hidden.output)] == [spam["number"]]
    shown = await run_cli(config, "tickets", "show", str(spam["number"]))
    assert "quarantined: yes" in shown.output and "rule 'spam' matched" in shown.output


@pytest.mark.asyncio
async def test_round_robin_skips_members_who_are_away(make_config: Callable[..., Config]) -> None:
    async with started(make_config(ROUTING)) as running:
        for i in range(5):
            await send(running.smtp_port, mail(subject=f"Question {i}", message_id=f"<rr{i}@customer.test>"))
            await settle(running)  # one at a time: the order of tickets is the order of the round
        assignees = [t["assignee"] for t in await all_tickets(running)]
        async with running.store.read() as tx:
            last = await tx.value("SELECT last_agent FROM queue_rotation WHERE queue = 'general'")
    assert assignees == ["anna", "carl", "anna", "carl", "anna"]  # ben is away
    assert last == "anna"


@pytest.mark.asyncio
async def test_round_robin_state_survives_a_restart(make_config: Callable[..., Config]) -> None:
    config = make_config(ROUTING)
    async with started(config) as running:
        await send(running.smtp_port, mail(subject="One", message_id="<s1@customer.test>"))
        await settle(running)
    async with started(config) as running:
        await send(running.smtp_port, mail(subject="Two", message_id="<s2@customer.test>"))
        await settle(running)
        assert [t["assignee"] for t in await all_tickets(running)] == ["anna", "carl"]


@pytest.mark.asyncio
async def test_least_open_counts_open_tickets_of_members_present(make_config: Callable[..., Config]) -> None:
    routing = ROUTING.replace('addresses = ["ben@example.test"]\naway = true', 'addresses = ["ben@example.test"]')
    async with started(make_config(routing)) as running:
        async def one(i: int) -> str:
            await send(running.smtp_port, mail(subject=f"Bill {i}", to=BILLING, message_id=f"<lo{i}@c.test>"), [BILLING])
            await settle(running)
            return str((await all_tickets(running))[-1]["assignee"])

        assert [await one(0), await one(1), await one(2)] == ["anna", "ben", "anna"]
        for ticket in await all_tickets(running):  # anna resolves her tickets: she is the least loaded now
            if ticket["assignee"] == "anna":
                await cli_ok(running, "tickets", "status", str(ticket["number"]), "resolved", "--as", "anna")
        assert [await one(3), await one(4), await one(5)] == ["anna", "anna", "ben"]


@pytest.mark.asyncio
async def test_no_member_present_leaves_the_ticket_unassigned(make_config: Callable[..., Config]) -> None:
    config = make_config(ROUTING.replace('addresses = ["carl@example.test"]', 'addresses = ["carl@example.test"]\naway = true')
                         .replace('addresses = ["anna@example.test"]', 'addresses = ["anna@example.test"]\naway = true'))
    async with started(config) as running:
        await send(running.smtp_port, mail(subject="Hello", message_id="<away@c.test>"))
        await settle(running)
        (t,) = await all_tickets(running)
        row = await ticket_row(running, t["number"])
    assert row["assignee"] is None and row["queue"] == "general"
    assert row["trace"]["assignment"]["why"] == "no member of queue 'general' is available (all away)"


@pytest.mark.asyncio
async def test_an_unknown_assignee_is_refused_not_stored(make_config: Callable[..., Config]) -> None:
    config = make_config(ROUTING)
    with pytest.raises(assign.UnknownAgent, match="no agent 'zed' in the config \\(agents: anna, ben, carl\\)"):
        assign.check_agent(config, "zed")
    store = await open_store(config)
    try:
        async with store.txn() as tx:
            result = await assign.choose(tx, config, "general", explicit="zed")
    finally:
        await store.close()
    assert result.agent is None and result.strategy == "refused"


@pytest.mark.asyncio
async def test_tickets_without_rules_still_get_their_default_queue(make_config: Callable[..., Config]) -> None:
    config = make_config('\n[[queues]]\nname = "general"\naddresses = ["support@example.test"]\n')
    async with started(config) as running:
        await send(running.smtp_port, mail(message_id="<plain@c.test>"), [SUPPORT])
        await settle(running)
        (t,) = await all_tickets(running)
        row = await ticket_row(running, t["number"])
    assert row["queue"] == "general" and row["priority"] == "normal" and row["assignee"] is None
    assert row["trace"]["evaluated"] == 0 and row["trace"]["trace"] == []
