"""Config reload (SIGHUP): a good new file is put in force for new tickets; a bad one is refused, the old one stays."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailgate import daemon
from mailgate.config import Config
from mailgate.daemon import Running, started

from .conftest import REPO, SUPPORT, mail, send, settle, smtp_send, write_config

BASE = """
[[queues]]
name = "general"
addresses = ["support@example.test"]

[[queues]]
name = "hardware"
"""
FIRE_RULE = '\n[[rules]]\nname = "fire"\nsubject = { keywords = ["fire"] }\nqueue = "hardware"\npriority = "urgent"\n'
BAD_RULES = (
    '\n[[rules]]\nname = "broken"\nsubject = { regex = "(unclosed" }\nqueue = "nowhere"\n'
)


async def queue_of_last(running: Running) -> tuple[str, str]:
    async with running.store.read() as tx:
        row = await tx.one("SELECT queue, priority FROM tickets ORDER BY id DESC LIMIT 1")
        assert row is not None
        return row["queue"], row["priority"]


async def one_mail(running: Running, n: int) -> tuple[str, str]:
    await send(running.smtp_port, mail(subject=f"Printer on fire {n}", message_id=f"<reload{n}@c.test>"))
    await settle(running)
    return await queue_of_last(running)


@pytest.mark.asyncio
async def test_reload_puts_new_rules_in_force(tmp_path: Path, make_config: Callable[..., Config]) -> None:
    config = make_config(BASE)
    async with started(config) as running:
        assert await one_mail(running, 1) == ("general", "normal")
        write_config(tmp_path, BASE + FIRE_RULE)
        assert daemon.reload(running) is True
        assert running.config.rules[0].name == "fire"
        assert await one_mail(running, 2) == ("hardware", "urgent")


@pytest.mark.asyncio
async def test_a_bad_config_is_refused_and_the_old_one_stays(
    tmp_path: Path, make_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(BASE + FIRE_RULE)
    async with started(config) as running:
        path = write_config(tmp_path, BASE + FIRE_RULE + BAD_RULES)
        with caplog.at_level(logging.ERROR, logger="mailgate.daemon"):
            assert daemon.reload(running) is False
        errors = [r.getMessage() for r in caplog.records]
        assert any(f"{path}:" in e and "rules.1.subject.regex: bad regex '(unclosed'" in e for e in errors), errors
        assert any("rules.1.queue: unknown queue 'nowhere'" in e for e in errors), errors
        assert running.config is config
        assert await one_mail(running, 1) == ("hardware", "urgent")  # the old rules still route
        path.write_text("[gateway\n", encoding="utf-8")  # not even TOML
        assert daemon.reload(running) is False
        assert await one_mail(running, 2) == ("hardware", "urgent")


@pytest.mark.asyncio
async def test_a_config_whose_rule_tests_fail_is_refused(
    tmp_path: Path, make_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(BASE + FIRE_RULE)
    (tmp_path / "fire.eml").write_bytes(mail())
    async with started(config) as running:
        write_config(tmp_path, BASE + FIRE_RULE + '\n[[rule_tests]]\nfile = "fire.eml"\nqueue = "general"\n')
        with caplog.at_level(logging.ERROR, logger="mailgate.daemon"):
            assert daemon.reload(running) is False
        assert any("rule_tests.0.queue" in r.getMessage() and "expected 'general', got 'hardware'" in r.getMessage()
                   for r in caplog.records)
        assert running.config is config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def can_connect(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def ticket_queue(db: Path, subject: str) -> str | None:
    with sqlite3.connect(db, timeout=10) as conn:
        row = conn.execute("SELECT queue FROM tickets WHERE subject = ?", (subject,)).fetchone()
    return None if row is None else str(row[0])


@pytest.mark.slow
def test_sighup_to_a_running_daemon(tmp_path: Path) -> None:
    port = free_port()
    path = write_config(tmp_path, BASE, smtp="")
    path.write_text(path.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'))
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(path), "run"],
            cwd=REPO, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        wait_for(lambda: can_connect(port) or proc.poll() is not None, "the daemon to listen")
        assert proc.poll() is None, log_path.read_text()
        db = tmp_path / "mailgate.sqlite3"

        def deliver(subject: str) -> str | None:
            smtp_send(port, mail(subject=subject, message_id=f"<{subject.replace(' ', '-')}@c.test>"), [SUPPORT])
            wait_for(lambda: ticket_queue(db, subject) is not None, f"ticket {subject!r}")
            return ticket_queue(db, subject)

        assert deliver("fire one") == "general"
        path.write_text(path.read_text() + FIRE_RULE, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config.reloaded" in log_path.read_text(), "the reload to be logged")
        assert deliver("fire two") == "hardware"

        path.write_text(path.read_text() + BAD_RULES, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config.reload_refused errors=" in log_path.read_text(), "the refusal to be logged")
        text = log_path.read_text()
        assert "rules.1.subject.regex: bad regex" in text and "rules.1.queue: unknown queue 'nowhere'" in text
        assert proc.poll() is None  # still running, still routing with the good config
        assert deliver("fire three") == "hardware"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
