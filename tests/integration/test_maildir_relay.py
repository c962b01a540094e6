"""Outgoing mail into a Maildir: README's first run shows the acknowledgement at once, and no file is half.

README's run command relayed to 127.0.0.1:2526, where nothing listens on a newcomer's machine: every
acknowledgement of their first test mail failed and retried for two days. The example config now
writes outgoing mail into var/outgoing/ (a relay that is a folder), and `run --dev` does the same for
a config whose [relay] names no destination.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import re
import shlex
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.daemon import started
from mailgate.outgoing.maildir import MaildirRelay, envelope_headers

from .conftest import REPO, SUPPORT, mail, send, settle, wait_until, write_config
from .sink import free_port, running_sink, wait_mail
from .test_outbox_crash import wait_listening

WAIT = 60.0  # generous: two cores shared with other test runs


def readme_block(marker: str) -> list[str]:
    """The lines of the fenced block after `<!-- marker -->` in README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\s*```\w*\n(.*?)```", text, re.S)
    assert found, f"README.md has no {marker} block"
    return [line for line in found.group(1).splitlines() if line.strip()]


def example_site(folder: Path) -> tuple[Path, int]:
    """config.example.toml and the examples/ its rule tests name, copied as a checkout has them.

    Only the listen port changes: a test uses only ports it opened itself.
    """
    port = free_port()
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    assert 'listen = "127.0.0.1:2525"' in text
    (folder / "config.example.toml").write_text(text.replace("127.0.0.1:2525", f"127.0.0.1:{port}"), encoding="utf-8")
    shutil.copytree(REPO / "examples", folder / "examples")
    return folder / "config.example.toml", port


def start(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    # Detached output: a daemon holding our pipes would hang the test runner.
    return subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle,
                            start_new_session=True)


def readme_daemon(site: Path, log: Path) -> subprocess.Popen[bytes]:
    """README's run command as typed, from `mailgate` on, with this interpreter's mailgate."""
    (line,) = readme_block("run-command")
    words = shlex.split(line.split("&&")[-1])
    assert words[0].endswith("/mailgate"), line
    return start([sys.executable, "-m", "mailgate", *words[1:]], site, log)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)  # a test that failed while it was frozen
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


async def wait_files(folder: Path, count: int, timeout: float = WAIT) -> list[Path]:
    def files() -> list[Path] | None:
        found = sorted(folder.glob("*")) if folder.is_dir() else []
        return found if len(found) >= count else None

    return await wait_until(files, timeout=timeout, what=f"{count} files in {folder}")


