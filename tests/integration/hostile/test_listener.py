"""The SMTP/LMTP listener under abuse, over real sockets to a running daemon.

Idle connections beyond the limits, NOOP forever, DATA that stalls or trickles, parallel large
uploads, a database locked by another process, and a process out of file descriptors: the
daemon stays reachable for ordinary customers and keeps every mail it answered 250 for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiosmtpd
import pytest
from aiosmtpd.smtp import SMTP

from mailgate import config as config_mod
from mailgate import replies
from mailgate.config import Config, ConfigError
from mailgate.daemon import Running, started
from mailgate.sources import smtp_guard
from mailgate.sources.smtp import MailgateSMTP

from ..conftest import SUPPORT, mail, send, write_config
from ..sink import Sink, free_port
from .conftest import still_flowing

pytestmark = pytest.mark.asyncio

WAIT = 30.0  # generous: only a broken daemon takes this long


class Client:
    """A raw SMTP client that shows exactly what the server sends, and when it hangs up."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, greeting: bytes) -> None:
        self.reader, self.writer, self.greeting = reader, writer, greeting

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer, b"")
        client.greeting = await client.reply()
        return client

    async def reply(self) -> bytes:
        """One whole (possibly multi-line) reply; b"" once the server has closed."""
        lines = []
        async with asyncio.timeout(WAIT):
            while True:
                line = await self.reader.readline()
                if not line:
                    return b"".join(lines)
                lines.append(line)
                if line[3:4] != b"-":
                    return b"".join(lines)

    async def command(self, line: bytes) -> bytes:
        self.writer.write(line + b"\r\n")
        await self.writer.drain()
        return await self.reply()

    async def envelope(self, rcpt: str = SUPPORT) -> None:
        assert (await self.command(b"EHLO client.test")).startswith(b"250")
        assert (await self.command(b"MAIL FROM:<alice@customer.test>")).startswith(b"250")
        assert (await self.command(f"RCPT TO:<{rcpt}>".encode())).startswith(b"250")
        assert (await self.command(b"DATA")).startswith(b"354")

    async def hung_up(self) -> bool:
        """Read (and drop) everything until the server closes; True when it did."""
        try:
            async with asyncio.timeout(WAIT):
                while await self.reader.read(65536):
                    pass
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


@contextlib.asynccontextmanager
async def clients(port: int, count: int) -> AsyncIterator[list[Client]]:
    opened = [await Client.connect(port) for _ in range(count)]
    try:
        yield opened
    finally:
        for client in opened:
            client.close()


async def spooled(running: Running) -> list[bytes]:
    async with running.store.read() as tx:
        return [bytes(r["raw"]) for r in await tx.all("SELECT raw FROM spool ORDER BY id")]


def smtp_lines(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(event)]


