"""Two daemons on one PostgreSQL database: an IMAP account fetched by one at a time, wake-ups across
daemons by LISTEN/NOTIFY, and kill -9 of one of them in the middle of 1,000 mails.

The database is `pg_url`'s (tests/conftest.py): a fresh one on the run's throwaway cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgate import config as config_mod
from mailgate.store import locks as store_locks
from mailgate.store import open_store

from .conftest import REPO, SUPPORT, mail, run_cli, write_config
from .dovecot import Dovecot, find_dovecot
from .sink import AGENTS, free_port, relay_section, running_sink
from .test_outbox_crash import wait_listening

USER, PASSWORD = "mailgate", "mailgate-secret"


# -- reading the shared database ------------------------------------------------------------------


async def query(url: str, sql: str, *args: Any) -> list[Any]:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def value(url: str, sql: str, *args: Any) -> Any:
    rows = await query(url, sql, *args)
    return rows[0][0] if rows else None


async def until(url: str, sql: str, predicate: Any, timeout: float, *daemons: Daemon) -> Any:
    """Poll a query until its value satisfies predicate; a daemon that exits stops the wait."""
    async with asyncio.timeout(timeout):
        while True:
            found = await value(url, sql)
            if predicate(found):
                return found
            for daemon in daemons:
                daemon.check()
            await asyncio.sleep(0.1)


# -- daemons as processes ---------------------------------------------------------------------------


class Daemon:
    """`mailgate run` as a subprocess of its own session, so kill -9 reaches it and its threads."""

    def __init__(self, folder: Path, extra: str, url: str, *, port: int = 0) -> None:
        folder.mkdir(exist_ok=True)
        self.port = port or free_port()
        self.config = write_config(folder, extra, smtp="", storage=f'url = "{url}"')
        text = self.config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{self.port}"')
        self.config.write_text(text)
        self.log = folder / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mailgate", "--config", str(self.config), "run"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"daemon exited ({self.process.returncode}):\n{self.text()[-3000:]}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def listening(self, timeout: float = 30) -> None:
        assert self.process is not None
        try:
            await wait_listening(self.port, self.process, timeout)
        except AssertionError:
            self.check()  # exited: say so with its log
            raise

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 30)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.asynccontextmanager
async def daemons(*all: Daemon) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await asyncio.gather(*(d.stop() for d in all))


# -- named locks ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_named_lock_has_one_holder_and_passes_on_when_its_session_ends(pg_url: str, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    configs = [config_mod.load(write_config(tmp_path / n, storage=f'url = "{pg_url}"')) for n in ("a", "b")]
    first, second = await open_store(configs[0]), await open_store(configs[1])
    try:
        async with contextlib.AsyncExitStack() as holding:
            one = await holding.enter_async_context(store_locks.hold(first, "imap:support", retry=0.05))
            await asyncio.wait_for(one.wait(), 10)
            async with store_locks.hold(second, "imap:support", retry=0.05) as other, \
                    store_locks.hold(second, "imap:billing", retry=0.05) as billing:
                await asyncio.wait_for(billing.wait(), 10)  # another name is another lock
                await asyncio.sleep(0.3)  # several tries of the taken one
                assert one and not other
                await holding.aclose()  # the holder's session ends
                await asyncio.wait_for(other.wait(), 10)
                assert other and not one
    finally:
        await first.close()
        await second.close()
    sqlite = await open_store(config_mod.load(write_config(tmp_path / "c")))
    try:
        async with store_locks.hold(sqlite, "imap:support") as alone:
            assert alone  # one daemon per SQLite file
    finally:
        await sqlite.close()


# -- IMAP: one account, one fetching daemon ---------------------------------------------------------


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    binary = find_dovecot()
    if binary is None:
        pytest.skip("no dovecot binary on this machine (Debian: apt-get install dovecot-imapd)")
    server = Dovecot(binary, {USER: PASSWORD})
    server.start()
    yield server
    server.cleanup()


def imap_account(server: Dovecot) -> str:
    settings = {"name": "inbox", "host": server.host, "port": server.port, "security": "none",
                "username": USER, "password": PASSWORD, "poll_interval": 600, "batch_size": 5}
    return "\n[[imap]]\n" + "".join(f"{key} = {json.dumps(v)}\n" for key, v in settings.items())


def customer_mails(first: int, count: int) -> list[bytes]:
    headers = {"Return-Path": "<alice@customer.test>", "Delivered-To": SUPPORT}
    return [mail(subject=f"Question {n}", message_id=f"<imapq{n}@customer.test>", body=f"Question {n}.\n",
                 headers=headers) for n in range(first, first + count)]


@pytest.mark.asyncio
async def test_an_imap_account_is_fetched_by_one_daemon_and_taken_over_when_it_dies(
    dovecot: Dovecot, pg_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(dovecot.append, customer_mails(0, 12))
    both = [Daemon(tmp_path / name, imap_account(dovecot), pg_url) for name in ("a", "b")]
    async with daemons(*both):
        for daemon in both:
            daemon.start()
        await asyncio.gather(*(d.listening() for d in both))
        await until(pg_url, "SELECT COUNT(*) FROM messages", lambda n: n == 12, 60, *both)
        # New mail while both run: the holder's IDLE brings it, the other never logged in.
        await asyncio.to_thread(dovecot.append, customer_mails(12, 4))
        await until(pg_url, "SELECT COUNT(*) FROM messages", lambda n: n == 16, 60, *both)
        fetching = [d for d in both if "imap.connected" in d.text()]
        assert len(fetching) == 1, [d.text().count("imap.connected") for d in both]
        holder, other = fetching[0], next(d for d in both if d is not fetching[0])
        assert "imap.standby account=inbox" in other.text()
        assert "imap.standby" not in holder.text()  # its first try answered: it never looked like a standby

        holder.kill()  # its database session ends with it, and with that the lock
        await asyncio.to_thread(dovecot.append, customer_mails(16, 5))
        await until(pg_url, "SELECT COUNT(*) FROM messages", lambda n: n >= 21, 60, other)
        assert "imap.taken_over account=inbox" in other.text()
        assert other.text().count("imap.connected") == 1
        state = await value(pg_url, "SELECT state FROM imap_accounts WHERE account = 'inbox'")
        assert state in ("idle", "polling", "fetching")

    per_id = await query(pg_url, "SELECT message_id, COUNT(*) FROM messages GROUP BY message_id")
    assert len(per_id) == 21 and {n for _, n in per_id} == {1}
    assert await value(pg_url, "SELECT COUNT(*) FROM spool") == 21  # nothing fetched twice, even to be deduplicated


# -- wake-ups across daemons ------------------------------------------------------------------------

# The sender looks for due mail every 30 s when nothing wakes it (runners/sender.py). Waits shorter
# than that only end in time if the commit's NOTIFY woke a sender.
WOKEN = 15.0


@pytest.mark.slow
@pytest.mark.asyncio
async def test_mail_queued_by_one_daemon_or_the_cli_is_sent_by_a_woken_sender(pg_url: str, tmp_path: Path) -> None:
    async with running_sink() as sink:
        extra = relay_section(sink.port, send_delay=0) + STORMS_OFF + AGENTS
        a, b = (Daemon(tmp_path / name, extra, pg_url) for name in ("a", "b"))
        async with daemons(a, b):
            a.start()
            b.start()
            await asyncio.gather(a.listening(), b.listening())
            await asyncio.to_thread(smtp_send, a.port, 1)  # queued by A: an acknowledgement
            await sink.wait_for(lambda r: any("c1@customer.test" in m.rcpt_tos for m in r), WOKEN)
            await cli_ok(a.config, "tickets", "new", "--to", "first@customer.test", "--subject", "Your order",
                         "--text", "It shipped today.", "--as", "aino")
            await sink.wait_for(lambda r: any("first@customer.test" in m.rcpt_tos for m in r), WOKEN)
            await a.stop()  # only B is left to hear the CLI's commit
            await cli_ok(b.config, "tickets", "new", "--to", "second@customer.test", "--subject", "Your refund",
                         "--text", "It is on its way.", "--as", "aino")
            await sink.wait_for(lambda r: any("second@customer.test" in m.rcpt_tos for m in r), WOKEN)


# -- kill -9 of one of two daemons in the middle of 1,000 mails --------------------------------------

TOTAL = 1000
CLIENTS = 4
KILL_AT, RESTART_AT = 300, 600  # mails accepted when A is killed, and when it starts again
SNOOZED = 4
STORMS_OFF = "\n[storms]\nacks_per_minute = 0\nacks_per_hour = 0\n"  # 1,000 customers in a minute is the test


def smtp_send(port: int, n: int) -> None:
    raw = mail(sender=f"Customer {n} <c{n}@customer.test>", subject=f"Order {n} is late",
               message_id=f"<load{n}@customer.test>", body=f"Where is order {n}?\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail(f"c{n}@customer.test", [SUPPORT], raw)


def client(ports: list[int], share: range, accepted: list[int], lock: threading.Lock) -> None:
    """One MTA's share: each mail to one daemon, and to the other when that one does not answer
    (a refused connection, a dropped session or a 4xx), as an MTA tries a domain's next MX."""
    for n in share:
        for attempt in range(200):
            try:
                smtp_send(ports[(n + attempt) % len(ports)], n)
            except (OSError, smtplib.SMTPException):
                continue
            with lock:
                accepted.append(n)
            break


