"""Two daemons on one SQLite file (two configs, one relay): each mail is one ticket message, each
acknowledgement reaches the relay once, and a daemon's start or death never re-sends the other's mail."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.config.node import node_name
from mailgate.daemon import Running, started
from mailgate.ops import lifecycle

from .conftest import AGENTS, SUPPORT, MakeDaemon, cli_ok, mail, send, wait_until, write_config
from .sink import Sink, free_port, relay_section, running_sink
from .test_outbox_crash import start_daemon, wait_listening

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

# Many customers within a minute: the storm fuse's global caps on acknowledgements would cut in.
NO_CAPS = "\n[storms]\nacks_per_minute = 0\nacks_per_hour = 0\n"


def shared_config(tmp_path: Path, name: str, relay_port: int, *, storage: str = "", smtp_port: int = 0,
                  connections: int = 2, agents: bool = True) -> Path:
    """A config of its own folder (so a node of its own) whose database is the one file all share;
    without agents, a customer's mail makes one outgoing mail only (its acknowledgement)."""
    folder = tmp_path / name
    folder.mkdir()
    body = relay_section(relay_port, auto_replies_per_hour=100) + (AGENTS if agents else "") + NO_CAPS
    body = body.replace("timeout = 10\n", f"timeout = 10\nconnections = {connections}\n", 1)
    path = write_config(folder, body, storage=storage)
    text = path.read_text().replace('database = "mailgate.sqlite3"', f'database = "{tmp_path / "shared.sqlite3"}"')
    path.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{smtp_port}"'))
    return path


