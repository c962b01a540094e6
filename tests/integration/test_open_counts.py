"""Least-open assignment reads a per-agent count the database keeps in step with every ticket change."""

from __future__ import annotations

import re

import pytest

from mailgate.daemon import Running
from mailgate.models import CLOSED_STATUSES
from mailgate.store import assignment

from .conftest import REPO, MakeDaemon, cli_ok, mail, send, settle

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = pytest.mark.engines


LEAST_OPEN = """
[[queues]]
name = "support"
addresses = ["support@example.test"]
members = ["anna", "ben"]
assignment = "least-open"

[[agents]]
id = "anna"
name = "Anna"
addresses = ["anna@agents.test"]

[[agents]]
id = "ben"
name = "Ben"
addresses = ["ben@agents.test"]
"""


async def counts(running: Running) -> tuple[dict[str, int], dict[str, int]]:
    """(what least-open reads, what counting the tickets gives)."""
    async with running.store.read() as tx:
        return await assignment.open_load(tx, ["anna", "ben"]), await assignment.recount(tx)


async def assignee(running: Running, number: int) -> str | None:
    async with running.store.read() as tx:
        value = await tx.value("SELECT assignee FROM tickets WHERE number = ?", (number,))
    return None if value is None else str(value)


def test_the_triggers_open_set_is_the_models_open_set() -> None:
    sql = (REPO / "mailgate" / "store" / "sql" / "0014_open_counts.sql").read_text()
    lists = {frozenset(re.findall(r"'(\w+)'", found)) for found in re.findall(r"status NOT IN \(([^)]*)\)", sql)}
    assert lists == {frozenset(str(s) for s in CLOSED_STATUSES)}


@pytest.mark.asyncio
async def test_the_count_follows_assign_close_reopen_merge_and_spam(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(LEAST_OPEN, relay=False)
    for i in range(4):
        await send(running.smtp_port, mail(sender="Cora <cora@customer.test>", subject=f"Case {i}"))
        await settle(running)
    # Least-open alternates while both hold as many.
    assert [await assignee(running, n) for n in range(1000, 1004)] == ["anna", "ben", "anna", "ben"]
    load, truth = await counts(running)
    assert load == truth == {"anna": 2, "ben": 2}

    await cli_ok(running, "tickets", "assign", "1000", "ben", "--as", "ben")
    await cli_ok(running, "tickets", "status", "1001", "closed", "--as", "ben")
    await cli_ok(running, "tickets", "assign", "1002", "none", "--as", "anna")
    load, truth = await counts(running)
    assert load == truth == {"ben": 2}
    # Anna holds none now: the next ticket is hers.
    await send(running.smtp_port, mail(sender="Dan <dan@customer.test>", subject="Next"))
    await settle(running)
    assert await assignee(running, 1004) == "anna"

    await cli_ok(running, "tickets", "status", "1001", "open", "--as", "ben")  # reopened: Ben's again
    await cli_ok(running, "tickets", "merge", "1003", "1000", "--agent", "ben")
    await cli_ok(running, "tickets", "tag", "1004", "+spam", "--as", "anna")
    load, truth = await counts(running)
    assert load == truth
    assert load.get("ben") == 2  # 1000 and the reopened 1001; 1003 went into 1000
