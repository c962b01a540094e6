"""Outgoing mail never stops: non-ASCII and garbled senders, a restart with such rows first, CLI mail.

Before, one acknowledgement to a non-ASCII address raised UnicodeEncodeError in the relay client
and killed an outbox worker for good; `relay.connections` such mails stopped all outgoing mail,
again at every restart. Each test sends the hostile mail over real SMTP to a running daemon and
checks what people see: ordinary customers' acknowledgements still reaching the relay, and the
hostile rows sent (relay with SMTPUTF8) or failed with a reason (relay without).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import smtplib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email import message_from_string, policy
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP

from mailgate import config as config_mod
from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.outgoing.relay import Relay, Result
from mailgate.pipeline.process import Outcome, Processor
from mailgate.runners.timers import Timer
from mailgate.spool import SpoolEntry
from mailgate.store import Row
from mailgate.store import timers as timer_rows

from ..conftest import SUPPORT, mail, settle, wait_until, write_config
from ..sink import AGENTS, Sink, free_port, relay_section, wait_mail

pytestmark = pytest.mark.asyncio

TRUSTED = "mx.example.test"
IDN = "juergen@xn--exmple-cua.test"  # juergen@exämple.test with its domain as an IDNA A-label


@contextlib.asynccontextmanager
async def relay_sink(*, utf8: bool, port: int = 0) -> AsyncIterator[Sink]:
    """An aiosmtpd relay that offers SMTPUTF8 (RFC 6531) or not, like real smarthosts differ."""
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="relay.test", decode_data=False, enable_SMTPUTF8=utf8, loop=loop),
        host="127.0.0.1", port=port,
    )
    sink.port = int(server.sockets[0].getsockname()[1])
    try:
        yield sink
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), timeout=5)


def outgoing_config(tmp_path: Path, relay_port: int, connections: int, **outbox: object) -> Config:
    section = relay_section(relay_port, auto_replies_per_hour=100, **outbox)
    section = section.replace("timeout = 10\n", f"timeout = 10\nconnections = {connections}\n", 1)
    return config_mod.load(write_config(tmp_path, section + AGENTS, gateway=f'authserv_id = "{TRUSTED}"\n'))


def _smtp_send(port: int, raw: bytes, sender: str, utf8: bool) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail(sender, [SUPPORT], raw, mail_options=["SMTPUTF8"] if utf8 else [])


async def send_raw(port: int, raw: bytes, sender: str, *, utf8: bool = False) -> None:
    await asyncio.to_thread(_smtp_send, port, raw, sender, utf8)


def hostile_mail(from_header: bytes, subject: str) -> bytes:
    return (
        b"From: " + from_header + b"\r\nTo: " + SUPPORT.encode() + b"\r\nSubject: " + subject.encode()
        + b"\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + subject.replace(" ", ".").encode()
        + b"@customer.test>\r\n\r\nHello, please help.\r\n"
    )


# (envelope sender, From header bytes, SMTPUTF8 on the way in, outbox rcpt, sent via an SMTPUTF8 relay?)
HOSTILE: list[tuple[str, bytes, bool, str, bool]] = [
    # RFC 6531 sender: the envelope and the header are UTF-8.
    ("jürgen@exämple.test", "Jürgen <jürgen@exämple.test>".encode(), True, "jürgen@exämple.test", True),
    # An 8-bit (latin-1) From header from an old mailer: it decodes to a non-ASCII local part.
    ("mueller@customer.test", "M\u00fcller <m\u00fcller@customer.test>".encode("latin-1"), False,
     "müller@customer.test", True),
    # Garbage that parses to a non-ASCII "address".
    ("garbled@customer.test", b'"garbled" <\xff\xfe@\xc3(.test>', False, "ÿþ@ã", True),
    # An encoded word where the address should be: no mailbox at all, so no acknowledgement is queued
    # (it could only fail and alarm the agents); the ticket is still there for them.
    ("noat@customer.test", b"=?utf-8?b?w7w=?=", False, "ü", False),
    # Only the domain is non-ASCII: its A-label goes through any relay, 7-bit.
    ("juergen@exämple.test", "Juergen <juergen@exämple.test>".encode(), True, "juergen@exämple.test", True),
]
ANY_RELAY = {"juergen@exämple.test"}
NO_MAILBOX = {"ü"}
ACKED = len(HOSTILE) - len(NO_MAILBOX)


async def send_hostile(port: int) -> None:
    for i, (sender, header, utf8, _rcpt, _ok) in enumerate(HOSTILE):
        await send_raw(port, hostile_mail(header, f"hostile {i}"), sender, utf8=utf8)


async def send_ordinary(port: int, count: int) -> list[str]:
    customers = []
    for n in range(count):
        customer = f"ordinary{n}@customer.test"
        raw = mail(sender=f"Olli Ordinary <{customer}>", subject=f"Ordinary {n}", message_id=f"<ordinary{n}@customer.test>")
        await send_raw(port, raw, customer)
        customers.append(customer)
    return customers


async def rows(running: Running) -> list[Row]:
    async with running.store.read() as tx:
        return await tx.all("SELECT * FROM outbox WHERE kind = 'ack' ORDER BY id")


async def wait_rows(running: Running, done: Callable[[list[Row]], bool], timeout: float = 30) -> list[Row]:
    """Wait (on the sender's delivered event, no fixed sleeps) until the ack rows satisfy done."""
    assert running.outgoing is not None
    delivered = running.outgoing.sender.delivered
    async with asyncio.timeout(timeout):
        while True:
            delivered.clear()
            found = await rows(running)
            if done(found):
                return found
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):  # also catches rows finished before clear()
                    await delivered.wait()


