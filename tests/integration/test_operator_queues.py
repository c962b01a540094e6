"""Queues an operator can see and steer: `mailgate outbox list|show|retry|cancel` (mailq, postsuper)
and `mailgate spool list|show` (postcat), with the reasons kept across a retry.

Real SMTP into a running daemon; the relay is an aiosmtpd sink that refuses some recipients as
real MTAs do (a permanent 550, a temporary 451), and one message always fails processing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from click.testing import CliRunner, Result

from mailgate import config as config_mod
from mailgate.cli.main import main
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.pipeline.process import Outcome, Processor
from mailgate.spool import SpoolEntry

from .conftest import SUPPORT, mail, run_cli, send, settle, wait_until, write_config
from .sink import AGENTS, Sink, relay_section, running_sink, wait_mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

GONE = "gone@customer.test"  # the relay answers 550: the acknowledgement fails for good
LATER = "later@customer.test"  # the relay answers 451: the acknowledgement waits for its retry
UNWANTED = "unwanted@customer.test"  # 451 too; the operator cancels it
# A real MX's multi-line refusal (aiosmtpd sends each line as 550-...; the last as 550 ...).
GONE_REPLY = ("550-5.1.1 <gone@customer.test>: Recipient address rejected: User unknown\r\n"
              "550 5.1.1 See https://help.mx.example.test/nouser")
REFUSALS = {
    GONE: GONE_REPLY,
    LATER: "451 4.3.0 greylisted, come back later",
    UNWANTED: "451 4.3.0 greylisted, come back later",
}


@pytest_asyncio.fixture
async def relay() -> AsyncIterator[Sink]:
    sink = Sink(refuse=lambda rcpt: REFUSALS.get(rcpt.lower()))
    async with running_sink(sink) as s:
        yield s


def queues_config(tmp_path: Path, port: int) -> Config:
    # Retries an hour apart: a refused mail waits visibly in the queue until the operator acts.
    extra = relay_section(port, send_delay=0, retry_base=3600.0, retry_max=3600.0) + AGENTS
    return config_mod.load(write_config(tmp_path, extra))


async def cli(config: Config, *args: str) -> Result:
    # click's own Result: `--raw` prints the stored bytes, which only its stdout_bytes keeps as they are.
    result = await asyncio.to_thread(CliRunner().invoke, main, ["--config", str(config.source), *args])
    assert result.exit_code == 0, (args, result.output)
    return result


async def cli_json(config: Config, *args: str) -> object:
    return json.loads((await cli(config, *args, "--json")).stdout)


async def outbox_row(running: Running, rcpt: str) -> dict:
    async with running.store.read() as tx:
        row = await tx.one("SELECT * FROM outbox WHERE rcpt_to = ? ORDER BY id DESC LIMIT 1", (rcpt,))
    return dict(row) if row else {}


async def wait_state(running: Running, rcpt: str, state: str, timeout: float = 30) -> dict:
    async def reached() -> dict | None:
        row = await outbox_row(running, rcpt)
        return row if row.get("state") == state and row.get("last_error") else None

    return await wait_until(reached, timeout=timeout, what=f"the mail to {rcpt} {state}, with its error")


async def ticket_events(config: Config, number: int) -> list[dict]:
    shown = await cli_json(config, "tickets", "show", str(number))
    assert isinstance(shown, dict)
    return list(shown["events"])


async def test_outbox_shows_refused_mail_with_its_reason_and_retry_and_cancel_work(tmp_path: Path, relay: Sink) -> None:
    config = queues_config(tmp_path, relay.port)
    async with started(config) as running:
        for n, customer in enumerate((GONE, LATER, UNWANTED, "ok@customer.test")):
            await send(running.smtp_port, mail(sender=f"Customer <{customer}>", subject=f"Help {n}",
                                               message_id=f"<help{n}@customer.test>"))
        await settle(running)
        await wait_mail(relay, "ok@customer.test", "Help 3")
        gone = await wait_state(running, GONE, "failed")
        later = await wait_state(running, LATER, "queued")
        unwanted = await wait_state(running, UNWANTED, "queued")

        # list: every row with its state, ticket, tries and reason; the filters narrow it.
        listed = await cli_json(config, "outbox", "list")
        assert isinstance(listed, list)
        by_id = {r["id"]: r for r in listed}
        assert by_id[gone["id"]]["state"] == "failed" and "User unknown" in by_id[gone["id"]]["last_error"]
        assert by_id[later["id"]]["state"] == "queued" and "greylisted" in by_id[later["id"]]["last_error"]
        assert {r["state"] for r in listed} >= {"failed", "queued", "sent"}
        assert [r["id"] for r in await cli_json(config, "outbox", "list", "--state", "failed")] == [gone["id"]]
        assert [r["id"] for r in await cli_json(config, "outbox", "failed")] == [gone["id"]]  # the old name
        number = by_id[later["id"]]["number"]
        of_ticket = await cli_json(config, "outbox", "list", "--ticket", str(number))
        assert later["id"] in {r["id"] for r in of_ticket} and {r["number"] for r in of_ticket} == {number}
        acks = await cli_json(config, "outbox", "list", "--ticket", str(number), "--kind", "ack")
        assert [r["id"] for r in acks] == [later["id"]]
        assert all(r["kind"] == "ack" for r in await cli_json(config, "outbox", "list", "--kind", "ack"))
        assert len(await cli_json(config, "outbox", "list", "--limit", "1")) == 1
        text = (await cli(config, "outbox", "list")).stdout
        line = next(x for x in text.splitlines() if x.split()[0] == str(later["id"]))
        assert "queued" in line and "in " in line and LATER in line and "greylisted" in line

        # show: every field and the headers of the bytes handed to the relay; --raw the bytes.
        shown = await cli_json(config, "outbox", "show", str(gone["id"]))
        assert isinstance(shown, dict)
        assert shown["rcpt_to"] == GONE and shown["state"] == "failed" and "User unknown" in shown["last_error"]
        assert f"To: {GONE}" in shown["headers"] or GONE in shown["headers"]
        assert "Subject:" in shown["headers"] and shown["size"] == len(gone["raw"])
        # Each line of the relay's answer readable in `show`, continued under the value; one line in `list`.
        shown_text = (await cli(config, "outbox", "show", str(gone["id"]))).stdout
        assert "User unknown" in shown_text
        assert "\n" + " " * 14 + "5.1.1 See https://help.mx.example.test/nouser" in shown_text
        assert sum(str(gone["id"]) == x.split()[0] for x in text.splitlines()[1:]) == 1
        assert (await cli(config, "outbox", "show", str(gone["id"]), "--raw")).stdout_bytes == bytes(gone["raw"])

        # cancel: a waiting mail never goes; the ticket records who cancelled it.
        cancelled = await cli_json(config, "outbox", "cancel", str(unwanted["id"]), str(gone["id"]))
        # A failed row is not cancelled (nothing would send it); the reply says so.
        assert cancelled == {"ok": True, "cancelled": 1, "ids": [unwanted["id"]], "left": {str(gone["id"]): "failed"}}
        assert (await outbox_row(running, UNWANTED))["state"] == "cancelled"
        unwanted_ticket = by_id[unwanted["id"]]["number"]
        events = await ticket_events(config, unwanted_ticket)
        assert any(e["kind"] == "mail.cancelled" and e["actor"] == "cli" for e in events)

        # retry: the relay accepts again; the failed mail and the one waiting an hour go now.
        relay.refuse = None
        retried = await cli_json(config, "outbox", "retry", str(gone["id"]), str(later["id"]), str(unwanted["id"]))
        assert isinstance(retried, dict) and retried["requeued"] == 2
        assert sorted(retried["ids"]) == sorted([gone["id"], later["id"]])
        assert retried["left"] == {str(unwanted["id"]): "cancelled"}
        await wait_mail(relay, GONE, "Help 0")
        await wait_mail(relay, LATER, "Help 1")
        assert not relay.to(UNWANTED)
        sent = await cli_json(config, "outbox", "show", str(gone["id"]))
        assert isinstance(sent, dict) and sent["state"] == "sent" and sent["retries"] == 1
        events = await ticket_events(config, by_id[gone["id"]]["number"])
        requeued = next(e for e in events if e["kind"] == "mail.requeued")
        assert "User unknown" in json.dumps(requeued)


async def test_outbox_commands_refuse_bad_input_in_json(tmp_path: Path, relay: Sink) -> None:
    config = queues_config(tmp_path, relay.port)
    async with started(config):
        pass
    for args in (["outbox", "show", "999"], ["outbox", "show", "0"], ["outbox", "retry", "-1"],
                 ["outbox", "list", "--state", "bogus"], ["spool", "show", "999"], ["spool", "list", "--limit", "0"]):
        result = await run_cli(config, *args, "--json")
        assert result.exit_code != 0, args
        reply = json.loads(result.stdout.splitlines()[0])
        assert reply["ok"] is False and reply["error"], args
    # More ids than SQLite binds in one statement (xargs output): answered, not an error.
    many = [str(i) for i in range(1, 1201)]
    for verb in ("retry", "cancel"):
        result = await run_cli(config, "outbox", verb, *many, "--json")
        assert result.exit_code == 0, result.output
        assert len(json.loads(result.stdout)["left"]) == 1200
    spooled = await run_cli(config, "spool", "retry", *many, "--json")
    assert json.loads(spooled.stdout) == {"ok": True, "requeued": 0}


class PoisonedProcessor(Processor):
    """Processing with a bug that one message triggers every time."""

    async def process(self, entry: SpoolEntry) -> Outcome:
        if b"Subject: poison" in entry.raw:
            raise RuntimeError("a bug this message triggers")
        return await super().process(entry)


async def wait_spool(running: Running, spool_id: int, state: str, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            running.worker.wake()
            running.worker.idle.clear()
            await running.worker.idle.wait()
            async with running.store.read() as tx:
                if await tx.value("SELECT state FROM spool WHERE id = ?", (spool_id,)) == state:
                    return


async def test_a_dead_spool_row_is_listed_shown_and_keeps_its_error_across_a_retry(tmp_path: Path, relay: Sink) -> None:
    config = queues_config(tmp_path, relay.port)
    poison = mail(sender="Pia Poison <pia@customer.test>", subject="poison", message_id="<poison@customer.test>")
    async with started(config) as running:
        running.worker.processor = PoisonedProcessor(config, running.store)
        await send(running.smtp_port, poison, sender="pia@customer.test")
        await send(running.smtp_port, mail(subject="Fine", message_id="<fine@customer.test>"))
        await settle(running)
        listed = await cli_json(config, "spool", "list")
        assert isinstance(listed, list)
        dead_id = next(r["id"] for r in listed if r["mail_from"] == "pia@customer.test")
        await wait_spool(running, dead_id, "dead")

        dead = await cli_json(config, "spool", "list", "--state", "dead")
        assert [(r["id"], r["attempts"]) for r in dead] == [(dead_id, 5)]
        assert "RuntimeError: a bug this message triggers" in dead[0]["error"]
        done = await cli_json(config, "spool", "list", "--state", "done")
        assert len(done) == 1 and done[0]["ticket"] is not None  # the message it made, by ticket number
        text = (await cli(config, "spool", "list", "--state", "failed")).stdout
        assert "dead" in text and "RuntimeError" in text and "pia@customer.test" in text

        shown = await cli_json(config, "spool", "show", str(dead_id))
        assert isinstance(shown, dict)
        assert shown["mail_from"] == "pia@customer.test" and shown["rcpt_to"] == [SUPPORT]
        assert shown["source"] == "smtp" and shown["peer"] == "127.0.0.1" and shown["size"] == len(poison)
        assert shown["state"] == "dead" and shown["attempts"] == 5 and "RuntimeError" in shown["error"]
        assert "Subject: poison" in shown["headers"] and "the printer is on fire" not in shown["headers"]
        text = (await cli(config, "spool", "show", str(dead_id))).stdout
        assert "peer:" in text and "RuntimeError" in text and "Subject: poison" in text

        # The bug is fixed; the retry keeps why the row died the first time.
        running.worker.processor = Processor(config, running.store)
        assert await cli_json(config, "spool", "retry", str(dead_id)) == {"ok": True, "requeued": 1}
        await wait_spool(running, dead_id, "done")
        await wait_mail(relay, "pia@customer.test", "poison")
        shown = await cli_json(config, "spool", "show", str(dead_id))
        assert isinstance(shown, dict)
        assert shown["state"] == "done" and shown["error"] is None and shown["retries"] == 1
        assert "RuntimeError: a bug this message triggers" in shown["last_error"]
        assert shown["ticket"] is not None and "poison@customer.test" in shown["message_id"]
        # A sender's control characters and 8-bit bytes: shown escaped, never sent to the terminal.
        evil = (b"From: Eve <eve@customer.test>\r\nTo: " + SUPPORT.encode()
                + b"\r\nSubject: \x1b[2J\x1b]0;owned\x07 caf\xe9\r\nMessage-ID: <evil@customer.test>\r\n\r\nhi\r\n")
        await send(running.smtp_port, evil, sender="eve@customer.test")
        await settle(running)
        spooled = await cli_json(config, "spool", "list")
        evil_id = next(r["id"] for r in spooled if r["mail_from"] == "eve@customer.test")
        text = (await cli(config, "spool", "show", str(evil_id))).stdout
        assert "\x1b" not in text and "\x07" not in text and "\\x1b[2J" in text and "caf\ufffd" in text
        assert (await cli(config, "spool", "show", str(evil_id), "--raw")).stdout_bytes == evil
    # postcat: the bytes exactly as received, through a real stdout.
    raw = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mailgate", "--config", str(config.source), "spool", "show",
                         str(dead_id), "--raw"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == poison