def rows(db: Path, sql: str, args: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def expected_file(row: sqlite3.Row) -> bytes:
    """What a complete Maildir file of an outbox row holds: the envelope headers, then the mail (LF)."""
    return envelope_headers(row["mail_from"], row["rcpt_to"]) + bytes(row["raw"]).replace(b"\r\n", b"\n")


def by_message_id(db: Path) -> dict[str, sqlite3.Row]:
    return {r["message_id"]: r for r in rows(db, "SELECT * FROM outbox")}


def message_id(path: Path) -> str:
    with path.open("rb") as handle:
        return str(email.message_from_binary_file(handle)["Message-ID"]).strip().strip("<>")


@pytest.mark.slow
@pytest.mark.asyncio
async def test_readme_first_run_shows_the_acknowledgement_in_var_outgoing(tmp_path: Path) -> None:
    """README's run command, then its "try it" lines: the acknowledgement is in var/outgoing/new."""
    config, port = example_site(tmp_path)
    log = tmp_path / "daemon.log"
    process = readme_daemon(tmp_path, log)
    try:
        await wait_listening(port, process)
        assert "outgoing.started maildir=" + str(tmp_path / "var" / "outgoing" / "new") in log.read_text()
        send_line, read_line = readme_block("try-it")
        sent = await asyncio.to_thread(subprocess.run, ["bash", "-c", send_line.replace("2525", str(port))],
                                       cwd=tmp_path, capture_output=True, text=True, timeout=WAIT)
        assert sent.returncode == 0, sent.stderr
        new = tmp_path / "var" / "outgoing" / "new"
        files = await wait_files(new, 2)  # the acknowledgement and the assignee's notification
        shown = await asyncio.to_thread(subprocess.run, ["bash", "-c", read_line], cwd=tmp_path,
                                        capture_output=True, text=True, timeout=WAIT)
        assert shown.returncode == 0, shown.stderr
        assert "Delivered-To: you@customer.test" in shown.stdout
        assert "Subject: [#1000] Received: Hello" in shown.stdout
    finally:
        stop(process)
    db = tmp_path / "var" / "mailgate.sqlite3"
    outbox = by_message_id(db)
    acks = [f for f in files if b"Delivered-To: you@customer.test\n" in f.read_bytes()]
    assert len(acks) == 1
    ack = acks[0]
    row = outbox[message_id(ack)]
    assert (row["kind"], row["state"], row["rcpt_to"]) == ("ack", "sent", "you@customer.test")
    data = ack.read_bytes()
    assert data == expected_file(row)
    assert data.startswith(f"Return-Path: <{row['mail_from']}>\nX-Original-To: you@customer.test\n"
                           "Delivered-To: you@customer.test\n".encode())
    assert row["mail_from"].startswith("bounces+") and b"\r\n" not in data
    assert stat.S_IMODE(ack.stat().st_mode) == 0o600
    assert stat.S_IMODE(new.stat().st_mode) == 0o700
    assert not list((tmp_path / "var" / "outgoing" / "tmp").iterdir())
    # Sent as from a relay: the customer's answer is an outgoing message of the ticket.
    assert rows(db, "SELECT kind FROM messages WHERE direction = 'out' AND message_id = ?", (row["message_id"],))
    assert config.exists()


def big_mail(n: int) -> bytes:
    """A customer's mail with a 4 MB file: the agent's notification carries it (about 5.5 MB to write)."""
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <c{n}@customer.test>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Logs attached {n}"
    msg["Message-ID"] = f"<big-{n}@customer.test>"
    msg.set_content("The logs are attached.\n")
    msg.add_attachment(os.urandom(4 * 1024 * 1024), maintype="application", subtype="octet-stream",
                       filename=f"logs-{n}.bin")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def stopped(pid: int) -> None:
    """Until every thread of pid is stopped: kill() returns once SIGSTOP is queued, and a thread
    running on another CPU goes on (and may finish a write) until it next enters the kernel."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return  # no procfs: SIGSTOP's delivery is as good as it gets
    async with asyncio.timeout(WAIT):
        while True:
            states = []
            for task in tasks.iterdir():
                with contextlib.suppress(OSError):  # a thread that just ended
                    states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            if all(state in ("T", "t") for state in states):
                return
            await asyncio.sleep(0)


async def catch_mid_write(process: subprocess.Popen[bytes], maildir: Path) -> str:
    """Stop the daemon (SIGSTOP) while a file is in tmp/ and not yet in new/; its name.

    SIGSTOP freezes every thread at once, so what tmp/ and new/ show then is exactly the writer's state.
    """
    async with asyncio.timeout(WAIT):
        while True:
            assert process.poll() is None, "daemon exited early"
            names = [e.name for e in os.scandir(maildir / "tmp")]
            if names:
                os.kill(process.pid, signal.SIGSTOP)
                await stopped(process.pid)
                caught = [n for n in os.listdir(maildir / "tmp") if not (maildir / "new" / n).exists()]
                if caught:
                    return caught[0]
                os.kill(process.pid, signal.SIGCONT)
            await asyncio.sleep(0.0005)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_kill_9_mid_write_leaves_no_half_file_in_new(tmp_path: Path) -> None:
    config, port = example_site(tmp_path)
    maildir = tmp_path / "var" / "outgoing"
    db = tmp_path / "var" / "mailgate.sqlite3"
    log = tmp_path / "daemon.log"
    argv = [sys.executable, "-m", "mailgate", "--config", str(config), "run", "--dev"]
    process = start(argv, tmp_path, log)
    try:
        await wait_listening(port, process)
        for n in range(3):
            await send(port, big_mail(n), sender=f"c{n}@customer.test")
        caught = await catch_mid_write(process, maildir)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        # The dead writer's file stays in tmp/, where no mail reader looks; new/ holds only whole mails.
        assert (maildir / "tmp" / caught).exists() and not (maildir / "new" / caught).exists()
        outbox = by_message_id(db)
        for path in (maildir / "new").iterdir():
            assert path.read_bytes() == expected_file(outbox[message_id(path)]), path.name
        assert any(r["state"] == "sending" for r in outbox.values())

        process = start(argv, tmp_path, log)
        await wait_listening(port, process)
        async with asyncio.timeout(WAIT):
            while True:
                states = [r["state"] for r in rows(db, "SELECT state FROM outbox")]
                if len(states) >= 6 and set(states) == {"sent"}:
                    break
                await asyncio.sleep(0.1)
    finally:
        stop(process)
    assert "outbox.recovered rows=" in log.read_text()
    outbox = by_message_id(db)
    written: dict[str, int] = {}
    for path in (maildir / "new").iterdir():
        key = message_id(path)
        assert path.read_bytes() == expected_file(outbox[key]), path.name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        written[key] = written.get(key, 0) + 1
    # Every row is in new/ whole; the one interrupted was written again, at most once more.
    assert set(written) == set(outbox) and all(count <= 2 for count in written.values())


@pytest.mark.slow
@pytest.mark.asyncio
async def test_run_dev_writes_into_var_outgoing_unless_relay_says_otherwise(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    path = write_config(plain, "[relay]\nconnections = 1\n")  # a [relay] that names no destination
    port = free_port()
    path.write_text(path.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'))
    log = plain / "daemon.log"
    # From another folder: var/outgoing is beside the config, as the database is.
    process = start([sys.executable, "-m", "mailgate", "--config", str(path), "run", "--dev"], tmp_path, log)
    try:
        await wait_listening(port, process)
        await send(port, mail(message_id="<dev@customer.test>"))
        (ack,) = await wait_files(plain / "var" / "outgoing" / "new", 1)
    finally:
        stop(process)
    assert b"Delivered-To: alice@customer.test\n" in ack.read_bytes()
    assert "outgoing.started maildir=" + str(plain / "var" / "outgoing" / "new") in log.read_text()

    # A config that names its relay keeps it under --dev.
    async with running_sink() as sink:
        named = tmp_path / "named"
        named.mkdir()
        port = free_port()
        path = write_config(named, f'[relay]\nhost = "127.0.0.1"\nport = {sink.port}\nsecurity = "none"\n')
        path.write_text(path.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'))
        log = named / "daemon.log"
        process = start([sys.executable, "-m", "mailgate", "--config", str(path), "run", "--dev"], named, log)
        try:
            await wait_listening(port, process)
            await send(port, mail(message_id="<dev-relay@customer.test>"))
            await wait_mail(sink, "alice@customer.test", "Received")
        finally:
            stop(process)
        assert not (named / "var").exists()
        assert f"outgoing.started relay=127.0.0.1:{sink.port}" in log.read_text()


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailgate", "--config", str(path), "check-config"],
                          capture_output=True, text=True, timeout=WAIT)


def test_check_config_refuses_a_maildir_next_to_a_smarthost(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[relay]\nmaildir = "out"\nhost = "smtp.example.test"\nport = 587\n')
    result = check_config(path)
    assert result.returncode == 1
    lines = path.read_text().splitlines()
    host_line = lines.index('host = "smtp.example.test"') + 1
    assert f"{path}:{host_line}: relay.host: 'host' is for a smarthost" in result.stderr
    assert "relay.port: 'port' is for a smarthost" in result.stderr

    path = write_config(tmp_path, '[relay]\nmaildir = " "\n')
    result = check_config(path)
    assert result.returncode == 1 and "relay.maildir: Value error" not in result.stderr
    assert "relay.maildir: give a folder" in result.stderr


def test_maildir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = config_mod.load(write_config(tmp_path, '[relay]\nmaildir = "var/outgoing"\n'))
    assert config.relay.maildir == tmp_path / "var" / "outgoing"


@pytest.mark.asyncio
async def test_an_unwritable_maildir_keeps_the_mail_and_retries(tmp_path: Path) -> None:
    """A full disk or a broken folder is the operator's to fix: the mail waits, then goes; nothing is lost."""
    config = config_mod.load(write_config(
        tmp_path, '[relay]\nmaildir = "out"\n[outbox]\nretry_base = 0.2\nretry_max = 0.5\n'))
    new = tmp_path / "out" / "new"
    async with started(config) as running:
        assert running.outgoing is not None
        new.rmdir()
        new.write_text("not a folder")  # every write into new/ now fails
        sender = running.outgoing.sender
        await send(running.smtp_port, mail(message_id="<wait@customer.test>"))
        await settle(running)
        async with asyncio.timeout(WAIT):
            while sender.attempts < 2:
                sender.delivered.clear()
                await sender.delivered.wait()
        async with running.store.read() as tx:
            row = await tx.one("SELECT state, last_error FROM outbox WHERE kind = 'ack'")
        assert row is not None and row["state"] in ("queued", "sending")
        assert "maildir:" in row["last_error"]
        assert not list((tmp_path / "out" / "tmp").iterdir())  # no leftovers of the failed tries
        new.unlink()
        async with asyncio.timeout(WAIT):
            while True:
                async with running.store.read() as tx:
                    if await tx.value("SELECT state FROM outbox WHERE kind = 'ack'") == "sent":
                        break
                sender.delivered.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1):
                        await sender.delivered.wait()
    (ack,) = list(new.iterdir())
    assert b"Delivered-To: alice@customer.test\n" in ack.read_bytes()