def settled(expected: int) -> Callable[[list[Row]], bool]:
    return lambda found: len(found) >= expected and all(r["state"] in ("sent", "failed") for r in found)


def check_hostile_rows(found: list[Row], *, utf8_relay: bool) -> None:
    by_rcpt = {r["rcpt_to"]: r for r in found}
    assert not NO_MAILBOX & set(by_rcpt)
    for _sender, _header, _utf8, rcpt, ok_on_utf8 in HOSTILE:
        if rcpt in NO_MAILBOX:
            continue
        row = by_rcpt[rcpt]
        if rcpt in ANY_RELAY or (utf8_relay and ok_on_utf8):
            assert row["state"] == "sent", (rcpt, row["last_error"])
        else:
            assert row["state"] == "failed", rcpt
            reason = row["last_error"] or ""
            assert ("SMTPUTF8" in reason) if ok_on_utf8 else ("not a deliverable mailbox" in reason), (rcpt, reason)


@pytest.mark.parametrize("connections", [1, 2])
@pytest.mark.parametrize("utf8", [True, False], ids=["smtputf8-relay", "ascii-relay"])
async def test_hostile_senders_never_stop_outgoing_mail(tmp_path: Path, connections: int, utf8: bool) -> None:
    async with relay_sink(utf8=utf8) as sink, started(outgoing_config(tmp_path, sink.port, connections)) as running:
        assert running.outgoing is not None
        await send_hostile(running.smtp_port)
        customers = await send_ordinary(running.smtp_port, 4)
        await settle(running)
        for n, customer in enumerate(customers):
            await wait_mail(sink, customer, f"Ordinary {n}")
        found = await wait_rows(running, settled(ACKED + len(customers)))
        check_hostile_rows(found, utf8_relay=utf8)
        async with running.store.read() as tx:
            suppressed = await tx.value("SELECT COUNT(*) FROM events WHERE kind = 'ack.suppressed'"
                                        " AND data LIKE '%not a deliverable mailbox%'")
        assert suppressed == len(NO_MAILBOX)  # the ticket says why its customer got no answer
        sender = running.outgoing.sender
        assert sender.restarts == 0 and all(not t.done() for t in sender._tasks)

        # What the relay got for the RFC 6531 addresses: valid headers, never encoded words in an address.
        got = await wait_mail(sink, IDN, "")
        assert got.raw.split(b"\r\n\r\n")[0].isascii()  # the A-label keeps it 7-bit
        assert got.msg["To"].addresses[0].addr_spec == IDN
        if utf8:
            got = await wait_mail(sink, "jürgen@xn--exmple-cua.test", "")
            head = got.raw.split(b"\r\n\r\n")[0]
            assert b"=?utf-8?q?j" not in head.lower()
            to = message_from_string(got.raw.decode("utf-8"), policy=policy.SMTPUTF8)["To"]  # RFC 6532
            assert to.addresses[0].addr_spec == "jürgen@xn--exmple-cua.test"
        else:
            # The failure reached the agents (and the ticket), not the customer.
            await wait_mail(sink, "aino@agents.test", "")
        # Nothing at all went to an address that is no mailbox.
        assert not [r for r in sink.received if any("@" not in a for a in r.rcpt_tos)]


