"""A deleted ticket refuses every operation but [restore], in the same words by mail and by the CLI
(with or without --as): real SMTP into a real daemon, the relay an aiosmtpd sink."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from mailgate.config import Config
from mailgate.daemon import started

from .conftest import run_cli as cli
from .sink import Sink, wait_mail
from .test_agent_mail import AINO, agent_sends, agentconfig, open_ticket, reply, rows, ticket
from .test_delete_restore import customer_writes

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]
__all__ = ["agentconfig"]  # the fixture, imported for these tests

GONE = "#1000 is deleted: [restore] it first, alone"


async def test_every_operation_on_a_deleted_ticket_is_refused_alike_by_cli_and_mail(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        await customer_writes(running, 1)  # two customer messages: one could be split off
        await open_ticket(running, sink, n=2)  # the same customer's #1001: #1000 could be merged into it
        made = await cli(running, "tickets", "task", "1000", "support", "--due", "3d", "--text", "Call back",
                         "--as", "aino", "--json")
        assert made.exit_code == 0, made.output
        [task] = await rows(running, "SELECT id FROM tasks")
        [later] = await rows(running, "SELECT id FROM messages WHERE message_id = 'more1@customer.test'")
        assert (await cli(running, "tickets", "delete", "1000", "--as", "aino", "--yes")).exit_code == 0

        attempts = [
            ("tickets", "split", "1000", str(later["id"])),  # an operator, without --as
            ("tickets", "merge", "1000", "1001"),
            ("tickets", "snooze", "1000", "3d"),
            ("tickets", "split", "1000", str(later["id"]), "--as", "aino"),
            ("tickets", "merge", "1000", "1001", "--as", "aino"),
            ("tickets", "forward", "1000", "partner@example.test", "--as", "aino"),
            ("tickets", "help", "1000", "cecilia", "--as", "aino"),
            ("tickets", "task", "1000", "support", "--due", "3d", "--text", "Again", "--as", "aino"),
            ("tickets", "task-done", str(task["id"]), "--as", "aino"),
            ("tickets", "snooze", "1000", "3d", "--as", "aino"),
        ]
        for args in attempts:
            result = await cli(running, *args, "--json")
            assert result.exit_code == 1, (args, result.output)
            assert GONE in json.loads(result.stdout)["error"], (args, result.stdout)

        raw, rcpt = reply(notice, "Please check the invoice too.",
                          subject=f"Re: [split] [snooze:3d] [merge:#1001] [forward:partner@example.test]"
                                  f" [task:support due:3d] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        refused = await wait_mail(sink, AINO, "Not done [#1000]")
        for tag in ("[split]", "[snooze:", "[merge:", "[forward:partner@example.test]", "[task:support"):
            assert any(line.lstrip().startswith(tag) and GONE in line for line in refused.text().splitlines()), tag

        # Nothing happened: no ticket split off, no merge, no wait, the task still open, nothing forwarded.
        assert (await ticket(running))["status"] == "deleted"
        assert (await ticket(running, 1001))["status"] == "new"
        assert len(await rows(running, "SELECT id FROM tickets")) == 2
        assert [r["status"] for r in await rows(running, "SELECT status FROM tasks")] == ["open"]
        assert not sink.to("partner@example.test")

        # [restore] alone is the way back; then the same split works.
        assert (await cli(running, "tickets", "restore", "1000", "--as", "aino")).exit_code == 0
        result = await cli(running, "tickets", "split", "1000", str(later["id"]), "--json")
        assert result.exit_code == 0, result.output
