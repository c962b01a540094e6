"""Re-run parsing and threading from the raw spool into a fresh database: the spool is the truth."""

from __future__ import annotations

from pathlib import Path

from mailgate.config import Config
from mailgate.pipeline.process import Processor
from mailgate.store import spool as spooled
from mailgate.store import store_for, threads

_BATCH = 500


def config_for(config: Config, database: Path) -> Config:
    """The same config, writing to another database (attachments beside it)."""
    storage = config.storage.model_copy(update={"database": database, "attachments": None})
    return config.model_copy(update={"storage": storage})


async def replay(config: Config, into: Path) -> tuple[int, int]:
    """Copy every spooled message, in arrival order, into a new store and process it there.

    Returns (spooled, messages). The old database is only read.
    """
    if into.exists():
        raise FileExistsError(f"{into} exists; replay only writes a new database")
    target_config = config_for(config, into)
    async with store_for(config) as source, store_for(target_config) as target:
        after = 0
        copied = 0
        while True:
            async with source.read() as tx:
                rows = await spooled.copies(tx, after, _BATCH)
            if not rows:
                break
            async with target.txn() as tx:
                await spooled.insert_copies(tx, rows)
            copied += len(rows)
            after = rows[-1].id
        await Processor(target_config, target).drain()
        async with target.read() as tx:
            messages = await threads.message_count(tx)
    return copied, messages