@pytest.mark.asyncio
async def test_maildir_relay_refuses_what_no_relay_would_take(tmp_path: Path) -> None:
    """The same answers as the SMTP relay: a header-breaking address is refused for good, never written."""
    config = config_mod.load(write_config(tmp_path, '[relay]\nmaildir = "out"\n'))
    relay = MaildirRelay(config.relay)
    try:
        relay.prepare()
        refused = await relay.send("bounces@example.test", "x@customer.test\nBcc: victim@other.test", b"Subject: x\r\n\r\nx\r\n")
        assert not refused.ok and refused.permanent
        results = [await relay.send("bounces@example.test", "bob@customer.test", b"Subject: x\r\n\r\nx\r\n")
                   for _ in range(20)]
    finally:
        await relay.close()
    assert all(r.ok for r in results)
    files = list((tmp_path / "out" / "new").iterdir())
    assert len(files) == 20  # unique names, even within one microsecond
    assert all(re.fullmatch(r"\d+\.M\d+P\d+Q\d+R[0-9a-f]{16}\.[^/:]+", f.name) for f in files)


def test_a_maildir_that_cannot_be_made_stops_the_start_with_the_reason(tmp_path: Path) -> None:
    """Better one clear line at start than every outgoing mail retrying unseen for two days."""
    (tmp_path / "blocker").write_text("a file where the folder should be")
    path = write_config(tmp_path, '[relay]\nmaildir = "blocker/outgoing"\n')
    result = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(path), "run"],
                            capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert f"cannot start: [Errno 20] Not a directory: '{tmp_path / 'blocker' / 'outgoing' / 'tmp'}'" in result.stderr