async def test_restart_with_hostile_rows_first_delivers_the_rest(tmp_path: Path) -> None:
    """Hostile rows queued first (the relay was down) and one left 'sending': the restart sends everything else."""
    port = free_port()
    config = outgoing_config(tmp_path, port, 1)
    async with started(config) as running:  # nothing listens on the relay port: every try is retried
        await send_hostile(running.smtp_port)
        customers = await send_ordinary(running.smtp_port, 3)
        await settle(running)
        assert len(await rows(running)) == ACKED + len(customers)
    db = config.database_path
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        # Fault injection: a row left 'sending', as a kill -9 between the relay's 250 and the commit leaves it.
        conn.execute("UPDATE outbox SET state = 'sending' WHERE id = (SELECT MIN(id) FROM outbox)")
    # The restart comes an hour later: every retry the dead relay earned is due by then.
    later = ManualClock(datetime.now(UTC) + timedelta(hours=1))
    async with relay_sink(utf8=False, port=port) as sink, started(config, clock=later) as running:
        for n, customer in enumerate(customers):
            await wait_mail(sink, customer, f"Ordinary {n}")
        found = await wait_rows(running, settled(ACKED + len(customers)))
        check_hostile_rows(found, utf8_relay=False)
        assert running.outgoing is not None and running.outgoing.sender.restarts == 0


async def test_mail_queued_from_the_cli_goes_out_promptly(tmp_path: Path) -> None:
    """Another process (the CLI) queues a mail: it must not wait for the sender's 30 s poll."""
    async with relay_sink(utf8=False) as sink:
        config = outgoing_config(tmp_path, sink.port, 1, send_delay=0)
        async with started(config) as running:
            assert running.outgoing is not None
            await send_ordinary(running.smtp_port, 1)  # a first mail: the sender is idle afterwards
            await settle(running)
            await wait_mail(sink, "ordinary0@customer.test", "Ordinary 0")
            assert config.source is not None
            result = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "mailgate", "--config", str(config.source), "tickets", "new",
                 "--to", "carol@customer.test", "--subject", "We called you", "--text", "As promised.", "--as", "aino"],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
            )
            assert result.returncode == 0, result.stderr.decode()
            # Well under the 30 s poll: the daemon notices the other process's commit.
            await sink.wait_for(lambda r: bool(sink.to("carol@customer.test")), timeout=15)
            assert running.outgoing.others_seen >= 1


class BrokenRelay(Relay):
    """A relay client with a bug for one recipient (the kind of error nobody listed)."""

    async def send(self, mail_from: str, rcpt: str, raw: bytes) -> Result:
        if rcpt.startswith("boom"):
            raise RuntimeError("a bug in the relay client")
        return await super().send(mail_from, rcpt, raw)


