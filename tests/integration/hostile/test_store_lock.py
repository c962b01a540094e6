"""A locked database and cancelled waits: the store's one connection never stays inside a stray transaction."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from mailgate.store import Store

pytestmark = pytest.mark.asyncio


async def test_a_begin_cancelled_while_another_process_writes_leaves_no_transaction(tmp_path: Path) -> None:
    """Shutdown (or a session timeout) cancels a writer waiting for another process's lock; the store goes on."""
    path = tmp_path / "store.sqlite3"
    async with Store(path, busy_timeout_ms=5_000) as store:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

            async def writer() -> None:
                async with store.txn() as tx:
                    await tx.execute("SELECT 1")

            task = asyncio.create_task(writer())
            while store._holder is not task:  # the writer has the store's lock and issues BEGIN
                await asyncio.sleep(0)
            for _ in range(5):  # let aiosqlite's thread take the BEGIN and wait on the busy lock
                await asyncio.sleep(0)
            task.cancel()
        finally:
            other.execute("COMMIT")  # the other process is done; the waiting BEGIN now goes through
            other.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with store.txn() as tx:  # before: "cannot start a transaction within a transaction"
            await tx.execute("CREATE TABLE IF NOT EXISTS after_cancel (x INTEGER)")
        async with store.read() as tx:
            assert await tx.value("SELECT COUNT(*) FROM after_cancel") == 0
