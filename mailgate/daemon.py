"""The daemon's lifecycle: open the store, serve SMTP/LMTP, run the workers, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from mailgate.config import Config
from mailgate.obs import sd_notify
from mailgate.process import Processor, Worker
from mailgate.sources import smtp
from mailgate.store import Store, open_store

log = logging.getLogger("mailgate.daemon")


@dataclass
class Running:
    """What a started daemon exposes (tests use it to find the real port and wait for idle)."""

    config: Config
    store: Store
    worker: Worker
    server: asyncio.Server

    @property
    def smtp_port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def started(config: Config) -> AsyncIterator[Running]:
    """Everything up and serving; torn down in reverse order on exit."""
    store = await open_store(config)
    worker_task: asyncio.Task[None] | None = None
    server: asyncio.Server | None = None
    try:
        worker = Worker(Processor(config, store))
        worker_task = asyncio.create_task(worker.run(), name="spool-worker")
        handler = smtp.SpoolHandler(config, store, on_accept=worker.wake)
        server = await smtp.serve(config, handler)
        log.info(
            "daemon.started listen=%s lmtp=%s database=%s",
            config.smtp.listen, config.smtp.lmtp, config.database_path,
        )
        yield Running(config, store, worker, server)
    finally:
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout=5)
        if worker_task is not None:
            worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
        await store.close()


async def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with started(config):
        sd_notify("READY=1\nSTATUS=receiving mail")
        await stop.wait()
        log.info("daemon.stopping")
        sd_notify("STOPPING=1")
    log.info("daemon.stopped")