async def test_an_unexpected_error_fails_the_row_after_a_few_tries(tmp_path: Path) -> None:
    async with relay_sink(utf8=False) as sink, started(outgoing_config(tmp_path, sink.port, 1)) as running:
        assert running.outgoing is not None
        sender = running.outgoing.sender
        sender.relay = BrokenRelay(running.config.relay, "mailgate.test")
        await send_raw(running.smtp_port, mail(sender="Boom <boom@customer.test>", subject="Boom",
                                               message_id="<boom@customer.test>"), "boom@customer.test")
        customers = await send_ordinary(running.smtp_port, 2)
        await settle(running)
        for n, customer in enumerate(customers):
            await wait_mail(sink, customer, f"Ordinary {n}")
        found = await wait_rows(running, settled(3))
        boom = next(r for r in found if r["rcpt_to"] == "boom@customer.test")
        assert boom["state"] == "failed" and boom["attempts"] == 3
        assert "RuntimeError: a bug in the relay client" in boom["last_error"]
        assert sender.restarts == 0


async def test_a_dead_sender_task_is_restarted(tmp_path: Path) -> None:
    async with relay_sink(utf8=False) as sink, started(outgoing_config(tmp_path, sink.port, 1)) as running:
        assert running.outgoing is not None
        sender = running.outgoing.sender
        first = sender._tasks[0]
        first.cancel()  # ended from outside, as an escaped error would end it
        with contextlib.suppress(asyncio.CancelledError):
            await first
        customers = await send_ordinary(running.smtp_port, 1)
        await settle(running)
        await wait_mail(sink, customers[0], "Ordinary 0")
        assert sender.restarts == 1 and sender._tasks[0] is not first and not sender._tasks[0].done()


async def test_a_failing_timer_ends_dead_and_the_others_still_fire(tmp_path: Path) -> None:
    async with relay_sink(utf8=False) as sink, started(outgoing_config(tmp_path, sink.port, 1)) as running:
        assert running.outgoing is not None
        timers = running.outgoing.timers
        timers.retry_base = 0.05
        fired: asyncio.Queue[int] = asyncio.Queue()

        async def boom(tx: object, timer: Timer) -> None:
            if timer.ref == 1:
                raise ValueError("cannot handle this row")
            fired.put_nowait(timer.ref)

        timers.register("test.boom", boom)
        # Fault injection: rows of a kind only this test handles, one whose handler always raises.
        async with running.store.txn() as tx:
            for ref in (1, 2):
                await timer_rows.add(tx, "test.boom", ref, tx.now())
        timers.poke()
        async with asyncio.timeout(20):
            assert await fired.get() == 2

        async def dead() -> Row | None:
            async with running.store.read() as tx:
                found: Row | None = await tx.one("SELECT * FROM timers WHERE kind = 'test.boom' AND ref = 1")
            return found if found is not None and found["dead_at"] is not None else None

        row = await wait_until(dead, what="the failing timer given up on")
        assert row["attempts"] == 5 and "ValueError: cannot handle this row" in row["last_error"]
        customers = await send_ordinary(running.smtp_port, 1)  # and mail still flows
        await settle(running)
        await wait_mail(sink, customers[0], "Ordinary 0")


def cli(config: Config, *args: str) -> subprocess.CompletedProcess[bytes]:
    assert config.source is not None
    return subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config.source), *args],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )


