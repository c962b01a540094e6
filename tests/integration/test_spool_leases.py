"""Spool leases: a worker takes received mail before it parses it; another daemon's live claim is
left alone, a dead one's is taken over when its lease ends, and a restart takes its own back at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import spool
from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.config.node import lease_seconds, node_name
from mailgate.pipeline.process import Processor
from mailgate.store import Store, store_for

from .conftest import mail, write_config
from .test_perf_semantics import spool_all

pytestmark = pytest.mark.asyncio

BACKLOG = [mail(sender=f"Customer {i} <c{i}@customer.test>", subject=f"Leased {i}",
                message_id=f"<leased{i}@customer.test>") for i in range(5)]


def node_config(tmp_path: Path, node: str) -> Config:
    """A daemon's config named `node`, on the database every node shares."""
    folder = tmp_path / node
    folder.mkdir()
    path = write_config(folder, storage=f'node = "{node}"\nlease = 120')
    path.write_text(path.read_text().replace('database = "mailgate.sqlite3"', f'database = "{tmp_path / "shared.sqlite3"}"'))
    return config_mod.load(path)


async def states(store: Store) -> list[tuple[str, str | None]]:
    async with store.read() as tx:
        return [(r["state"], r["claimed_by"]) for r in await tx.all("SELECT state, claimed_by FROM spool ORDER BY id")]


async def test_another_daemons_leased_mail_waits_for_its_lease(tmp_path: Path) -> None:
    clock = ManualClock()
    a, b = node_config(tmp_path, "mx-a"), node_config(tmp_path, "mx-b")
    async with store_for(a, clock) as store_a, store_for(b, clock) as store_b:
        await spool_all(store_a, BACKLOG)
        # A's worker took the backlog (and then died, or is still parsing it).
        taken = await spool.claim(store_a, node_name(a), lease_seconds(a), limit=100)
        assert [e.id for e in taken] == [1, 2, 3, 4, 5]
        assert await Processor(b, store_b).drain() == 0
        assert await states(store_b) == [("received", "mx-a")] * 5
        clock.advance(timedelta(seconds=lease_seconds(a) + 1))
        assert await Processor(b, store_b).drain() == 5
        assert await states(store_b) == [("done", "mx-b")] * 5


async def test_a_restart_takes_its_own_leased_mail_back_at_once(tmp_path: Path) -> None:
    clock = ManualClock()
    a, b = node_config(tmp_path, "mx-a"), node_config(tmp_path, "mx-b")
    async with store_for(a, clock) as store_a, store_for(b, clock) as store_b:
        await spool_all(store_a, BACKLOG)
        await spool.claim(store_a, node_name(a), lease_seconds(a), limit=3)
        # B takes what nobody holds; A's next life (the same node) takes its three without waiting.
        assert await Processor(b, store_b).drain() == 2
        assert await Processor(a, store_a).drain() == 3
        assert await states(store_a) == [("done", "mx-a")] * 3 + [("done", "mx-b")] * 2


async def test_a_stopping_worker_frees_what_it_took_and_did_not_process(tmp_path: Path) -> None:
    clock = ManualClock()
    a, b = node_config(tmp_path, "mx-a"), node_config(tmp_path, "mx-b")
    async with store_for(a, clock) as store_a, store_for(b, clock) as store_b:
        await spool_all(store_a, BACKLOG)
        processor = Processor(a, store_a)
        drain = asyncio.create_task(processor.drain())
        async with asyncio.timeout(20):
            while processor._batch is None:  # the batch's transaction is open: SIGTERM comes now
                await asyncio.sleep(0)
        processor.stopping = True  # what the worker's stop() does
        handled = await drain
        assert 1 <= handled < len(BACKLOG)
        # The rest is free at once for the other daemon, not after A's lease.
        assert await Processor(b, store_b).drain() == len(BACKLOG) - handled
        assert {state for state, _ in await states(store_b)} == {"done"}
