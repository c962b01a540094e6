"""The intake worker: drains the spool into tickets whenever mail is accepted, and isolates mail that keeps failing."""

from __future__ import annotations

import asyncio
import logging

from mailgate import spool
from mailgate.pipeline.process import MAX_ATTEMPTS, Processor, log_outcome, reason
from mailgate.store import StoreUnavailable, TransientError

log = logging.getLogger("mailgate.process")

# After this many failed rounds in a row the worker looks for one message that fails on its own,
# trying up to ISOLATE_ROWS pending rows one at a time.
SUSPECT_AFTER = 3
ISOLATE_ROWS = 50


class Worker:
    """The daemon's processing loop: woken on every accept, and polling for rows other processes spooled."""

    def __init__(self, processor: Processor, poll_seconds: float = 2.0) -> None:
        self.processor = processor
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.failures = 0  # rounds that raised outside a message's own guard

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """End run() after the message (or batch) in hand; what is left stays 'received' for the next start."""
        self.processor.stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Process until cancelled; no exception ends the loop (one log line, a pause, go on)."""
        backoff = 1.0
        failed_rounds = 0
        while not self.processor.stopping:
            self._wake.clear()
            self.idle.clear()
            try:
                await self.processor.drain()
                backoff, failed_rounds = 1.0, 0
            except Exception as exc:
                # The store struggling, or a bug outside one message's guard (reading the spool,
                # recording a failure): the rows stay 'received' and a later round takes them again.
                store = isinstance(exc, (StoreUnavailable, TransientError))
                log.warning("worker.%s error=%s retry_in=%.0fs", "store_unavailable" if store else "drain_failed",
                            reason(exc), backoff)
                self.failures += 1
                failed_rounds += 1
                # Once suspected, every failed round isolates again (without the pause) until a
                # drain succeeds: a poisoned row reaches its dead state in MAX_ATTEMPTS rounds.
                if failed_rounds >= SUSPECT_AFTER and await self._isolate():
                    continue
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            self.idle.set()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancel that stops us.
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _isolate(self) -> bool:
        """Rounds keep failing: find a message that fails on its own, so it cannot hold up the rest.

        An error the store raises for one message only (a statement that message's data breaks)
        looks like a struggling store, and drain would retry it first, forever. Here rows go one
        at a time; one that fails while a plain write transaction works is recorded as failing
        (dead after MAX_ATTEMPTS, as any other). Returns whether draining may go on at once.
        """
        store = self.processor.store
        try:
            processor = self.processor
            entries = await spool.claim(store, processor.node, processor.lease, limit=ISOLATE_ROWS)
        except Exception as exc:
            log.warning("worker.isolate_failed error=%s", reason(exc))
            return False
        for entry in entries:
            try:
                log_outcome(await self.processor.process(entry))
                continue
            except Exception as exc:
                error = exc
            try:
                async with store.txn():  # the store itself: can it write at all now?
                    pass
                state = await spool.fail(store, entry.id, reason(error), MAX_ATTEMPTS)
            except Exception as exc:
                log.warning("worker.isolate_failed error=%s", reason(exc))
                return False
            log.error("spool.process_failed id=%s state=%s error=%s (isolated)", entry.id, state, reason(error))
            return True
        return bool(entries)  # all went through one at a time; with none pending, pause as usual
