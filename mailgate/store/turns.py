"""Whose turn it is at the store's one connection: mail being accepted first, then processing, then the rest.

An SMTP client waits for its 250 on the spool commit; a customer waits a second or two for the
acknowledgement that processing writes; delivery and timers can wait longer still. A plain FIFO
lock made a session's commit queue behind a processing batch and a sender's claim. Nobody waits
forever, though: a waiter that has waited its class's PATIENCE goes next, whatever the others'
class. Processing's is short, so a flood of SMTP clients still leaves it a turn five times a second
(a ticket and its acknowledgement while the flood lasts, not only after it).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["PATIENCE", "Priority", "Turns"]


class Priority(IntEnum):
    """Lower goes first."""

    INTAKE = 0  # a source answers its sender after this commit (SMTP/LMTP 250, an IMAP flag)
    PROCESSING = 1  # spooled mail becoming tickets; acknowledgements wait on it
    BACKGROUND = 2  # delivery, timers, the CLI, housekeeping


# Seconds a waiter of each class lets more urgent ones pass before it goes next anyway.
PATIENCE: Mapping[Priority, float] = {Priority.INTAKE: 0.2, Priority.PROCESSING: 0.2, Priority.BACKGROUND: 1.0}


@dataclass(slots=True)
class _Waiter:
    priority: Priority
    order: int
    since: float
    granted: asyncio.Future[None]


class Turns:
    """A non-reentrant asyncio lock that hands itself on by priority (FIFO within one), with aging."""

    def __init__(self, patience: Mapping[Priority, float] = PATIENCE) -> None:
        self.patience = patience
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
            starved = [w for w in self._waiters if now - w.since >= self.patience[w.priority]]
            chosen = min(starved, key=lambda w: w.order) if starved else min(
                self._waiters, key=lambda w: (w.priority, w.order))
            self._waiters.remove(chosen)
            if not chosen.granted.done():  # a waiter cancelled meanwhile is skipped
                chosen.granted.set_result(None)  # still held: it passes straight to the chosen waiter
                return
        self._held = False
