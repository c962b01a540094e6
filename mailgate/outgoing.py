"""The daemon's outgoing side: relay sessions, the outbox sender and the timers, started and stopped together."""

from __future__ import annotations

import logging

from mailgate import outbound, timers
from mailgate.config import Config
from mailgate.outbox import Sender
from mailgate.relay import Relay
from mailgate.store import Row, Store, Txn

log = logging.getLogger("mailgate.outgoing")


class Outgoing:
    """Owns the sender task and the scheduler; tests reach both through Running.outgoing."""

    def __init__(self, config: Config, store: Store, *, timer_poll: float = 5.0, sender_poll: float = 30.0) -> None:
        self.config = config
        self.relay = Relay(config.relay, config.smtp.hostname)
        self.timers = timers.Timers(store, poll_seconds=timer_poll)
        self.sender = Sender(
            config.outbox, store, self.relay, on_failed=self._failed, on_timer=self.timers.poke,
            poll_seconds=sender_poll,
        )
        # A delayed send or a retry fell due: the row is already 'queued', the sender only needs waking.
        self.timers.register(timers.OUTBOX_RELEASE, after=self.sender.wake)
        self._listener = outbound.Listener(self.sender.wake, self.timers.poke)

    async def _failed(self, tx: Txn, row: Row, reason: str) -> None:
        await outbound.mailer_for(self.config).delivery_failed(tx, row, reason)

    async def start(self) -> None:
        outbound.add_listener(self._listener)
        await self.sender.start()
        await self.timers.start()
        log.info("outgoing.started relay=%s:%s security=%s", self.config.relay.host, self.config.relay.port,
                 self.config.relay.security)

    async def stop(self) -> None:
        outbound.remove_listener(self._listener)
        await self.timers.stop()
        await self.sender.stop()
        await self.relay.close()
