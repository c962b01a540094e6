"""Deleting a ticket by mail ([delete], its confirmation mail, [confirm]) and restoring it; the CLI's delete,
restore and messages delete: real SMTP into a real daemon, the relay an aiosmtpd sink."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import tokens
from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.ops import retention
from mailgate.store import store_for

from .conftest import SECRET, SUPPORT, mail, send, settle, write_config
from .conftest import run_cli as cli
from .sink import AGENTS, Sink, relay_section, to, wait_mail
from .test_agent_mail import AINO, CUSTOMER, EXTRA, agent_sends, agentconfig, open_ticket, reply, rows, ticket

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]
__all__ = ["agentconfig"]  # the fixture, imported for these tests

BARTEK = "bartek@agents.test"  # billing's agent: the support queue's tickets are not his to delete


async def listed(running: Running, *args: str) -> list[int]:
    result = await cli(running, "tickets", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return [t["number"] for t in json.loads(result.output)]


async def events_of(running: Running, kind: str, ticket_id: int = 1) -> list[dict[str, object]]:
    found = await rows(running, "SELECT actor, at, data FROM events WHERE ticket_id = ? AND kind = ? ORDER BY id",
                       (ticket_id, kind))
    return [{"actor": r["actor"], "at": r["at"], **json.loads(r["data"])} for r in found]


async def customer_writes(running: Running, n: int, subject: str = "Re: [#1000] Printer on fire 1") -> None:
    raw = mail(sender=CUSTOMER, subject=subject, body=f"Any news? ({n})\n", message_id=f"<more{n}@customer.test>")
    await send(running.smtp_port, raw, [SUPPORT], sender=CUSTOMER)
    await settle(running)


async def test_delete_asks_then_confirm_hides_the_ticket_and_restore_brings_it_back(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "Duplicate of a phone call, nothing to keep.",
                          subject=f"Re: [delete] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        asked = await wait_mail(sink, AINO, "Done [#1000]")
        assert "answer this mail with [confirm] within 24 hours" in asked.text()
        assert (await ticket(running))["status"] == "new"  # asked, not done
        assert 1000 in await listed(running)
        assert not to(sink, CUSTOMER, "Duplicate")  # the words of a [delete] mail stay a note

        raw, rcpt = reply(asked, "", subject=f"Re: [confirm] {asked.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        done = await wait_mail(sink, AINO, "Done [#1000]", count=2)
        assert "#1000 deleted (was new)" in done.text()
        row = await ticket(running)
        assert (row["status"], row["deleted_from"]) == ("deleted", "new")
        assert 1000 not in await listed(running)
        assert await listed(running, "--status", "deleted") == [1000]
        [deleted] = await events_of(running, "ticket.deleted")
        assert (deleted["actor"], deleted["from"], deleted["by"]) == ("agent:aino", "new", "aino") and deleted["at"]

        # [list:all] no longer shows it; [status:open] cannot bring it back behind [restore]'s back.
        raw, rcpt = reply(done, "", subject=f"Re: [status:open] {done.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        refused = await wait_mail(sink, AINO, "Not done [#1000]")
        assert "#1000 is deleted: [restore] it first, alone" in refused.text()

        # The customer writes to the deleted ticket: a new ticket, linked to it; #1000 stays deleted.
        await customer_writes(running, 1)
        assert (await ticket(running))["status"] == "deleted"
        assert (await ticket(running, 1001))["status"] == "new"
        [follows] = await events_of(running, "ticket.follows_up", 2)
        assert follows["ticket"] == 1000
        await customer_writes(running, 2)  # and the next reply to it joins that new ticket
        assert len(await rows(running, "SELECT id FROM tickets")) == 2

        raw, rcpt = reply(done, "", subject=f"Re: [restore] {done.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        restored = await wait_mail(sink, AINO, "Done [#1000]", count=3)
        assert "#1000 restored (new)" in restored.text()
        row = await ticket(running)
        assert (row["status"], row["deleted_from"], row["deleted_at"]) == ("new", None, None)
        assert 1000 in await listed(running)
        [back] = await events_of(running, "ticket.restored")
        assert (back["actor"], back["to"]) == ("agent:aino", "new")

        # A [confirm] without a fresh [delete] deletes nothing.
        raw, rcpt = reply(restored, "", subject=f"Re: [confirm] {restored.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        nothing = await wait_mail(sink, AINO, "Not done [#1000]", count=2)
        assert "nothing to confirm" in nothing.text()
        assert (await ticket(running))["status"] == "new"


async def test_an_agent_of_another_queue_and_a_customer_cannot_delete(
    sink: Sink, agentconfig: Callable[..., Config]
) -> None:
    async with started(agentconfig()) as running:
        await open_ticket(running, sink)
        # Bartek proves himself (his signed address for #1000), but works billing only.
        rcpt = tokens.reply_address(SECRET.encode(), SUPPORT, tokens.Token("a", 1000, "bartek"))
        await agent_sends(running, mail(sender=BARTEK, to=rcpt, subject="[delete]", body="",
                                        message_id="<b1@agents.test>"), rcpt, sender=BARTEK)
        refused = await wait_mail(sink, BARTEK, "Not done [#1000]")
        assert "only agents of queue 'support' may delete or restore this ticket" in refused.text()
        result = await cli(running, "tickets", "delete", "1000", "--as", "bartek", "--yes", "--json")
        assert result.exit_code == 1 and "only agents of queue 'support'" in json.loads(result.stdout)["error"]
        # A customer's "[delete]" / "[confirm]" in a subject are words, never commands.
        await customer_writes(running, 1, "Re: [#1000] [delete] Printer on fire 1")
        await customer_writes(running, 2, "Re: [#1000] [confirm] Printer on fire 1")
        assert (await ticket(running))["status"] == "new"
        assert not await events_of(running, "ticket.delete_requested")


async def test_cli_delete_asks_restore_and_delete_one_message(sink: Sink, agentconfig: Callable[..., Config]) -> None:
    async with started(agentconfig()) as running:
        notice = await open_ticket(running, sink)
        await customer_writes(running, 1)
        declined = await cli(running, "tickets", "delete", "1000", "--as", "aino", input="n\n")
        assert declined.exit_code == 1 and (await ticket(running))["status"] != "deleted"
        result = await cli(running, "tickets", "delete", "1000", "--as", "aino", input="y\n")
        assert result.exit_code == 0, result.output
        assert (await ticket(running))["status"] == "deleted"
        again = await cli(running, "tickets", "delete", "1000", "--as", "aino", "--yes", "--json")
        assert again.exit_code == 1 and "deleted already" in json.loads(again.stdout)["error"]
        restored = await cli(running, "tickets", "restore", "1000", "--as", "aino", "--json")
        assert restored.exit_code == 0, restored.output
        assert json.loads(restored.stdout)["status"] == "new"

        shown = json.loads((await cli(running, "tickets", "show", "1000", "--json")).stdout)
        later = [m for m in shown["messages"] if m["message_id"] == "more1@customer.test"]
        assert len(later) == 1 and shown["messages"] != later
        gone = await cli(running, "messages", "delete", str(later[0]["id"]), "--as", "aino", "--json")
        assert gone.exit_code == 0, gone.output
        shown = json.loads((await cli(running, "tickets", "show", "1000", "--json")).stdout)
        assert [m["message_id"] for m in shown["messages"] if m["direction"] == "in"] == ["c1@customer.test"]
        assert shown["messages"] and shown["messages"][0]["id"] != later[0]["id"]
        assert [t["messages"] for t in json.loads((await cli(running, "tickets", "list", "--json")).stdout)] == [
            len(shown["messages"])]
        # A printout and an mbox leave it out too, numbered as `tickets show` numbers the rest.
        page = (await cli(running, "tickets", "export", "1000")).stdout
        assert "more1@customer.test" not in page and "Any news? (1)" not in page
        box = (await cli(running, "tickets", "export", "1000", "--format", "mbox")).stdout
        assert "more1@customer.test" not in box and "c1@customer.test" in box
        [event] = await events_of(running, "message.deleted")
        assert (event["actor"], event["message"]) == ("agent:aino", later[0]["id"])
        # Kept until retention: the row is there, only hidden.
        assert len(await rows(running, "SELECT id FROM messages WHERE deleted_at IS NOT NULL")) == 1
        refused = await cli(running, "messages", "delete", str(later[0]["id"]), "--as", "bartek", "--json")
        assert refused.exit_code == 1
        # The next notification of the ticket quotes the customer's latest words that are not deleted.
        raw, rcpt = reply(notice, "", subject=f"Re: [assign:cecilia] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        assigned = await wait_mail(sink, "cecilia@agents.test", "[#1000]")
        assert "Any news? (1)" not in assigned.text()


async def test_retention_purges_deleted_tickets_and_messages_like_closed_ones(
    tmp_path: Path, sink: Sink
) -> None:
    extra = relay_section(sink.port) + AGENTS + EXTRA + "\n[retention]\nclosed_after_days = 30\nbatch_size = 2\n"
    config = config_mod.load(write_config(tmp_path, extra))
    async with started(config) as running:
        await open_ticket(running, sink)
        await open_ticket(running, sink, n=2)
        await customer_writes(running, 1, "Re: [#1001] Printer on fire 2")
        await cli(running, "tickets", "delete", "1000", "--as", "aino", "--yes")
        [row] = await rows(running, "SELECT m.id FROM messages m WHERE m.message_id = 'more1@customer.test'")
        assert (await cli(running, "messages", "delete", str(row["id"]), "--as", "aino")).exit_code == 0
        on_deleted = len(await rows(running, "SELECT id FROM messages WHERE ticket_id = 1"))
        now = datetime.now(UTC)
        async with store_for(config, ManualClock(now + timedelta(days=5))) as store:
            assert (await retention.run(store, config)).messages == 0  # restorable for now
        async with store_for(config, ManualClock(now + timedelta(days=31))) as store:
            purged = await retention.run(store, config)
        assert purged.tickets == 1 and purged.messages == on_deleted + 1
        assert await rows(running, "SELECT id FROM messages WHERE ticket_id = 1 OR deleted_at IS NOT NULL") == []
        assert len(await rows(running, "SELECT id FROM messages WHERE ticket_id = 2")) >= 1  # the open one is whole
        assert (await ticket(running))["status"] == "deleted"  # the row and its events stay