def query(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def outbox(db: Path) -> list[tuple[object, ...]]:
    """(id, state, claimed_by, lease_until) of every outgoing mail."""
    return await asyncio.to_thread(query, db, "SELECT id, state, claimed_by, lease_until FROM outbox ORDER BY id")


def customer_mail(i: int) -> bytes:
    return mail(sender=f"Customer {i} <c{i}@customer.test>", subject=f"Shared {i}",
                message_id=f"<shared{i}@customer.test>")


async def test_mail_spread_over_two_daemons_is_one_message_and_one_ack_each(
    tmp_path: Path, sink: Sink, make_daemon: MakeDaemon,
) -> None:
    total = 120
    a = await make_daemon(config=config_mod.load(shared_config(tmp_path, "a", sink.port)))
    b = await make_daemon(config=config_mod.load(shared_config(tmp_path, "b", sink.port)))
    assert node_name(a.config) != node_name(b.config)
    ports = [a.smtp_port, b.smtp_port]
    clients = 6

    async def client(first: int) -> None:
        for i in range(first, total, clients):
            await send(ports[i % 2], customer_mail(i), [SUPPORT], sender=f"c{i}@customer.test")

    await asyncio.gather(*(client(c) for c in range(clients)))
    db = tmp_path / "shared.sqlite3"
    await wait_until(lambda: not query(db, "SELECT 1 FROM outbox WHERE state != 'sent'")
                     and query(db, "SELECT COUNT(*) FROM spool WHERE state = 'received'") == [(0,)], timeout=60)
    outgoing = query(db, "SELECT COUNT(*) FROM outbox")[0][0]
    # Each mail the outbox holds reached the relay once: acknowledgements and the agent's notices.
    assert Counter(Counter(r.header("Message-ID") for r in sink.received).values()) == {1: outgoing}
    acks = [x for x in sink.received if x.rcpt_tos[0].endswith("@customer.test")]
    # Every mail is one ticket message; every customer got one acknowledgement, each sent once.
    stored = Counter(m for (m,) in query(db, "SELECT message_id FROM messages WHERE direction = 'in'"))
    assert stored == Counter({f"shared{i}@customer.test": 1 for i in range(total)})
    assert Counter(tuple(x.rcpt_tos) for x in acks) == Counter({(f"c{i}@customer.test",): 1 for i in range(total)})
    assert query(db, "SELECT COUNT(*) FROM spool WHERE state != 'done'") == [(0,)]
    # Both daemons took their share of the work (each is woken by the mail it accepted).
    nodes = {node_name(a.config), node_name(b.config)}
    assert {n for (n,) in query(db, "SELECT DISTINCT claimed_by FROM spool")} == nodes
    assert {n for (n,) in query(db, "SELECT DISTINCT claimed_by FROM outbox")} == nodes


def in_flight(db: Path, node: str) -> list[int]:
    """The outgoing mails this node holds claimed ('sending')."""
    return [int(i) for (i,) in query(db, "SELECT id FROM outbox WHERE state = 'sending' AND claimed_by = ?", (node,))]


def all_sent(db: Path, total: int) -> bool:
    return query(db, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == [(total,)]


async def test_a_daemon_starting_leaves_the_other_daemons_mail_in_flight_alone(tmp_path: Path) -> None:
    hold = asyncio.Event()
    db = tmp_path / "shared.sqlite3"
    total = 4
    async with running_sink(Sink(hold=hold)) as sink:
        a_config = config_mod.load(shared_config(tmp_path, "a", sink.port, connections=1, agents=False))
        a_node = node_name(a_config)
        async with started(a_config) as a:
            for i in range(total):
                await send(a.smtp_port, customer_mail(i), [SUPPORT], sender=f"c{i}@customer.test")
            # A's one relay session holds an acknowledgement in DATA: its batch is 'sending'.
            await wait_until(lambda: sink.sessions_in_data == 1 and in_flight(db, a_node)
                             and query(db, "SELECT COUNT(*) FROM outbox") == [(total,)])
            held = in_flight(db, a_node)
            listed = (await cli_ok(a, "outbox", "list", "--state", "sending", "--json")).json
            assert {(r["id"], r["claimed_by"]) for r in listed} == {(i, a_node) for i in held}
            assert a_node[:15] in (await cli_ok(a, "outbox", "list")).stdout  # the node column
            b_config = config_mod.load(shared_config(tmp_path, "b", sink.port, connections=1, agents=False))
            async with started(b_config) as b:
                assert b.outgoing is not None
                # B's start took none of them back: A is alive and sending them.
                assert set(held) <= set(in_flight(db, a_node))
                hold.set()
                await wait_until(lambda: all_sent(db, total))
        per_id = Counter(r.header("Message-ID") for r in sink.received)
        assert len(per_id) == total and set(per_id.values()) == {1}  # nothing went twice
        # A recorded what it sent; what was still queued when B came up, either may have sent.
        assert {n for (i, n) in query(db, "SELECT id, claimed_by FROM outbox") if i in held} == {a_node}


async def kill_while_sending(tmp_path: Path, sink: Sink, a_path: Path, port: int, total: int) -> list[int]:
    """Start `mailgate run` on a_path, send `total` mails, kill -9 it with an acknowledgement in DATA;
    the ids it held 'sending'."""
    db = tmp_path / "shared.sqlite3"
    a_node = node_name(config_mod.load(a_path))
    process = start_daemon(a_path, tmp_path / "a.log")
    try:
        await wait_listening(port, process)
        for i in range(total):
            await send(port, customer_mail(i), [SUPPORT], sender=f"c{i}@customer.test")
        await wait_until(lambda: sink.sessions_in_data == 1 and in_flight(db, a_node)
                         and query(db, "SELECT COUNT(*) FROM outbox") == [(total,)])
        held = in_flight(db, a_node)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        await asyncio.to_thread(process.wait, 10)
    return held


async def test_a_killed_daemons_mail_is_taken_over_once_its_lease_ran_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    hold = asyncio.Event()
    db = tmp_path / "shared.sqlite3"
    total = 4
    async with running_sink(Sink(hold=hold)) as sink:
        port = free_port()
        # Claims hold three seconds: short, so the test sees B take the dead daemon's over.
        a_path = shared_config(tmp_path, "a", sink.port, storage="lease = 3", smtp_port=port, connections=1, agents=False)
        held = await kill_while_sending(tmp_path, sink, a_path, port, total)
        hold.set()  # the dead daemon never hears the 250
        b_config = config_mod.load(shared_config(tmp_path, "b", sink.port, storage="lease = 3", agents=False))
        async with started(b_config):
            await wait_until(lambda: all_sent(db, total))
        # B sent the dead daemon's claims, with its own attempt counted on top of A's.
        taken = query(db, f"SELECT claimed_by, attempts FROM outbox WHERE id IN ({','.join('?' * len(held))})",
                      tuple(held))
        assert taken == [(node_name(b_config), 2)] * len(held)
        a_node = node_name(config_mod.load(a_path))
        assert f"outbox.lease_expired ids={held} from={a_node}" in caplog.text
        per_id = Counter(r.header("Message-ID") for r in sink.received)
        assert len(per_id) == total
        # Only the one in DATA at the kill reached the relay twice.
        assert sorted(per_id.values()) == [1] * (total - 1) + [2]


async def test_a_restarted_daemon_takes_its_own_mail_back_at_once(tmp_path: Path) -> None:
    """The other daemon leaves a dead node's claims alone for their lease (300 s by default); the dead
    daemon's next life takes them back at its start, not after the lease."""
    hold = asyncio.Event()
    db = tmp_path / "shared.sqlite3"
    total = 3
    async with running_sink(Sink(hold=hold)) as sink:
        port = free_port()
        a_path = shared_config(tmp_path, "a", sink.port, smtp_port=port, connections=1, agents=False)
        a_node = node_name(config_mod.load(a_path))
        async with started(config_mod.load(shared_config(tmp_path, "b", sink.port, agents=False))):
            held = await kill_while_sending(tmp_path, sink, a_path, port, total)
            hold.set()
            process = start_daemon(a_path, tmp_path / "a.log")
            try:
                await wait_listening(port, process)
                await wait_until(lambda: all_sent(db, total))
            finally:
                process.terminate()
                await asyncio.to_thread(process.wait, 20)
        # The other daemon (woken by every commit A made) never took A's claims; A's next life did.
        rows = query(db, "SELECT id, claimed_by FROM outbox")
        assert {n for (i, n) in rows if i in held} == {a_node}
        assert f"outbox.recovered rows={len(held)}" in (tmp_path / "a.log").read_text()
        per_id = Counter(r.header("Message-ID") for r in sink.received)
        assert len(per_id) == total and sorted(per_id.values()) == [1] * (total - 1) + [2]


@pytest.fixture
def two_configs(tmp_path: Path, sink: Sink) -> tuple[Config, Config]:
    return (config_mod.load(shared_config(tmp_path, "a", sink.port)),
            config_mod.load(shared_config(tmp_path, "b", sink.port)))


def wake_job_gone(running: Running, timer_id: int) -> bool:
    """Whether this daemon's scheduler has run its job for the timer (fired, or found the row gone)."""
    assert running.outgoing is not None
    scheduler = running.outgoing.timers._scheduler
    return scheduler is not None and scheduler.get_job(f"timer-{timer_id}") is None


async def test_a_timer_both_daemons_fire_takes_effect_once(sink: Sink, two_configs: tuple[Config, Config]) -> None:
    clock = ManualClock()
    async with started(two_configs[0], clock=clock) as a, started(two_configs[1], clock=clock) as b:
        assert a.outgoing is not None and b.outgoing is not None
        await send(a.smtp_port, customer_mail(1), [SUPPORT], sender="c1@customer.test")
        await sink.wait_for(lambda r: any(x.rcpt_tos == ["c1@customer.test"] for x in r))
        await cli_ok(a, "tickets", "assign", "1000", "aino", "--as", "aino")
        await cli_ok(a, "tickets", "snooze", "1000", "3d", "--as", "aino")
        async with a.store.read() as tx:
            timer_id = int(await tx.value("SELECT id FROM timers WHERE kind = ?", (lifecycle.WAKE,)))
        db = Path(a.config.database_path)
        # Nothing in flight when the clock jumps three days: every lease would have run out.
        await wait_until(lambda: not query(db, "SELECT 1 FROM outbox WHERE state != 'sent'"))
        clock.advance(timedelta(days=3, minutes=1))
        # Both schedulers run the wake-up now; whichever commits second finds the row gone.
        await asyncio.gather(a.outgoing.timers.reschedule(), b.outgoing.timers.reschedule())
        await wait_until(lambda: wake_job_gone(a, timer_id))
        await wait_until(lambda: wake_job_gone(b, timer_id))
        await sink.wait_for(lambda r: any("Back from waiting" in x.header("Subject") for x in r))
        await wait_until(lambda: not query(db, "SELECT 1 FROM outbox WHERE state != 'sent'"))
        # One wake-up took effect: one event, one notice to the agent, the timer row gone.
        assert query(db, "SELECT COUNT(*) FROM events WHERE kind = 'ticket.woken'") == [(1,)]
        assert query(db, "SELECT COUNT(*) FROM timers WHERE id = ?", (timer_id,)) == [(0,)]
        assert len([x for x in sink.received if "Back from waiting" in x.header("Subject")]) == 1
        assert a.outgoing.timers.fired + b.outgoing.timers.fired == 1
