"""The daemon's outgoing side: relay sessions, the outbox sender and the timers, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from mailgate.config import Config
from mailgate.outgoing import notices as outbound
from mailgate.outgoing.maildir import MaildirRelay
from mailgate.outgoing.outbox import Sender
from mailgate.outgoing.relay import Delivery, Relay
from mailgate.runners import timers
from mailgate.store import Row, Store, Txn
from mailgate.store.timers import OUTBOX_RELEASE

log = logging.getLogger("mailgate.outgoing")


class Outgoing:
    """Owns the sender task and the scheduler; tests reach both through Running.outgoing."""

    def __init__(
        self, config: Config, store: Store, *, timer_poll: float = 5.0, sender_poll: float = 30.0,
        watch_seconds: float = 1.0,
    ) -> None:
        self.config = config
        self.store = store
        self.relay: Delivery = (
            MaildirRelay(config.relay) if config.relay.maildir is not None else Relay(config.relay, config.smtp.hostname)
        )
        self.timers = timers.Timers(store, poll_seconds=timer_poll)
        self.sender = Sender(
            config.outbox, store, self.relay, on_failed=self._failed, on_timer=self.timers.poke,
            poll_seconds=sender_poll,
        )
        # A delayed send or a retry fell due: the row is already 'queued', the sender only needs waking.
        self.timers.register(OUTBOX_RELEASE, after=self.sender.wake)
        self._listener: outbound.Listener | None = None
        self.watch_seconds = watch_seconds
        self._watch: asyncio.Task[None] | None = None
        self.others_seen = 0  # commits by other processes noticed (tests wait on it)

    def swap_config(self, config: Config) -> None:
        """A reloaded config: the relay's settings (password_file re-read by the load) take effect
        for the next session."""
        self.config = config
        self.relay.use(config.relay)

    async def _failed(self, tx: Txn, row: Row, reason: str) -> None:
        await outbound.mailer_for(self.config).delivery_failed(tx, row, reason)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._listener = outbound.Listener(_on_loop(loop, self.sender.wake), _on_loop(loop, self.timers.poke))
        outbound.add_listener(self._listener)
        # Before the sender's first look: a commit by another process after it is then seen.
        version = await self._data_version()
        if isinstance(self.relay, MaildirRelay):
            # Before the first write, and fail the start on a folder we cannot make (a clear message at once).
            stale = await asyncio.to_thread(self.relay.prepare)
            if stale:
                log.info("maildir.stale_removed files=%s folder=%s", stale, self.relay.folder / "tmp")
        await self.sender.start()
        await self.timers.start()
        self._watch = asyncio.create_task(self._watch_other_writers(version), name="outgoing-watch")
        if isinstance(self.relay, MaildirRelay):
            # A warning: with a copied example config in production, nothing would ever leave the machine.
            log.warning("outgoing.started maildir=%s delivery=folder-only (no mail leaves this machine;"
                        " [relay] host/port sends it)", self.relay.folder / "new")
        else:
            log.info("outgoing.started relay=%s:%s security=%s", self.config.relay.host, self.config.relay.port,
                     self.config.relay.security)

    async def stop(self) -> None:
        if self._listener is not None:
            outbound.remove_listener(self._listener)
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
                return int(await tx.value("PRAGMA data_version"))
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


def _on_loop(loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> Callable[[], None]:
    """wake() run on the daemon's loop, even when a domain call in another thread queued the mail.

    The sender's event and the timers' lock belong to the daemon's loop; a CLI command run in a
    thread of the same process (an embedding program, the tests) would otherwise touch them from
    its own loop ("bound to a different event loop").
    """

    def call() -> None:
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            wake()
        else:
            with contextlib.suppress(RuntimeError):  # the daemon's loop has closed meanwhile
                loop.call_soon_threadsafe(wake)

    return call
