"""The sender claims due mail in batches and records a batch in one transaction; each row keeps its own fate."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from mailgate.daemon import Running

from .conftest import AGENTS, MakeDaemon, mail, send, settle, wait_until
from .sink import Sink, wait_mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

CUSTOMERS = ["first", "gone", "later", "ok1", "ok2", "ok3"]


def one_connection(port: int) -> str:
    # One sender worker: the mail that piles up while the relay holds a DATA goes out as one batch.
    return (f'\n[relay]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\nconnections = 1\n'
            "\n[outbox]\nretry_base = 0.2\nretry_max = 0.5\nsend_delay = 30\n")


async def outbox(running: Running) -> list[dict[str, Any]]:
    async with running.store.read() as tx:
        found = await tx.all("SELECT id, kind, rcpt_to, state, attempts, last_error, sent_at FROM outbox ORDER BY id")
    return [dict(r) for r in found]


async def test_a_batch_with_a_refused_and_a_deferred_row_sends_and_records_the_rest(
    make_daemon: MakeDaemon, sink: Sink
) -> None:
    refused_later = {"later@customer.test": 1}

    def refuse(rcpt: str) -> str | None:
        if rcpt == "gone@customer.test":
            return "550 5.1.1 No such user here"
        if refused_later.get(rcpt):
            refused_later[rcpt] -= 1  # greylisting: the next try is accepted
            return "451 4.7.1 Greylisted, try again later"
        return None

    sink.refuse = refuse
    sink.hold = asyncio.Event()
    running = await make_daemon(AGENTS + one_connection(sink.port))
    await send(running.smtp_port, mail(sender="First <first@customer.test>", subject="Case first"))
    # The relay holds the first mail's DATA: everything written meanwhile waits as queued rows.
    await wait_until(lambda: sink.sessions_in_data == 1, what="the first DATA held")
    for name in CUSTOMERS[1:]:
        await send(running.smtp_port, mail(sender=f"{name.title()} <{name}@customer.test>", subject=f"Case {name}"))
    await settle(running)
    sink.hold.set()

    def settled(rows: list[dict[str, Any]]) -> bool:
        return all(r["state"] in ("sent", "failed") for r in rows) and any(r["kind"] == "failed" for r in rows)

    rows = await wait_until(lambda: _settled(running, settled), what="every row sent or failed")
    acks = {r["rcpt_to"]: r for r in rows if r["kind"] == "ack"}
    assert acks["gone@customer.test"]["state"] == "failed"
    assert "550 5.1.1" in acks["gone@customer.test"]["last_error"]
    assert acks["gone@customer.test"]["attempts"] == 1
    # Deferred once, then sent on its retry; nobody else waited for it.
    assert acks["later@customer.test"]["state"] == "sent" and acks["later@customer.test"]["attempts"] == 2
    for name in ("first", "ok1", "ok2", "ok3"):
        assert acks[f"{name}@customer.test"]["state"] == "sent"
        assert acks[f"{name}@customer.test"]["attempts"] == 1
    for name in ("ok1", "ok2", "ok3", "later"):
        await wait_mail(sink, f"{name}@customer.test", f"Case {name}")
    assert not sink.to("gone@customer.test")
    # The agents hear of the mail that could not be delivered.
    [notice] = [r for r in rows if r["kind"] == "failed"]
    assert notice["rcpt_to"] == "aino@agents.test" and notice["state"] == "sent"
    # The rows written while the relay held the first DATA went as one batch: recorded together, in
    # one transaction (their mail.sent events share its time), each with its own time of sending.
    async with running.store.read() as tx:
        recorded = Counter(r["at"] for r in await tx.all("SELECT at FROM events WHERE kind = 'mail.sent'"))
    assert max(recorded.values()) >= 8
    sent = [r["sent_at"] for r in rows if r["state"] == "sent" and r["attempts"] == 1]
    assert len(set(sent)) == len(sent)


async def _settled(running: Running, done: Any) -> list[dict[str, Any]] | None:
    rows = await outbox(running)
    return rows if done(rows) else None


async def test_a_relay_that_cannot_be_reached_is_tried_once_per_batch(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS, relay=False)  # the relay: a port nothing listens on
    await send(running.smtp_port, mail())
    await settle(running)

    def tried(rows: list[dict[str, Any]]) -> bool:
        return len(rows) == 2 and all(r["last_error"] for r in rows)

    rows = await wait_until(lambda: _settled(running, tried), what="the acknowledgement and notice tried")
    errors = sorted(r["last_error"] for r in rows)
    # The second mail of the batch waits for the same retry instead of the same connect timeout.
    assert errors[0].startswith("SMTPConnectError") and errors[1].startswith("not tried: SMTPConnectError")
    assert all(r["state"] == "queued" for r in rows)