# --- connection limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "limits", ["max_connections_per_peer = 6\nmax_connections = 50", "max_connections = 6\nmax_connections_per_peer = 50"]
)
async def test_idle_connections_over_the_limit_get_a_prompt_421_and_customers_are_served(
    limits: str, hostile_config: Callable[..., Config], sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with started(hostile_config(smtp=limits)) as running:
        port = running.smtp_port
        async with clients(port, 6) as idle:  # every slot held by a squatter who never speaks
            assert all(c.greeting.startswith(b"220") for c in idle)
            refused = []
            for _ in range(40):
                client = await Client.connect(port)
                refused.append(client.greeting)
                assert await client.hung_up()  # closed at once, not left to time out
                client.close()
            assert set(refused) == {f"{replies.S421_TOO_MANY_CONNECTIONS}\r\n".encode()}
            # The squatter lets one go: that slot serves a customer, the 40 refused took none.
            idle[0].close()
            assert await idle[0].hung_up()
            listener = running.server.listener
            async with asyncio.timeout(WAIT):
                while listener.connections > 5:
                    listener.changed.clear()
                    await listener.changed.wait()
            await still_flowing(running, sink)
        # 40 refusals: one line, then at most one summary per interval; never a traceback.
        assert 1 <= len(smtp_lines(caplog, "smtp.connection_refused")) <= 2
        assert not [r for r in caplog.records if r.exc_info]
        async with asyncio.timeout(WAIT):  # every slot comes back when its client leaves
            while listener.connections:
                listener.changed.clear()
                await listener.changed.wait()
        await still_flowing(running, sink, 1)


async def test_silent_connection_is_closed_after_the_timeout(
    hostile_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with started(hostile_config(smtp="timeout = 1")) as running:
        async with clients(running.smtp_port, 1) as [client]:
            assert await client.hung_up()
        assert smtp_lines(caplog, "smtp.timeout")


async def test_noop_forever_is_closed_by_the_idle_timeout(hostile_config: Callable[..., Config], sink: Sink) -> None:
    # NOOP every 0.1 s never lets aiosmtpd's timer run out; the junk limit is out of reach here.
    async with started(hostile_config(smtp="timeout = 1.5\njunk_command_limit = 100000")) as running:
        async with clients(running.smtp_port, 1) as [client]:
            assert (await client.command(b"EHLO squatter.test")).startswith(b"250")
            for _ in range(600):  # 60 s of NOOPs at most; the daemon must hang up long before
                try:
                    answer = await client.command(b"NOOP")
                except ConnectionError:
                    break
                if not answer:
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("a NOOP-only session was never closed")
        await still_flowing(running, sink)


async def test_junk_commands_get_421_but_a_session_delivering_mail_goes_on(hostile_config: Callable[..., Config]) -> None:
    async with started(hostile_config(smtp="junk_command_limit = 5")) as running:
        async with clients(running.smtp_port, 1) as [client]:
            answers = [await client.command(b"NOOP") for _ in range(6)]
            assert answers == [b"250 OK\r\n"] * 5 + [f"{replies.S421_TOO_MANY_COMMANDS}\r\n".encode()]
            assert await client.hung_up()
        # An MTA reusing its connection sends RSET (junk) before each mail; the mails reset the count.
        async with clients(running.smtp_port, 1) as [client]:
            assert (await client.command(b"EHLO mta.test")).startswith(b"250")
            for n in range(8):
                assert (await client.command(b"RSET")).startswith(b"250")
                assert (await client.command(b"NOOP")).startswith(b"250")
                assert (await client.command(b"MAIL FROM:<alice@customer.test>")).startswith(b"250")
                assert (await client.command(f"RCPT TO:<{SUPPORT}>".encode())).startswith(b"250")
                assert (await client.command(b"DATA")).startswith(b"354")
                raw = mail(subject=f"Reused {n}", message_id=f"<reused{n}@customer.test>")
                assert (await client.command(raw + b".")).startswith(b"250")
            assert (await client.command(b"QUIT")).startswith(b"221")
        assert len(await spooled(running)) == 8


async def test_too_many_recipients_get_452(hostile_config: Callable[..., Config]) -> None:
    async with started(hostile_config()) as running:
        async with clients(running.smtp_port, 1) as [client]:
            assert (await client.command(b"EHLO spammer.test")).startswith(b"250")
            assert (await client.command(b"MAIL FROM:<a@spammer.test>")).startswith(b"250")
            for n in range(smtp_guard.MAX_RECIPIENTS):
                assert (await client.command(f"RCPT TO:<support+{n}@example.test>".encode())).startswith(b"250")
            assert (await client.command(b"RCPT TO:<support+x@example.test>")).startswith(b"452 4.5.3")


# --- DATA: per read, not per transfer ---------------------------------------------------------


async def test_slow_steady_data_longer_than_the_timeout_is_accepted(hostile_config: Callable[..., Config]) -> None:
    async with started(hostile_config(smtp="timeout = 1.5")) as running:
        raw = mail(subject="Slow but steady", message_id="<slow@customer.test>", body="line\n" * 400)
        pieces = [raw[i : i + len(raw) // 25 + 1] for i in range(0, len(raw), len(raw) // 25 + 1)]
        async with clients(running.smtp_port, 1) as [client]:
            await client.envelope()
            for piece in pieces:  # ~25 pieces 0.25 s apart: about 4x the timeout in total
                client.writer.write(piece)
                await client.writer.drain()
                await asyncio.sleep(0.25)
            answer = await client.command(b".")
        assert answer.startswith(b"250"), answer
        assert await spooled(running) == [raw]


async def test_commands_that_each_come_in_time_keep_a_session_longer_than_the_timeout(
    hostile_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    """Each MAIL, RCPT and DATA moves the deadline: a slow mailer (greylisting, a busy MTA) is not cut."""
    caplog.set_level(logging.INFO)
    async with started(hostile_config(smtp="timeout = 1.5")) as running:
        raw = mail(subject="Slow commands", message_id="<slow-commands@customer.test>")
        async with clients(running.smtp_port, 1) as [client]:
            assert (await client.command(b"EHLO client.test")).startswith(b"250")
            steps = [b"MAIL FROM:<alice@customer.test>", f"RCPT TO:<{SUPPORT}>".encode(),
                     b"RCPT TO:<support+again@example.test>", b"DATA"]
            for line in steps:  # 0.6 s apart: 2.4 s in all, well over the timeout
                await asyncio.sleep(0.6)
                assert (await client.command(line))[:1] in (b"2", b"3")
            answer = await client.command(raw.rstrip(b"\r\n") + b"\r\n.")
            assert answer.startswith(b"250"), answer
            assert await client.hung_up()  # then silence: the timeout still closes it
        assert await spooled(running) == [raw]
        assert smtp_lines(caplog, "smtp.timeout")


async def test_stalled_data_is_closed_and_nothing_stored(
    hostile_config: Callable[..., Config], sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with started(hostile_config(smtp="timeout = 1")) as running:
        raw = mail(subject="Never finished", message_id="<stalled@customer.test>")
        async with clients(running.smtp_port, 1) as [client]:
            await client.envelope()
            client.writer.write(raw[: len(raw) // 2])
            await client.writer.drain()
            assert await client.hung_up()
        assert await spooled(running) == []
        assert smtp_lines(caplog, "smtp.timeout")
        await still_flowing(running, sink)


# --- memory held by DATA in flight ------------------------------------------------------------

LINE = b"x" * 78 + b"\r\n"
PART = 8_000 * len(LINE)  # 640,000 bytes: a first part is a little more, always under twice this


def big_mail(n: int) -> tuple[bytes, bytes]:
    """(first part, rest) of a ~770 kB mail; both end in CRLF, no line starts with a dot.

    The first part ends in a line ending in a dot, where the daemon's reader stops to look: by
    then it has taken in the whole part (its buffer holds no unread rest).
    """
    head = f"From: Alice <alice@customer.test>\r\nTo: {SUPPORT}\r\nSubject: Upload {n}\r\nMessage-ID: <upload{n}@customer.test>\r\n\r\n"
    return head.encode() + LINE * 8_000 + b"End of part one.\r\n", LINE * 1_600


async def test_parallel_large_uploads_over_the_memory_budget_get_452_and_nothing_is_lost(
    hostile_config: Callable[..., Config], sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    budget = 1_600_000  # room for two first parts (1.28 MB), not three
    config = hostile_config(smtp=f"max_message_size = 1048576\nmax_data_memory = {budget}")
    async with started(config) as running:
        listener = running.server.listener
        mails = [big_mail(n) for n in range(6)]
        async with clients(running.smtp_port, 6) as uploads:
            for client, (first, _) in zip(uploads, mails, strict=True):
                await client.envelope()
                client.writer.write(first)
                await client.writer.drain()
            # Wait until the daemon has read every first part: held in memory, or refused.
            async with asyncio.timeout(WAIT):
                while listener.data_refusals + listener.data_held // PART < 6:
                    listener.changed.clear()
                    await listener.changed.wait()
            assert listener.data_held <= budget
            answers = []
            for client, (_, rest) in zip(uploads, mails, strict=True):
                client.writer.write(rest)
                answers.append(await client.command(b"."))
        accepted = [first + rest for (first, rest), a in zip(mails, answers, strict=True) if a.startswith(b"250")]
        refused = [first + rest for (first, rest), a in zip(mails, answers, strict=True) if a.startswith(b"452 4.3.1")]
        assert len(accepted) == 2 and len(refused) == 4, answers
        assert await spooled(running) == accepted  # every 250 stored, nothing else
        assert listener.data_held == 0
        assert smtp_lines(caplog, "smtp.data_memory_full")
        # The senders retry later, one at a time: everything arrives.
        for raw in refused:
            assert await send(running.smtp_port, raw) == {}
        assert sorted(await spooled(running)) == sorted(accepted + refused)
        await still_flowing(running, sink)


async def test_declared_size_over_the_free_budget_is_refused_at_mail(hostile_config: Callable[..., Config]) -> None:
    config = hostile_config(smtp="max_message_size = 1048576\nmax_data_memory = 1048576")
    async with started(config) as running:
        listener = running.server.listener
        first, _ = big_mail(0)
        async with clients(running.smtp_port, 2) as [upload, other]:
            await upload.envelope()
            upload.writer.write(first)
            async with asyncio.timeout(WAIT):
                while listener.data_held < PART:
                    listener.changed.clear()
                    await listener.changed.wait()
            assert (await other.command(b"EHLO other.test")).startswith(b"250")
            answer = await other.command(b"MAIL FROM:<bob@customer.test> SIZE=700000")
            assert answer == f"{replies.S452_NO_MEMORY}\r\n".encode()
            assert (await other.command(b"MAIL FROM:<bob@customer.test> SIZE=1000")).startswith(b"250")


# --- a database locked by another process -----------------------------------------------------


async def test_locked_database_gives_prompt_451_to_every_session_and_then_250(
    make_config: Callable[..., Config],
) -> None:
    # storage.busy_timeout is long, as in production; smtp.busy_timeout is what a delivery waits.
    # smtp.timeout is shorter still: mailgate's own wait for the database is no client idleness.
    config = make_config(storage="busy_timeout = 120", smtp="busy_timeout = 2.5\ntimeout = 1.5")
    raws = [mail(subject=f"While locked {n}", message_id=f"<locked{n}@customer.test>") for n in range(4)]
    async with started(config) as running:
        blocker = sqlite3.connect(str(config.database_path), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # e.g. a backup or a CLI holding the write lock
        try:
            async def deliver(raw: bytes) -> int:
                try:
                    await send(running.smtp_port, raw)
                except Exception as exc:  # noqa: BLE001 - smtplib's error carries the code
                    assert getattr(exc, "smtp_error", b"").startswith(b"4.3.0")
                    return int(getattr(exc, "smtp_code", 0))
                return 250

            # Before: each session waited busy_timeout in turn (here 4 x 120 s). Bounded by half of one.
            async with asyncio.timeout(60):
                codes = await asyncio.gather(*(deliver(raw) for raw in raws))
            assert codes == [451] * 4
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert await spooled(running) == []
        for raw in raws:  # the MTAs retry: all stored, once
            assert await send(running.smtp_port, raw) == {}
        assert sorted(await spooled(running)) == sorted(raws)


# --- out of file descriptors ------------------------------------------------------------------


def _daemon_fd_limit() -> None:
    # Very few descriptors: the flood below runs the daemon out of them (EMFILE on accept).
    resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))


async def _log_has(path: Path, text: str) -> str:
    async with asyncio.timeout(WAIT):
        while text not in (content := path.read_text(errors="replace")):
            await asyncio.sleep(0.1)
    return content


async def test_out_of_file_descriptors_logs_a_count_not_a_traceback_flood(tmp_path: Path) -> None:
    port = free_port()
    path = write_config(tmp_path, smtp="max_connections = 1000\nmax_connections_per_peer = 1000")
    path.write_text(path.read_text().replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"'))
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log_file:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(path), "run"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            preexec_fn=_daemon_fd_limit, start_new_session=True, cwd=tmp_path,
        )
    try:
        await _log_has(log_path, "daemon.started")
        flood: list[asyncio.StreamWriter] = []
        for _ in range(120):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            flood.append(writer)
        content = await _log_has(log_path, "smtp.accept_failed")
        for writer in flood:
            writer.close()
        # Descriptors come back as the flood leaves; the daemon accepts and serves again.
        async with asyncio.timeout(WAIT):
            while True:
                try:
                    assert await send(port, mail(message_id="<after-emfile@customer.test>")) == {}
                    break
                except (OSError, Exception):  # noqa: BLE001 - refused or cut while it recovers
                    await asyncio.sleep(0.2)
        content = log_path.read_text(errors="replace")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(daemon.wait, 30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    assert "Traceback" not in content, content[:3000]
    assert "smtp.fd_limit_low" in content
    assert 1 <= content.count("smtp.accept_failed") <= 4, content[:3000]
    # Before: thousands of lines (25,000 in 5 s here); now a handful, besides the scheduler's.
    assert len([line for line in content.splitlines() if "apscheduler" not in line]) < 60, content[:3000]


# --- configuration and the aiosmtpd this builds on --------------------------------------------


async def test_memory_budget_smaller_than_one_mail_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, smtp="max_message_size = 2000000\nmax_data_memory = 1000000")
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    [issue] = caught.value.issues
    assert issue.key == "smtp.max_data_memory" and issue.line is not None
    assert f"{path}:{issue.line}: smtp.max_data_memory: must be at least max_message_size" in str(issue)


async def test_defaults_keep_existing_configs_working(tmp_path: Path) -> None:
    smtp = config_mod.load(write_config(tmp_path)).smtp
    assert (smtp.max_connections, smtp.max_connections_per_peer, smtp.junk_command_limit) == (100, 20, 50)
    assert smtp.data_memory == 4 * smtp.max_message_size and smtp.busy_timeout == 2.0


async def test_aiosmtpd_is_the_version_whose_internals_mailgate_uses() -> None:
    # sources/smtp.py and smtp_guard.py override or read these; a new aiosmtpd may rename them
    # silently (an override of a renamed method is just never called). Re-check them, then re-pin.
    assert aiosmtpd.__version__ == "1.4.6"
    for name in ("_reset_timeout", "_timeout_cb", "_call_handler_hook", "_set_post_data_state", "_getaddr",
                 "_cb_client_connected", "check_helo_needed", "check_auth_needed"):
        assert callable(getattr(SMTP, name, None)), name
    server = MailgateSMTP(object(), loop=asyncio.get_running_loop(), hostname="mx.test")
    for name in ("_handle_hooks", "_decode_data", "_timeout_handle", "_handler_coroutine", "_smtp_methods"):
        assert hasattr(server, name), name
    assert hasattr(asyncio.StreamReader(), "_limit")  # the DATA reader lifts the line limit through it
    # The guard's wrappers must be the commands aiosmtpd dispatches to.
    assert server._smtp_methods["NOOP"].__func__ is smtp_guard.GuardedSession.smtp_NOOP