async def cli_ok(config: Path, *args: str) -> str:
    result = await run_cli(config, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
@pytest.mark.asyncio
async def test_kill_9_of_one_of_two_daemons_loses_and_repeats_nothing(pg_url: str, tmp_path: Path) -> None:
    async with running_sink() as sink:
        extra = relay_section(sink.port, send_delay=0, auto_replies_per_hour=100) + STORMS_OFF + AGENTS
        a, b = Daemon(tmp_path / "a", extra, pg_url), Daemon(tmp_path / "b", extra, pg_url)
        async with daemons(a, b):
            a.start()
            b.start()
            await asyncio.gather(a.listening(), b.listening())
            # Timers due during the run: snoozes of the first tickets, set before the load.
            for n in range(SNOOZED):
                await asyncio.to_thread(smtp_send, (a.port, b.port)[n % 2], n)
            await until(pg_url, "SELECT COUNT(*) FROM tickets", lambda c: c == SNOOZED, 30, a, b)
            numbers = [r[0] for r in await query(pg_url, "SELECT number FROM tickets ORDER BY id")]
            for number in numbers:
                await cli_ok(a.config, "tickets", "snooze", str(number), "1m", "--as", "aino")

            accepted: list[int] = list(range(SNOOZED))
            lock = threading.Lock()
            ports = [a.port, b.port]
            loads = [asyncio.to_thread(client, ports, range(SNOOZED + i, TOTAL, CLIENTS), accepted, lock)
                     for i in range(CLIENTS)]
            sending = asyncio.gather(*loads)
            async with asyncio.timeout(60):
                while len(accepted) < KILL_AT:
                    await asyncio.sleep(0.01)
            a.kill()
            # What the dead daemon may have handed to the relay without recording it: the rows it
            # held claimed for sending when it died (B's claims are B's and stay B's).
            node = re.search(r"outbox\.claims node=(\S+)", a.text())
            assert node is not None, a.text()[-2000:]
            in_flight = await value(pg_url, "SELECT COUNT(*) FROM outbox WHERE state = 'sending' AND claimed_by = $1",
                                    node.group(1))
            async with asyncio.timeout(60):
                while len(accepted) < RESTART_AT:
                    await asyncio.sleep(0.01)
            a.start()
            await a.listening()
            await sending
            assert sorted(accepted) == list(range(TOTAL))

            await until(pg_url, "SELECT COUNT(*) FROM messages WHERE direction = 'in'",
                        lambda c: c >= TOTAL, 60, a, b)
            await until(pg_url, "SELECT COUNT(*) FROM events WHERE kind = 'ticket.woken'",
                        lambda c: c >= SNOOZED, 90, a, b)
            await until(pg_url, "SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'sending')",
                        lambda c: c == 0, 60, a, b)
            queued = await value(pg_url, "SELECT COUNT(*) FROM outbox")

    per_message = Counter(r[0] for r in await query(
        pg_url, "SELECT message_id FROM messages WHERE direction = 'in'"))
    assert set(per_message) == {f"load{n}@customer.test" for n in range(TOTAL)}
    assert set(per_message.values()) == {1}, [m for m, c in per_message.items() if c > 1][:5]

    woken = Counter(r[0] for r in await query(pg_url, "SELECT ticket_id FROM events WHERE kind = 'ticket.woken'"))
    assert len(woken) == SNOOZED and set(woken.values()) == {1}

    per_id = Counter(r.header("Message-ID") for r in sink.received)
    assert len(per_id) == queued  # every queued mail reached the relay
    repeats = sum(c - 1 for c in per_id.values())
    assert repeats <= in_flight, (repeats, in_flight)
    acknowledged = {r.rcpt_tos[0] for r in sink.received if r.rcpt_tos[0].endswith("@customer.test")}
    assert acknowledged == {f"c{n}@customer.test" for n in range(TOTAL)}
    print(f"in flight at the kill: {in_flight}; repeated at the relay: {repeats}; mails sent: {queued}")
