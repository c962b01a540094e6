"""SIGTERM to a real daemon: new sessions get 421, DATA and relay sends in flight finish, exit 0; a newer database is refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mailgate import replies
from mailgate.config import load
from mailgate.store import newest_schema, open_store

from .conftest import SUPPORT, mail, run_cli_sync, send, wait_until, write_config
from .sink import Sink, free_port, relay_section, running_sink

SHUTTING_DOWN = f"{replies.S421_SHUTTING_DOWN}".encode()


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    # Detached output: a daemon holding our pipes would hang the test runner.
    return subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(config), "run"],
        stdin=subprocess.DEVNULL, stdout=handle, stderr=handle, start_new_session=True,
    )


def daemon_config(folder: Path, port: int, stop_timeout: float, extra: str = "") -> Path:
    path = write_config(folder, extra, smtp=f"stop_timeout = {stop_timeout}")
    path.write_text(path.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'))
    return path


class Client:
    """A raw SMTP client: every byte and every reply as the daemon sends it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> tuple[Client, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        return client, await client.reply()

    async def reply(self) -> bytes:
        lines = []
        async with asyncio.timeout(60):
            while True:
                line = await self.reader.readline()
                lines.append(line)
                if len(line) < 4 or line[3:4] != b"-":
                    return b"".join(lines)

    async def command(self, line: str) -> bytes:
        self.writer.write(line.encode() + b"\r\n")
        return await self.reply()

    async def start_data(self) -> None:
        assert (await self.command("EHLO client.test")).startswith(b"250")
        assert (await self.command("MAIL FROM:<alice@customer.test>")).startswith(b"250")
        assert (await self.command(f"RCPT TO:<{SUPPORT}>")).startswith(b"250")
        assert (await self.command("DATA")).startswith(b"354")

    def close(self) -> None:
        self.writer.close()


async def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(30):
        while True:
            assert process.poll() is None, "daemon exited early"
            try:
                client, greeting = await Client.connect(port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            client.close()
            if greeting.startswith(b"220"):
                return


async def wait_refusing(port: int) -> bytes:
    """After SIGTERM: the next connection is refused by the OS, or answered 421 and closed."""
    async with asyncio.timeout(30):
        while True:
            try:
                client, greeting = await Client.connect(port)
            except OSError:
                return b"refused"
            try:
                if greeting.startswith(b"421"):
                    assert await client.reader.read() == b"", "a 421 session must be closed"
                    return greeting
            finally:
                client.close()
            await asyncio.sleep(0.05)


async def wait_log(log: Path, text: str) -> None:
    await wait_until(lambda: text in log.read_text(errors="replace"), timeout=30, what=f"{text!r} in {log.name}")


async def exit_code(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    try:
        return await asyncio.to_thread(process.wait, timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the daemon did not exit after SIGTERM") from None


def spooled(db: Path) -> list[bytes]:
    with sqlite3.connect(db) as conn:
        rows = [bytes(raw) for (raw,) in conn.execute("SELECT raw FROM spool ORDER BY id")]
    conn.close()
    return rows


@pytest.mark.slow
@pytest.mark.asyncio
async def test_sigterm_lets_data_in_flight_finish_and_refuses_new_sessions(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "daemon.log"
    process = start_daemon(daemon_config(tmp_path, port, stop_timeout=30), log)
    try:
        await wait_listening(port, process)
        idle, _ = await Client.connect(port)
        assert (await idle.command("EHLO idle.test")).startswith(b"250")
        sending, _ = await Client.connect(port)
        await sending.start_data()
        raw = mail(subject="Sent while the daemon stops", message_id="<graceful1@customer.test>")
        head, tail = raw[: len(raw) // 2], raw[len(raw) // 2:]
        sending.writer.write(head)
        await sending.writer.drain()

        process.send_signal(signal.SIGTERM)
        # A session between commands is told at once; a new one is turned away.
        assert await idle.reply() == SHUTTING_DOWN + b"\r\n"
        assert await idle.reader.read() == b""
        assert await wait_refusing(port) in (b"refused", SHUTTING_DOWN + b"\r\n")
        assert process.poll() is None, "the daemon must wait for the mail in DATA"

        # The mail in DATA finishes: stored and answered 250, then the session is closed with 421.
        sending.writer.write(tail + b".\r\n")
        assert (await sending.reply()).startswith(b"250 2.0.0 Ok: queued as ")
        assert await sending.reply() == SHUTTING_DOWN + b"\r\n"
        assert await sending.reader.read() == b""
        assert await exit_code(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
    stored = spooled(tmp_path / "mailgate.sqlite3")
    assert stored == [raw]
    text = log.read_text()
    assert "smtp.stopping closed_idle=1 in_data=1" in text
    assert "smtp.stopped data_cut=0" in text


@pytest.mark.slow
@pytest.mark.asyncio
async def test_data_stalled_past_stop_timeout_gets_421_and_nothing_is_stored(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "daemon.log"
    process = start_daemon(daemon_config(tmp_path, port, stop_timeout=1), log)
    try:
        await wait_listening(port, process)
        stalled, _ = await Client.connect(port)
        await stalled.start_data()
        stalled.writer.write(mail(subject="Never finished")[:200])
        await stalled.writer.drain()
        process.send_signal(signal.SIGTERM)
        # Nothing more comes from the client: after stop_timeout it is told, and the session ends.
        assert await stalled.reply() == SHUTTING_DOWN + b"\r\n"
        assert await stalled.reader.read() == b""
        assert await exit_code(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert spooled(tmp_path / "mailgate.sqlite3") == []
    text = log.read_text()
    assert "smtp.data_cut" in text and "smtp.stopped data_cut=1" in text


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_relay_send_in_flight_completes_before_exit(tmp_path: Path) -> None:
    hold = asyncio.Event()
    async with running_sink(Sink(hold=hold)) as sink:
        port = free_port()
        log = tmp_path / "daemon.log"
        config = daemon_config(tmp_path, port, stop_timeout=30, extra=relay_section(sink.port))
        process = start_daemon(config, log)
        try:
            await wait_listening(port, process)
            await send(port, mail(subject="Acknowledge me", message_id="<graceful2@customer.test>"))
            # The acknowledgement reached the relay, which holds its DATA unanswered.
            await sink.wait_for(lambda _: sink.sessions_in_data == 1, timeout=30)
            process.send_signal(signal.SIGTERM)
            await wait_log(log, "daemon.stopping")
            assert process.poll() is None, "the daemon must wait for the relay's answer"
            hold.set()
            assert await exit_code(process) == 0
        finally:
            if process.poll() is None:
                process.kill()
    with sqlite3.connect(tmp_path / "mailgate.sqlite3") as conn:
        states = [state for (state,) in conn.execute("SELECT state FROM outbox")]
    conn.close()
    assert states == ["sent"]  # recorded: the next start does not send it again
    assert len(sink.to("alice@customer.test")) == 1


async def newer_database(tmp_path: Path) -> tuple[Path, int]:
    config_path = write_config(tmp_path)
    store = await open_store(load(config_path))
    await store.close()
    newer = newest_schema() + 2
    with sqlite3.connect(tmp_path / "mailgate.sqlite3") as conn:
        # Fault injection: this version never writes a schema newer than its own (a downgrade leaves it).
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (newer,))
    conn.close()
    return config_path, newer


@pytest.mark.asyncio
async def test_a_database_written_by_a_newer_mailgate_is_refused(tmp_path: Path) -> None:
    config_path, newer = await newer_database(tmp_path)
    known = newest_schema()
    message = (f"this database was written by a newer mailgate (schema {newer}, this one knows {known});"
               " upgrade mailgate or restore a backup")

    run = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mailgate", "--config", str(config_path), "run"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )
    assert run.returncode == 78, run.stderr  # EX_CONFIG: a restart cannot fix it
    assert message in run.stderr.decode()

    # Behind Postfix: a temporary failure, so Postfix keeps the mail until mailgate is upgraded.
    ingest = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mailgate", "--config", str(config_path), "ingest",
                         "--recipient", SUPPORT], input=mail(), capture_output=True, timeout=60,
    )
    assert ingest.returncode == 75, ingest.stderr

    status = run_cli_sync(config_path, "db", "status")
    assert status.exit_code == 78
    assert f"schema {newer}, this mailgate knows {known}" in status.output
    assert "upgrade mailgate or restore a backup" in status.output
    with sqlite3.connect(tmp_path / "mailgate.sqlite3") as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == newer  # untouched
        assert conn.execute("SELECT COUNT(*) FROM spool").fetchone()[0] == 0
    conn.close()


@pytest.mark.asyncio
async def test_db_status_shows_the_schema_version(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    missing = run_cli_sync(config_path, "db", "status", "--json")
    assert missing.exit_code == 0
    assert json.loads(missing.output)["state"] == "missing"
    assert not (tmp_path / "mailgate.sqlite3").exists()  # looking does not create it

    store = await open_store(load(config_path))
    await store.close()
    current = run_cli_sync(config_path, "db", "status")
    assert current.exit_code == 0
    assert f"schema {newest_schema()}, matches this mailgate" in current.output
    data = json.loads(run_cli_sync(config_path, "db", "status", "--json").output)
    assert {k: data[k] for k in ("ok", "database", "schema", "known", "state")} == {
        "ok": True, "database": str(tmp_path / "mailgate.sqlite3"), "schema": newest_schema(),
                    "known": newest_schema(), "state": "current"}


@pytest.mark.asyncio
async def test_lmtp_answers_each_recipient_before_the_421(tmp_path: Path) -> None:
    from mailgate.daemon import started

    from .conftest import BILLING

    config = load(write_config(tmp_path, smtp="lmtp = true\nstop_timeout = 30"))
    raw = mail(subject="Two recipients while stopping", message_id="<graceful3@customer.test>")
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(started(config))
        port = running.smtp_port
        client, _ = await Client.connect(port)
        assert (await client.command("LHLO client.test")).startswith(b"250")
        assert (await client.command("MAIL FROM:<alice@customer.test>")).startswith(b"250")
        for rcpt in (SUPPORT, BILLING):
            assert (await client.command(f"RCPT TO:<{rcpt}>")).startswith(b"250")
        assert (await client.command("DATA")).startswith(b"354")
        client.writer.write(raw[:100])
        await client.writer.drain()
        running.stop_grace = config.smtp.stop_timeout
        stopping = asyncio.create_task(stack.aclose())  # what run() does on SIGTERM
        assert await wait_refusing(port) in (b"refused", SHUTTING_DOWN + b"\r\n")
        assert not stopping.done()
        client.writer.write(raw[100:] + b".\r\n")
        queued = b"250 2.0.0 Ok: queued as "
        assert (await client.reply()).startswith(queued)
        assert (await client.reply()).startswith(queued)  # RFC 2033: one reply per recipient
        assert await client.reply() == SHUTTING_DOWN + b"\r\n"
        async with asyncio.timeout(60):
            await stopping
    assert spooled(tmp_path / "mailgate.sqlite3") == [raw]
