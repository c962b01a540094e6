"""Whose turn it is at the store's one connection: mail being accepted first, then processing, then the rest.

An SMTP client waits for its 250 on the spool commit; a customer waits a second or two for the
acknowledgement that processing writes; delivery and timers can wait longer still. A plain FIFO
lock made a session's commit queue behind a processing batch and a sender's claim. Nobody waits
forever, though: a waiter that has waited STARVE_SECONDS goes next, whatever its class.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["STARVE_SECONDS", "Priority", "Turns"]

STARVE_SECONDS = 1.0


class Priority(IntEnum):
    """Lower goes first."""

    INTAKE = 0  # a source answers its sender after this commit (SMTP/LMTP 250, an IMAP flag)
    PROCESSING = 1  # spooled mail becoming tickets; acknowledgements wait on it
    BACKGROUND = 2  # delivery, timers, the CLI, housekeeping


@dataclass(slots=True)
class _Waiter:
    priority: Priority
    order: int
    since: float
    granted: asyncio.Future[None]


class Turns:
    """A non-reentrant asyncio lock that hands itself on by priority (FIFO within one), with aging."""

    def __init__(self, starve_seconds: float = STARVE_SECONDS) -> None:
        self.starve_seconds = starve_seconds
        self._held = False
        self._waiters: list[_Waiter] = []
        self._order = itertools.count()

    def locked(self) -> bool:
        return self._held

    def waiting(self, above: Priority) -> bool:
        """Someone more urgent than `above` waits: a holder of that class should finish soon."""
        return any(w.priority < above for w in self._waiters)

    async def acquire(self, priority: Priority) -> None:
        if not self._held:
            self._held = True
            return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(priority, next(self._order), loop.time(), loop.create_future())
        self._waiters.append(waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.granted.done() and not waiter.granted.cancelled():
                self.release()  # handed the lock and cancelled before it ran: pass it on
            raise

    def release(self) -> None:
        if not self._held:
            raise RuntimeError("release of a store lock nobody holds")
        now = asyncio.get_running_loop().time()
        while self._waiters:
            starved = [w for w in self._waiters if now - w.since >= self.starve_seconds]
            chosen = min(starved, key=lambda w: w.order) if starved else min(
                self._waiters, key=lambda w: (w.priority, w.order))
            self._waiters.remove(chosen)
            if not chosen.granted.done():  # a waiter cancelled meanwhile is skipped
                chosen.granted.set_result(None)  # still held: it passes straight to the chosen waiter
                return
        self._held = False
