"""Savepoints of one name, one per message of a batch: a failing one undoes its own work only."""

from __future__ import annotations

import pytest

from mailgate.config import Config
from mailgate.models import Envelope, Source
from mailgate.store import spool as spool_rows
from mailgate.store import store_for
from mailgate.store.savepoints import savepoint

from .conftest import SUPPORT

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = pytest.mark.engines


def envelope() -> Envelope:
    return Envelope("alice@customer.test", (SUPPORT,), Source.SMTP)


@pytest.mark.asyncio
async def test_a_failing_block_after_kept_ones_of_the_same_name_undoes_only_itself(config: Config) -> None:
    async with store_for(config) as store:
        kept: list[int] = []
        async with store.txn() as tx:
            for n in range(3):
                if n == 1:
                    with pytest.raises(RuntimeError):
                        async with savepoint(tx, "message"):
                            await spool_rows.insert(tx, "b" * 64, b"dropped", envelope())
                            raise RuntimeError("this message fails")
                async with savepoint(tx, "message"):  # left open on success: COMMIT releases it
                    kept.append(await spool_rows.insert(tx, f"{n}" * 64, f"kept {n}".encode(), envelope()))
            # A failure after them rolls back to its own savepoint, the newest "message".
            with pytest.raises(RuntimeError):
                async with savepoint(tx, "message"):
                    await spool_rows.insert(tx, "c" * 64, b"dropped too", envelope())
                    raise RuntimeError("the last one fails")
        async with store.read() as tx:
            assert [e.id for e in await spool_rows.pending(tx)] == kept