async def test_failed_mail_is_listed_and_goes_after_the_operator_moves_to_an_smtputf8_relay(tmp_path: Path) -> None:
    async with relay_sink(utf8=False) as sink:
        config = outgoing_config(tmp_path, sink.port, 1)
        async with started(config) as running:
            await send_raw(running.smtp_port, hostile_mail("Jürgen <jürgen@exämple.test>".encode(), "umlaut"),
                           "jürgen@exämple.test", utf8=True)
            await settle(running)
            found = await wait_rows(running, settled(1))
    failed = await asyncio.to_thread(cli, config, "outbox", "failed", "--json")
    listed = json.loads(failed.stdout)
    assert [(r["id"], r["rcpt_to"]) for r in listed] == [(found[0]["id"], "jürgen@exämple.test")]
    assert "SMTPUTF8" in listed[0]["last_error"]
    status = json.loads((await asyncio.to_thread(cli, config, "outbox", "status")).stdout)
    assert status["outbox"]["failed"] == 1 and status["dead_timers"] == 0
    async with relay_sink(utf8=True) as sink:
        moved = outgoing_config(tmp_path, sink.port, 1)
        async with started(moved):
            retried = await asyncio.to_thread(cli, moved, "outbox", "retry", str(found[0]["id"]))
            assert retried.stdout.strip() == b"requeued 1", retried.stderr
            got = await wait_mail(sink, "jürgen@xn--exmple-cua.test", "umlaut")
            assert message_from_string(got.raw.decode("utf-8"), policy=policy.SMTPUTF8)["To"].addresses[0].username == "jürgen"


class PoisonedProcessor(Processor):
    """Processing with a bug that one message triggers every time."""

    async def process(self, entry: SpoolEntry) -> Outcome:
        if b"Subject: poison" in entry.raw:
            raise RuntimeError("a bug this message triggers")
        return await super().process(entry)


async def test_a_message_that_always_fails_ends_dead_and_visible(tmp_path: Path) -> None:
    async with relay_sink(utf8=False) as sink:
        config = outgoing_config(tmp_path, sink.port, 1)
        async with started(config) as running:
            running.worker.processor = PoisonedProcessor(config, running.store)
            await send_raw(running.smtp_port, mail(subject="poison", message_id="<poison@customer.test>"),
                           "alice@customer.test")
            async with asyncio.timeout(30):
                while True:
                    running.worker.wake()
                    running.worker.idle.clear()
                    await running.worker.idle.wait()
                    async with running.store.read() as tx:
                        row = await tx.one("SELECT state, attempts, error FROM spool ORDER BY id LIMIT 1")
                    if row["state"] == "dead":
                        break
            assert row["attempts"] == 5 and "RuntimeError: a bug this message triggers" in row["error"]
            customers = await send_ordinary(running.smtp_port, 1)
            await settle(running)
            await wait_mail(sink, customers[0], "Ordinary 0")
        status = json.loads((await asyncio.to_thread(cli, config, "spool", "status")).stdout)
        assert status.get("dead") == 1



class StoreRejectsOne(Processor):
    """The store raising for one message only (a statement its data breaks), every time."""

    async def process(self, entry: SpoolEntry) -> Outcome:
        if b"Subject: rejected" in entry.raw:
            raise sqlite3.OperationalError("too many SQL variables")
        return await super().process(entry)


async def test_a_message_the_store_rejects_does_not_hold_up_the_others(tmp_path: Path) -> None:
    async with relay_sink(utf8=False) as sink:
        config = outgoing_config(tmp_path, sink.port, 1)
        async with started(config) as running:
            running.worker.processor = StoreRejectsOne(config, running.store)
            await send_raw(running.smtp_port, mail(subject="rejected", message_id="<rejected@customer.test>"),
                           "alice@customer.test")
            customers = await send_ordinary(running.smtp_port, 2)
            for n, customer in enumerate(customers):
                await wait_mail(sink, customer, f"Ordinary {n}")
            async def dead_spool_row() -> Row | None:
                running.worker.wake()  # its retries are spaced out; each look asks for the next one
                async with running.store.read() as tx:
                    found: Row | None = await tx.one("SELECT state, attempts, error FROM spool ORDER BY id LIMIT 1")
                return found if found is not None and found["state"] == "dead" else None

            row = await wait_until(dead_spool_row, timeout=60, what="the hostile spool row given up on")
            assert row["attempts"] == 5 and "OperationalError: too many SQL variables" in row["error"]
