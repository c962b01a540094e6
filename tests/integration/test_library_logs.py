"""A daemon started the normal way logs mailgate's events, not its libraries' narration.

aiosmtpd logs every connection and command line at INFO (">> b'MAIL FROM:…'", "sender: …",
"recip: …": ~12 lines per SMTP session) and APScheduler every job it runs: under a flood of mail
that is the flood again, in the journal, and formatting it costs the loop time per command. They
speak at WARNING unless the operator names them (`--log-level INFO,mail.log=INFO`).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SUPPORT, mail, smtp_send, wait_until, write_config
from .sink import AGENTS, free_port, relay_section, running_sink, wait_mail

CUSTOMER = "alice@customer.test"
# TextFormatter: "<date> <time> <LEVEL> <logger> <message>"
LINE = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) ")
LIBRARIES = ("mail.log", "apscheduler", "aiosmtplib", "aiosqlite", "asyncio")


def run_daemon(config: Path, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """`mailgate run` as systemd starts it: its own process, no --log-level unless given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILGATE_LOG")}
    with log.open("wb") as out:
        # Detached output: a daemon holding our pipes would hang the test runner.
        return subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(config), *options, "--log-format", "text", "run"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True,
        )


def loggers(text: str) -> dict[str, list[str]]:
    """The log's lines by logger name (a traceback's continuation lines belong to none)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            out.setdefault(match.group(2), []).append(line)
    return out


async def one_mail_through(tmp_path: Path, name: str, *options: str) -> dict[str, list[str]]:
    """Start a daemon, send one customer mail by SMTP, wait for its acknowledgement at the relay, stop it."""
    folder = tmp_path / name
    folder.mkdir()
    async with running_sink() as sink:
        port = free_port()
        config = write_config(folder, relay_section(sink.port, send_delay=0.2) + AGENTS)
        config.write_text(config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'))
        log = folder / "daemon.log"
        daemon = run_daemon(config, log, *options)
        try:
            await wait_until(lambda: "daemon.started" in log.read_text(), timeout=60, what="the daemon started")
            raw = mail(sender=f"Alice Customer <{CUSTOMER}>", subject="Printer on fire", message_id="<lib1@customer.test>")
            await asyncio.to_thread(smtp_send, port, raw, [SUPPORT], CUSTOMER)
            await wait_mail(sink, CUSTOMER, "Printer on fire")
            await wait_until(lambda: "outbox.sent" in log.read_text(), what="the acknowledgement logged")
        finally:
            daemon.send_signal(signal.SIGTERM)
            await asyncio.to_thread(daemon.wait, 60)
    assert daemon.returncode == 0, log.read_text()
    return loggers(log.read_text())


@pytest.mark.asyncio
async def test_a_daemon_logs_no_library_lines_per_mail_unless_asked(tmp_path: Path) -> None:
    quiet = await one_mail_through(tmp_path, "default")
    events = " ".join(quiet.get("mailgate.spool", []) + quiet.get("mailgate.process", [])
                      + quiet.get("mailgate.outbox", []))
    assert "spool.stored" in events and "ticket.opened" in events and "outbox.sent" in events
    chatter = {name: lines for name, lines in quiet.items() if not name.startswith("mailgate")}
    assert chatter == {}, chatter
    assert not any(name.startswith(LIBRARIES) for name in quiet)

    # The operator asks for aiosmtpd's lines (a client's dialogue to debug): they are there again.
    loud = await one_mail_through(tmp_path, "asked", "--log-level", "INFO,mail.log=INFO")
    dialogue = " ".join(loud.get("mail.log", []))
    assert f"sender: {CUSTOMER}" in dialogue and f"recip: {SUPPORT}" in dialogue
    assert not any(name.startswith("apscheduler") for name in loud), "only the library named speaks up"
