"""A loaded config in use: the store it names and a daemon started from it (the checks of the file
itself are unit tests in tests/unit/test_config*.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.config import Config
from mailgate.daemon import started

from .conftest import AGENTS, SUPPORT, mail, relay_section, send, settle, write_config
from .sink import Sink, wait_mail


@pytest.mark.asyncio
async def test_a_nested_transaction_is_an_error_not_a_hang(config: Config) -> None:
    from mailgate.store import store_for

    async with store_for(config) as store:
        async with store.txn():
            with pytest.raises(RuntimeError, match="already open"):
                async with store.read():
                    pass
        async with store.read() as tx:  # the lock is free again afterwards
            assert await tx.value("SELECT 1") == 1


@pytest.mark.asyncio
async def test_a_strictly_loaded_config_runs_the_daemon(tmp_path: Path, sink: Sink) -> None:
    """TOML's own forms (integer seconds, arrays, relative paths) still make a working help desk."""
    path = write_config(
        tmp_path, relay_section(sink.port, send_delay=0, retry_base=1) + AGENTS,
        smtp="timeout = 60\nbusy_timeout = 2", storage='attachments = "files"',
    )
    async with started(config_mod.load(path)) as running:
        customer = "strict@customer.test"
        await send(running.smtp_port, mail(sender=f"Sam <{customer}>", subject="Strict types"), [SUPPORT], customer)
        await settle(running)
        await wait_mail(sink, customer, "Strict types")
