"""The store counts what it runs (statements, write and read transactions); /metrics shows the totals.

A benchmark divides them by the mails it sent: statements and commits per inbound mail are what the
store's round trips cost, whatever the machine's speed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.config import Config
from mailgate.daemon import started
from mailgate.store import Store, StoreUnavailable, tickets

from .conftest import SUPPORT, mail, send, settle, write_config
from .sink import AGENTS, Sink, relay_section, wait_mail
from .test_health import HTTP, metrics

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = pytest.mark.engines


CUSTOMER = "alice@customer.test"


@pytest.fixture
def counted_config(tmp_path: Path) -> Callable[[int], Config]:
    def make(relay_port: int) -> Config:
        return config_mod.load(write_config(tmp_path, relay_section(relay_port, send_delay=0.2) + AGENTS + HTTP))

    return make


@pytest.mark.asyncio
async def test_statements_and_commits_are_counted_and_a_rollback_is_not(tmp_path: Path) -> None:
    async with Store(tmp_path / "counted.sqlite3") as store:
        start = store.counts.statements, store.counts.write_transactions, store.counts.read_transactions
        async with store.txn() as tx:
            assert await tickets.id_of(tx, 4711) is None
        assert store.counts.write_transactions == start[1] + 1
        assert store.counts.statements == start[0] + 1
        with pytest.raises(LookupError):
            async with store.txn() as tx:
                await tickets.id_of(tx, 4712)
                raise LookupError("the caller gave up: rolled back")
        assert store.counts.write_transactions == start[1] + 1, "a rolled-back transaction committed nothing"
        assert store.counts.statements == start[0] + 2, "its statement ran all the same"
        async with store.read() as tx:
            await tickets.id_of(tx, 4713)
        assert store.counts.read_transactions == start[2] + 1
        assert store.counts.write_transactions == start[1] + 1
        assert store.counts.statements == start[0] + 3
    with pytest.raises(StoreUnavailable):
        async with store.txn():
            pass  # a closed store: no transaction, nothing counted
    assert store.counts.write_transactions == start[1] + 1


@pytest.mark.asyncio
async def test_metrics_show_the_store_counters_moving_with_mail(counted_config: Callable[[int], Config], sink: Sink) -> None:
    async with started(counted_config(sink.port)) as running:
        before = await metrics(running)
        for n in range(3):
            await send(running.smtp_port, mail(subject=f"Printer on fire {n}", message_id=f"<c{n}@customer.test>"),
                       [SUPPORT])
        await settle(running)
        for n in range(3):
            await wait_mail(sink, CUSTOMER, f"Printer on fire {n}")
        after = await metrics(running)

    def moved(name: str) -> float:
        return after[(name, ())] - before[(name, ())]

    # Each mail: its spool commit, its processing, its acknowledgement's sending and recording.
    assert moved("mailgate_store_write_transactions_total") >= 3
    assert moved("mailgate_store_statements_total") >= 3 * 4
    assert moved("mailgate_store_read_transactions_total") >= 1  # the first scrape's own snapshot
    # The process's own accounting (prometheus-client reads /proc/self/stat): CPU and memory per scrape.
    assert after[("process_cpu_seconds_total", ())] >= before[("process_cpu_seconds_total", ())] > 0
    assert after[("process_resident_memory_bytes", ())] > 0
