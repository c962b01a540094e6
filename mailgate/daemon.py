"""The daemon's lifecycle: open the store, serve SMTP/LMTP, run the workers, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from mailgate import config as config_mod
from mailgate import rules
from mailgate.clock import Clock, SystemClock
from mailgate.config import Config, ConfigError
from mailgate.obs import sd_notify
from mailgate.ops import lifecycle, report_weekly, retention, tasks
from mailgate.outgoing.notices import Mailer
from mailgate.pipeline.process import Processor
from mailgate.rules import report as rule_tests
from mailgate.runners import monitor
from mailgate.runners.intake import Worker
from mailgate.runners.monitor import Monitor
from mailgate.runners.outgoing import Outgoing
from mailgate.sources import smtp
from mailgate.sources import web as web_intake
from mailgate.sources.imap import ImapWorkers
from mailgate.store import Store, open_store

log = logging.getLogger("mailgate.daemon")


@dataclass
class Running:
    """What a started daemon exposes (tests use it to find the real port and wait for idle)."""

    config: Config
    store: Store
    worker: Worker
    server: smtp.SmtpServer
    imap: ImapWorkers | None = None
    outgoing: Outgoing | None = None  # outbox sender and timers
    worker_task: asyncio.Task[None] | None = None  # the spool worker's loop: /healthz and the watchdog watch it
    monitor: Monitor | None = None  # /metrics, /healthz and the systemd watchdog
    web: web_intake.WebServer | None = None  # [web]: the contact form and ticket API
    # Seconds the stop gives work in flight (DATA, relay sends, IMAP, the worker) once started()
    # exits. run() sets smtp.stop_timeout on SIGTERM; an error or a test's exit stops at once.
    stop_grace: float = 0.0
    clock: Clock = field(default_factory=SystemClock)

    @property
    def smtp_port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def mailer(self) -> Mailer:
        """The Mailer of the config in force (a reload builds a new one)."""
        found = self.store.parts.get(Mailer)
        assert isinstance(found, Mailer), "the daemon is not running"
        return found


@contextlib.asynccontextmanager
async def started(config: Config, *, clock: Clock | None = None) -> AsyncIterator[Running]:
    """Everything up and serving; torn down in reverse order on exit.

    clock: the one time every part reads (the store, the timers, the sender's retries); a test
    passes a ManualClock and moves it instead of rewriting due times in the database.
    """
    clock = clock or SystemClock()
    store = await open_store(config, clock)
    try:
        # Every long-running task belongs to this group: none outlives the daemon, and an error
        # that escapes one (a bug) stops the daemon instead of leaving it half alive.
        async with asyncio.TaskGroup() as group:
            async with _parts(config, store, clock, group) as running:
                yield running
    except BaseExceptionGroup as errors:
        # The test's or the caller's own exception comes through the group: give it back as it was.
        if len(errors.exceptions) == 1:
            raise errors.exceptions[0] from None
        raise
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def _parts(config: Config, store: Store, clock: Clock, group: asyncio.TaskGroup) -> AsyncIterator[Running]:
    def spawn(make: Callable[[], Coroutine[Any, Any, None]], name: str) -> asyncio.Task[None]:
        return group.create_task(make(), name=name)

    worker_task: asyncio.Task[None] | None = None
    server: smtp.SmtpServer | None = None
    imap: ImapWorkers | None = None
    outgoing: Outgoing | None = None
    running: Running | None = None
    try:
        # One Mailer per config (templates compiled once); the domain finds it through its transaction.
        mailer = Mailer(config)
        store.parts[Mailer] = mailer
        worker = Worker(Processor(config, store))
        worker_task = spawn(worker.run, "spool-worker")
        outgoing = Outgoing(config, store, mailer, clock=clock)
        # A commit that queued mail or timers wakes the sender and the timers (no polling wait).
        store.on_commit = outgoing.committed
        # Wake-ups, SLA warnings and overdue tasks fire under the config in force when they fire.
        lifecycle.register_timers(outgoing.timers, lambda: worker.processor.config)
        tasks.register_timers(outgoing.timers, lambda: worker.processor.config)
        await retention.start(outgoing.timers, store, lambda: worker.processor.config)  # daily purge
        await report_weekly.start(outgoing.timers, store, lambda: worker.processor.config)  # [report] weekly
        await outgoing.start(spawn)
        handler = smtp.SpoolHandler(config, store, on_accept=worker.wake)
        server = await smtp.serve(config, handler)
        # Each account runs on its own thread and retries on its own: a broken one stops nothing else.
        imap = ImapWorkers(config, store, on_accept=worker.wake)
        imap.start()
        log.info(
            "daemon.started listen=%s lmtp=%s database=%s",
            config.smtp.listen, config.smtp.lmtp, store.where,
        )
        running = Running(config, store, worker, server, imap, outgoing, worker_task=worker_task, clock=clock)
        running.monitor = await monitor.start(running, spawn)
        running.web = await web_intake.serve(lambda: running.config if running else config, store, clock, worker.wake)
        yield running
    finally:
        grace = running.stop_grace if running is not None else 0.0
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + grace
        # First nothing new comes in (monitoring, SMTP, IMAP, relay claims, spool rows); then what
        # is in flight gets until the one deadline, all at once; whatever is still running is cut.
        if running is not None:
            await monitor.stop(running.monitor)
            await web_intake.stop(running.web)
        if server is not None:
            smtp.stop_accepting(server)
        if worker_task is not None:
            worker.stop()
        draining: list[Awaitable[None]] = []
        if server is not None:
            draining.append(smtp.drain(server, deadline))
        if imap is not None:
            draining.append(imap.stop(timeout=grace or 10.0))
        if outgoing is not None:
            draining.append(outgoing.sender.stop(grace))
        if worker_task is not None:
            draining.append(_finish(worker_task, deadline))
        for result in await asyncio.gather(*draining, return_exceptions=True):
            if isinstance(result, BaseException):  # a step failing must not leave the rest running
                log.error("daemon.stop_step_failed error=%s: %s", type(result).__name__, result)
        if outgoing is not None:
            await outgoing.stop()
        store.on_commit = None
        store.parts.pop(Mailer, None)
        if grace:
            log.info("daemon.drained seconds=%.1f grace=%g", loop.time() - began, grace)


async def _finish(task: asyncio.Task[None], deadline: float) -> None:
    """Wait for the spool worker to end after the message in hand; past the deadline, cancel it.

    A cancelled worker rolls its transaction back: the rows stay 'received' for the next start.
    """
    left = deadline - asyncio.get_running_loop().time()
    if left > 0:
        await asyncio.wait({task}, timeout=left)
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# Sections read once at start-up (sockets, files, threads): a reload logs that they need a restart.
_RESTART_ONLY = ("smtp", "storage", "imap", "http")


def reload(running: Running) -> bool:
    """Re-read the config file (SIGHUP): put it in force, or keep the old one and log every error.

    The processor swaps config and compiled rules in one step; a message already being processed
    finishes under the old rules. A config whose [[rule_tests]] fail is refused like a broken one.
    [relay] and [outbox] apply from the next mail the sender takes; what is read only at start
    (listeners, the database, IMAP threads) is named in config.reload_partial.
    """
    source = running.config.source
    if source is None:
        log.error("config.reload_refused reason=no-source-file")
        return False
    try:
        new = config_mod.load(source)
    except ConfigError as exc:
        for issue in exc.issues:
            log.error("config.reload_refused %s", issue)
        log.error("config.reload_refused errors=%d keeping=old", len(exc.issues))
        return False
    # --dev is a command-line choice, not the file's: it stays as the daemon was started.
    new = new.model_copy(update={"dev": running.config.dev})
    refused = config_mod.production_issues(new)
    for issue in refused:
        log.error("config.reload_refused %s", issue)
    if refused:
        return False
    for warning in config_mod.permission_warnings(new):
        log.warning("config.insecure %s", warning)
    _ran, failures = rule_tests.run_tests(new, rules.compile_rules(new))
    if failures:
        for issue in failures:
            log.error("config.reload_refused rule test failed: %s", issue)
        return False
    needs = [key for key in _RESTART_ONLY if getattr(new, key) != getattr(running.config, key)]
    if new.web.listen != running.config.web.listen:  # its sites and limits apply from the next request
        needs.append("web.listen")
    if new.gateway.addresses != running.config.gateway.addresses:
        needs.append("gateway.addresses")
    mailer = Mailer(new)
    running.store.parts[Mailer] = mailer
    running.worker.processor.swap_config(new)
    if running.outgoing is not None:
        needs += running.outgoing.swap_config(new, mailer)
    if needs:
        log.warning("config.reload_partial needs_restart=%s", ",".join(needs))
    running.config = new
    log.info(
        "config.reloaded file=%s rules=%d queues=%d agents=%d",
        source, len(new.rules), len(new.queues), len(new.agents),
    )
    return True


async def run(config: Config, clock: Clock | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with started(config, clock=clock) as running:
        loop.add_signal_handler(signal.SIGHUP, _on_sighup, running)
        sd_notify("READY=1\nSTATUS=receiving mail")
        await stop.wait()
        grace = running.config.smtp.stop_timeout  # a reload may have changed it
        log.info("daemon.stopping stop_timeout=%g", grace)
        sd_notify(f"STOPPING=1\nSTATUS=stopping: finishing mail in flight (up to {grace:g}s)")
        running.stop_grace = grace
    log.info("daemon.stopped")


def _on_sighup(running: Running) -> None:
    sd_notify("RELOADING=1")
    try:
        reload(running)
    except Exception:  # a bug in reloading must not take the daemon down with it
        log.exception("config.reload_failed keeping=old")
    sd_notify("READY=1\nSTATUS=receiving mail")
