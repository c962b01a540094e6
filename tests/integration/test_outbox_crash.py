"""kill -9 of a real daemon with mail in the outbox: all of it is delivered after restart, at most once more."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from .conftest import SUPPORT, mail, send, write_config
from .sink import Sink, free_port, relay_section, running_sink

TOTAL = 12
CONNECTIONS = 2


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    # Detached output: a daemon holding our pipes would hang the test runner.
    return subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(config), "run"],
        stdin=subprocess.DEVNULL, stdout=handle, stderr=handle, start_new_session=True,
    )


async def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            assert process.poll() is None, "daemon exited early"
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            greeting = await reader.read(3)
            writer.close()
            if greeting == b"220":
                return


def outbox_states(db: Path) -> Counter[str]:
    with sqlite3.connect(db, timeout=10) as conn:
        states = Counter(state for (state,) in conn.execute("SELECT state FROM outbox"))
    conn.close()
    return states


async def wait_states(db: Path, predicate: object, timeout: float = 60) -> Counter[str]:
    async with asyncio.timeout(timeout):
        while True:
            states = await asyncio.to_thread(outbox_states, db)
            if predicate(states):  # type: ignore[operator]
                return states
            await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_kill_9_with_mail_in_the_outbox(tmp_path: Path) -> None:
    hold = asyncio.Event()
    async with running_sink(Sink(hold=hold)) as sink:
        port = free_port()
        config = write_config(
            tmp_path, relay_section(sink.port, auto_replies_per_hour=100) + f"connections = {CONNECTIONS}\n"
        )
        # relay_section ends in [outbox]; the connections line belongs to [relay]: move it there.
        text = config.read_text().replace(f"connections = {CONNECTIONS}\n", "")
        text = text.replace("timeout = 10\n", f"timeout = 10\nconnections = {CONNECTIONS}\n", 1)
        config.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'))
        db = tmp_path / "mailgate.sqlite3"
        log = tmp_path / "daemon.log"
        process = start_daemon(config, log)
        try:
            await wait_listening(port, process)
            for i in range(TOTAL):
                raw = mail(sender=f"Customer {i} <c{i}@customer.test>", subject=f"crash {i}",
                           message_id=f"<crash{i}@customer.test>")
                await send(port, raw, [SUPPORT], sender=f"c{i}@customer.test")
            # Every acknowledgement is queued; the relay holds the ones in flight in DATA.
            await wait_states(db, lambda s: sum(s.values()) == TOTAL and s["sending"] == CONNECTIONS)
            async with asyncio.timeout(30):
                while sink.sessions_in_data < CONNECTIONS:
                    await asyncio.sleep(0.02)
            before = await asyncio.to_thread(outbox_states, db)
            assert before["queued"] == TOTAL - CONNECTIONS and before["sent"] == 0
            assert len(sink.received) == CONNECTIONS  # queued by the relay; the 250 is still to come
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.wait, 10)
            hold.set()  # the dead daemon never hears those 250s
            process = start_daemon(config, log)
            await wait_listening(port, process)
            await wait_states(db, lambda s: s["sent"] == TOTAL)
        finally:
            if process.poll() is None:
                process.terminate()
                await asyncio.to_thread(process.wait, 20)
        per_id = Counter(r.header("Message-ID") for r in sink.received)
        assert len(per_id) == TOTAL  # every acknowledgement delivered
        assert all(1 <= n <= 2 for n in per_id.values())
        # Only what was in flight at the kill went twice.
        assert sum(1 for n in per_id.values() if n == 2) <= CONNECTIONS
        assert {tuple(r.rcpt_tos) for r in sink.received} == {(f"c{i}@customer.test",) for i in range(TOTAL)}
        assert "outbox.recovered rows=2" in log.read_text()
