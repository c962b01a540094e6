"""What all sessions of one SMTP/LMTP listener share: connection counts, the DATA memory budget, the stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from mailgate.config import SmtpConfig

log = logging.getLogger("mailgate.smtp")

# A flood (refused connections, failing accepts) is summed up in one log line per interval.
LOG_INTERVAL = 10.0
# File descriptors mailgate needs besides SMTP sessions: database, relay, IMAP, logs, listener.
FD_RESERVE = 128
# asyncio reports a failing accept() (EMFILE, ENFILE, ENOBUFS, ENOMEM) with this message.
_ACCEPT_FAILED = "socket.accept() out of system resource"


class Session(Protocol):
    """What the listener needs of a session to stop it."""

    @property
    def in_data(self) -> bool: ...
    @property
    def storing(self) -> bool: ...
    @property
    def closing(self) -> bool: ...
    def shut(self) -> None: ...


class Tally:
    """One log line per interval for an event that can happen thousands of times a second."""

    def __init__(self, event: str, interval: float = LOG_INTERVAL) -> None:
        self.event = event
        self.interval = interval
        self.total = 0
        self._pending = 0
        self._fields = ""
        self._last: float | None = None
        self._flush: asyncio.TimerHandle | None = None

    def note(self, fields: str) -> None:
        self.total += 1
        self._pending += 1
        self._fields = fields
        now = time.monotonic()
        if self._last is None or now - self._last >= self.interval:
            self._emit(now)
        elif self._flush is None:
            # The last events of a burst are still logged, once the interval is over.
            delay = self._last + self.interval - now
            self._flush = asyncio.get_running_loop().call_later(delay, self._flush_pending)

    def _flush_pending(self) -> None:
        self._flush = None
        if self._pending:
            self._emit(time.monotonic())

    def _emit(self, now: float) -> None:
        log.warning("%s %s count=%d total=%d", self.event, self._fields, self._pending, self.total)
        self._pending = 0
        self._last = now


class Listener:
    """What the sessions of one listening socket share: who is connected, DATA bytes held in memory."""

    def __init__(self, config: SmtpConfig) -> None:
        self.max_connections = config.max_connections
        self.max_per_peer = config.max_connections_per_peer
        self.junk_limit = config.junk_command_limit
        self.data_budget = config.data_memory
        self.connections = 0
        self.peers: Counter[str] = Counter()
        self.data_held = 0
        self.data_refusals = 0
        self.refused = Tally("smtp.connection_refused")
        self.changed = asyncio.Event()  # set on every change of the counts (tests wait on it)
        self.sessions: set[Session] = set()
        self.stopping = False  # the daemon is stopping: no new sessions, no new mail
        self.store_wait = config.busy_timeout

    def admit(self, peer: str) -> str | None:
        """None, and the connection is counted; or why it is refused."""
        if self.stopping:
            reason = "stopping"
        elif self.connections >= self.max_connections:
            reason = "max_connections"
        elif self.peers[peer] >= self.max_per_peer:
            reason = "max_connections_per_peer"
        else:
            self.connections += 1
            self.peers[peer] += 1
            self.changed.set()
            return None
        self.refused.note(f"reason={reason} peer={peer} connections={self.connections}")
        return reason

    def release(self, peer: str) -> None:
        self.connections -= 1
        self.peers[peer] -= 1
        if self.peers[peer] <= 0:
            del self.peers[peer]
        self.changed.set()

    def room(self, size: int) -> bool:
        return self.data_held + size <= self.data_budget

    def hold(self, delta: int) -> None:
        self.data_held += delta
        self.changed.set()

    # --- stopping ----------------------------------------------------------------------------

    def stop_accepting(self) -> tuple[int, int]:
        """New sessions get 421 from now on, and so do those between commands; (closed, in DATA)."""
        self.stopping = True
        idle = [session for session in self.sessions if not session.in_data]
        for session in idle:
            session.shut()
        self.changed.set()
        return len(idle), len(self.sessions) - len(idle)

    async def drain(self, deadline: float) -> int:
        """Let mail in DATA finish until `deadline` (loop time); then 421 to those still sending.

        Returns how many sessions were cut. None of theirs was stored or answered 250, so their
        senders keep the mail and retry. A session whose final dot has come is storing it: its
        reply must match the store, and spool.accept gives up after smtp.busy_timeout anyway.
        """
        loop = asyncio.get_running_loop()
        await self._until(lambda: not any(s.in_data for s in self.sessions), deadline)
        cut = 0
        for session in list(self.sessions):
            if not session.storing:
                cut += session.in_data
                session.shut()
        await self._until(lambda: all(s.closing for s in self.sessions), loop.time() + self.store_wait + 5)
        for session in list(self.sessions):
            session.shut()
        return cut

    async def _until(self, done: Callable[[], bool], deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        while not done():
            left = deadline - loop.time()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self.changed.wait()
        return True


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> Tally:
    """Log failing accept() calls once per interval with a count, instead of a traceback each.

    Out of file descriptors, asyncio's accept loop reports every failed accept() (up to 100 per
    wake-up) through the loop's exception handler, which logs a full traceback for each: 43 MB
    of them in 49 s. It already stops accepting for a second after such an error (its back-off);
    what remains to do is the log.
    """
    tally = Tally("smtp.accept_failed")
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == _ACCEPT_FAILED:
            exc = context.get("exception")
            tally.note(f"error={getattr(exc, 'strerror', None) or exc!s}".replace(" ", "_"))
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return tally


def ensure_fd_limit(max_connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE to what max_connections needs, if the hard limit allows; log if not."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("smtp.fd_limit_unchanged error=%s", exc)
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "smtp.fd_limit_low nofile=%d max_connections=%d needed=%d"
            " (raise LimitNOFILE or lower smtp.max_connections)",
            soft, max_connections, needed,
        )
    return int(soft)
