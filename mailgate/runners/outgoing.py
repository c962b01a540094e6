"""The daemon's outgoing side: relay sessions, the outbox sender and the timers, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailgate.clock import Clock
from mailgate.config import Config
from mailgate.config.node import lease_seconds, node_name
from mailgate.outgoing.maildir import MaildirRelay
from mailgate.outgoing.notices import Mailer
from mailgate.outgoing.relay import Delivery, Relay
from mailgate.runners import Spawn, timers
from mailgate.runners.sender import Sender
from mailgate.store import Store, Txn, stats
from mailgate.store.outbox import OutboxRow
from mailgate.store.timers import OUTBOX_RELEASE

log = logging.getLogger("mailgate.outgoing")


def _relay_for(config: Config) -> Delivery:
    if config.relay.maildir is not None:
        return MaildirRelay(config.relay)
    return Relay(config.relay, config.smtp.hostname)


class Outgoing:
    """Owns the relay, the sender tasks and the scheduler; tests reach them through Running.outgoing."""

    def __init__(
        self, config: Config, store: Store, mailer: Mailer, *, clock: Clock | None = None, timer_poll: float = 5.0,
        sender_poll: float = 30.0, watch_seconds: float = 1.0,
    ) -> None:
        self.config = config
        self.store = store
        self.mailer = mailer
        self.relay = _relay_for(config)
        self.timers = timers.Timers(store, poll_seconds=timer_poll, clock=clock)
        self.sender = Sender(config.outbox, store, self.relay, on_failed=self._failed, clock=clock,
                             poll_seconds=sender_poll, node=node_name(config), lease=lease_seconds(config))
        # A delayed send or a retry fell due: the row is already 'queued', the sender only needs waking.
        self.timers.register(OUTBOX_RELEASE, after=self.sender.wake)
        self.watch_seconds = watch_seconds
        self._watch: asyncio.Task[None] | None = None
        self.others_seen = 0  # commits by other processes noticed (tests wait on it)

    def committed(self, touched: frozenset[str]) -> None:
        """The store committed a transaction that queued mail or timer rows: the sender and the timers look now."""
        if "outbox" in touched:
            self.sender.wake()
        if "timers" in touched:
            self.timers.poke()

    def swap_config(self, config: Config, mailer: Mailer) -> list[str]:
        """A reloaded config: [relay] and [outbox] apply from the next mail on; returns what needs a restart.

        The relay's sessions logged in with the old settings are closed (a rotated password_file,
        a new port); the sender's retry and age limits and the notices' templates are the new ones.
        """
        needs: list[str] = []
        old, new = self.config.relay, config.relay
        if (old.maildir is None) != (new.maildir is None) or old.maildir != new.maildir:
            needs.append("relay.maildir")
        elif old.connections != new.connections:
            needs.append("relay.connections")
        if isinstance(self.relay, Relay) and "relay.maildir" not in needs:
            self.relay.use(new)
        self.config = config
        self.mailer = mailer
        self.sender.config = config.outbox
        return needs

    async def _failed(self, tx: Txn, row: OutboxRow, reason: str) -> None:
        await self.mailer.delivery_failed(tx, row, reason)

    async def start(self, spawn: Spawn) -> None:
        # Before the sender's first look: a commit by another process after it is then seen.
        version = await self._data_version()
        if isinstance(self.relay, MaildirRelay):
            # Before the first write, and fail the start on a folder we cannot make (a clear message at once).
            stale = await asyncio.to_thread(self.relay.prepare)
            if stale:
                log.info("maildir.stale_removed files=%s folder=%s", stale, self.relay.folder / "tmp")
        await self.sender.start(spawn)
        await self.timers.start()
        self._watch = spawn(lambda: self._watch_other_writers(version), "outgoing-watch")
        if isinstance(self.relay, MaildirRelay):
            # A warning: with a copied example config in production, nothing would ever leave the machine.
            log.warning("outgoing.started maildir=%s delivery=folder-only (no mail leaves this machine;"
                        " [relay] host/port sends it)", self.relay.folder / "new")
        else:
            log.info("outgoing.started relay=%s:%s security=%s", self.config.relay.host, self.config.relay.port,
                     self.config.relay.security)

    async def stop(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        await self.timers.stop()
        await self.sender.stop()
        await self.relay.close()

    async def _data_version(self) -> int | None:
        try:
            async with self.store.read() as tx:
                return await stats.data_version(tx)
        except Exception as exc:  # the store struggling: the polls still catch up later
            log.warning("outgoing.watch_failed error=%s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
            return None

    async def _watch_other_writers(self, last: int | None) -> None:
        """Mail and timers the CLI (another process) queued go out now, not at the next 30 s poll.

        SQLite's data_version changes only when another connection commits, and reading it is a
        few microseconds on the loop's thread, so a one-second look costs next to nothing while
        the daemon is idle; only a change wakes the sender and the timers.
        """
        while True:
            await asyncio.sleep(self.watch_seconds)
            version = await self._data_version()
            if version is None:
                continue
            if version != last:
                self.others_seen += 1
                self.sender.wake()
                self.timers.poke()
            last = version
