"""kill -9 of the daemon while clients send: every message that got 250 is there exactly once."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import SUPPORT, mail, write_config

TOTAL = 500
CLIENTS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    # Detached output: a daemon holding our pipes would hang the test runner.
    return subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(config), "run"],
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=handle,
        start_new_session=True,
    )


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "daemon exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(3) == b"220":
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


class Sender(threading.Thread):
    """An MTA in miniature: sends its messages, retrying each until it gets 250."""

    def __init__(self, port: int, ids: list[int], acked: set[int], lock: threading.Lock, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.ids, self.acked, self.lock, self.stop = port, ids, acked, lock, stop

    def run(self) -> None:
        client: smtplib.SMTP | None = None
        pending = list(self.ids)
        while pending and not self.stop.is_set():
            number = pending[0]
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
                raw = mail(message_id=f"<crash{number}@customer.test>", subject=f"crash {number}",
                           body=f"message {number}\n")
                client.sendmail("alice@customer.test", [SUPPORT], raw)
            except (OSError, smtplib.SMTPException):
                client = None
                time.sleep(0.05)
                continue
            with self.lock:
                self.acked.add(number)
            pending.pop(0)
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                pass


@pytest.mark.slow
def test_kill_9_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'))
    log = tmp_path / "daemon.log"
    process = start_daemon(config, log)
    acked: set[int] = set()
    lock = threading.Lock()
    stop = threading.Event()
    senders = [
        Sender(port, list(range(i, TOTAL, CLIENTS)), acked, lock, stop) for i in range(CLIENTS)
    ]
    try:
        wait_listening(port, process)
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 120
        while len(acked) < TOTAL // 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)  # mid-stream: sessions in DATA, rows mid-processing
        process.wait(timeout=10)
        acked_before_kill = len(acked)
        assert 0 < acked_before_kill < TOTAL
        process = start_daemon(config, log)
        wait_listening(port, process)
        for sender in senders:
            sender.join(timeout=180)
        assert not any(s.is_alive() for s in senders), "senders did not finish"
        assert acked == set(range(TOTAL))
        # Wait until the restarted daemon has threaded everything it holds.
        db_path = tmp_path / "mailgate.sqlite3"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sqlite3.connect(db_path) as db:
                if db.execute("SELECT COUNT(*) FROM spool WHERE state = 'received'").fetchone()[0] == 0:
                    break
            time.sleep(0.1)
    finally:
        stop.set()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    with sqlite3.connect(db_path) as db:
        spooled = Counter(
            r[0] for r in db.execute("SELECT raw FROM spool")
        )
        stored = Counter(r[0] for r in db.execute("SELECT message_id FROM messages"))
        states = dict(db.execute("SELECT state, COUNT(*) FROM spool GROUP BY state").fetchall())
    assert all(n == 1 for n in spooled.values()), "identical bytes spooled twice"
    expected = {f"crash{n}@customer.test" for n in range(TOTAL)}
    assert set(stored) == expected, f"missing: {sorted(expected - set(stored))[:5]}"
    assert all(n == 1 for n in stored.values()), [k for k, n in stored.items() if n > 1][:5]
    assert states.get("dead", 0) == 0 and states.get("received", 0) == 0, states
    assert process.returncode in (0, -signal.SIGTERM), log.read_text()[-2000:]
