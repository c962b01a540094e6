"""IMAP intake: one worker per account on its own thread; IDLE or poll, spool, checkpoint, then flag/move/delete.

Daemons sharing one database fetch each account from one of them at a time (store/locks.py): two
sessions on one mailbox would both fetch every new mail, race on \\Seen and MOVE, and double the
server's connections. The others stand by and take over when the holder's database session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from mailgate.config import Config, ImapAccount
from mailgate.sources.imap_auth import CredentialsUnavailable
from mailgate.sources.imap_session import AuthFailed, Disconnected, FolderMissing, Session
from mailgate.sources.imap_state import save_state
from mailgate.sources.imap_sync import FolderSync
from mailgate.store import DatabaseError, Store, StoreUnavailable
from mailgate.store import locks as store_locks

log = logging.getLogger("mailgate.imap")

P = ParamSpec("P")
T = TypeVar("T")

IDLE_RENEW = 25 * 60.0  # RFC 2177: re-issue IDLE at least every 29 minutes or the server may log us out
_NETWORK = (OSError, imaplib.IMAP4.error, Disconnected, TimeoutError, StoreUnavailable, DatabaseError)


class Backoff:
    """Exponential delays with full jitter, so many accounts do not reconnect in lockstep."""

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.failures))
        self.failures += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


class AccountWorker(FolderSync):
    """Keeps one account's folders drained into the spool; never raises out of run()."""

    def __init__(
        self,
        config: Config,
        account: ImapAccount,
        store: Store,
        on_accept: Callable[[], None] | None = None,
        *,
        backoff: tuple[float, float] = (1.0, 300.0),
        auth_backoff: tuple[float, float] = (300.0, 3600.0),
    ) -> None:
        self.account = account
        self.name = account.name
        self.store = store
        self.on_accept = on_accept
        self.max_size = account.max_message_size or config.smtp.max_message_size
        self.session = Session(account, frozenset(config.gateway.addresses), config.gateway.addresses[0])
        # imapclient blocks and is not thread-safe: one thread per account, never the default pool.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{account.name}")
        self.backoff = Backoff(*backoff)
        self.auth_backoff = Backoff(*auth_backoff)
        self.state = "starting"
        self.last_error: str | None = None
        self.logins = 0  # login attempts, for "does it hammer the server" questions
        self.stored = 0  # new spool rows from this account since start
        self.passes = 0  # complete passes over all folders
        self.changed = asyncio.Condition()
        self._stopping = False
        self._interrupt = threading.Event()  # ends IDLE early (wake or stop); read by the IMAP thread
        self._wake = asyncio.Event()
        self._held: store_locks.Held | None = None  # this daemon's turn at the account; None until run()

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    async def wait_until(self, predicate: Callable[[AccountWorker], bool], timeout: float) -> None:
        """Wait until predicate(self) holds (tests, bench); re-checked on every state or count change."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: predicate(self))

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def wake(self) -> None:
        """Look for new mail now instead of at the next IDLE event or poll."""
        self._interrupt.set()
        self._wake.set()

    def stop(self) -> None:
        """Ask the worker to finish: IDLE ends within a slice, a running batch completes first."""
        self._stopping = True
        self.wake()

    def stopping(self) -> bool:
        """stop() was called (by another task: read it fresh, never narrowed)."""
        return self._stopping

    # -- state ------------------------------------------------------------------------------

    async def _set_state(self, state: str, error: str | None = None, retry_in: float | None = None) -> None:
        self.state = state
        if error is not None:
            self.last_error = error
        if self._held is not None and not self._held:
            # The account's row tells what the daemon fetching it does: one standing by keeps quiet.
            await self._notify()
            return
        try:
            await save_state(self.store, self.name, state, error, retry_in)
        except (StoreUnavailable, DatabaseError) as exc:  # state is for humans; never fail over it
            log.warning("imap.state_not_saved account=%s state=%s error=%s", self.name, state, exc)
        await self._notify()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        was_held = True
        try:
            lock = store_locks.hold(self.store, f"imap:{self.name}", on_change=self._turn_changed)
            async with lock as held:
                self._held = held
                try:
                    await self._turns(held)
                finally:
                    was_held = bool(held)
        finally:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self._held = None
            if was_held:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._set_state("stopped"))
            else:
                self.state = "stopped"

    def _turn(self) -> bool:
        """This daemon fetches the account now (read fresh: the lock's task changes it)."""
        return self._held is None or bool(self._held)

    def _turn_changed(self, held: bool) -> None:
        if not held:
            self.wake()  # another daemon may fetch from now: end IDLE and leave the session

    async def _turns(self, held: store_locks.Held) -> None:
        while not self._stopping:
            if not held:
                await self._stand_by(held)
                continue
            delay = await self._connected_session()
            if self.stopping():
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _stand_by(self, held: store_locks.Held) -> None:
        """Another daemon fetches this account: wait for its turn to end (or for stop())."""
        if self.state != "standby":
            log.info("imap.standby account=%s (another daemon fetches it)", self.name)
            self.state = "standby"
            await self._notify()
        self._wake.clear()
        turn = asyncio.ensure_future(held.wait())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({turn, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            turn.cancel()
            woken.cancel()
        if held:
            log.info("imap.taken_over account=%s", self.name)

    async def _connected_session(self) -> float:
        """Connect, drain and wait for mail until something fails; return the delay before retrying."""
        account = self.account
        try:
            await self._set_state("connecting")
            self.logins += 1
            await self._call(self.session.connect)
            log.info(
                "imap.connected account=%s host=%s:%s idle=%s",
                self.name, account.host, account.effective_port, account.idle and self.session.can_idle,
            )
            while not self._stopping and self._turn():
                await self._pass()
                self.backoff.reset()
                self.auth_backoff.reset()
                self.passes += 1
                await self._wait_for_mail()
            return 0.0
        except (AuthFailed, CredentialsUnavailable) as exc:
            delay = self.auth_backoff.next()
            log.error(
                "imap.auth_failed account=%s user=%s host=%s error=%s retry_in=%.0fs"
                " (check the password or token; not retrying sooner so the server does not lock the account)",
                self.name, account.username, account.host, exc, delay,
            )
            await self._set_state("auth-failed", f"login refused: {exc}", delay)
            return delay
        except _NETWORK as exc:
            delay = self.backoff.next()
            if not self._stopping:
                log.warning("imap.disconnected account=%s error=%s retry_in=%.1fs", self.name, _describe(exc), delay)
                await self._set_state("backoff", _describe(exc), delay)
            return delay
        except Exception as exc:  # a bug or an odd server must not end this account's worker for good
            delay = self.backoff.next()
            log.exception("imap.failed account=%s retry_in=%.1fs", self.name, delay)
            await self._set_state("backoff", _describe(exc), delay)
            return delay
        finally:
            with contextlib.suppress(Exception):
                await self._call(self.session.close)

    async def _wait_for_mail(self) -> None:
        account = self.account
        self._wake.clear()
        self._interrupt.clear()
        if self._stopping or not self._turn():
            return
        if account.idle and self.session.can_idle:
            await self._set_state("idle")
            seconds = min(account.poll_interval, IDLE_RENEW)
            # IDLE watches the first folder; the others are read on every renewal.
            await self._call(self.session.idle, account.folders[0], seconds, self._interrupt)
        else:
            await self._set_state("polling")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=account.poll_interval)

    async def _pass(self) -> None:
        for folder in self.account.folders:
            if self._stopping or not self._turn():
                return
            try:
                await self._sync(folder)
            except FolderMissing as exc:
                # One missing folder must not keep the account's other folders unread.
                log.error("imap.folder_missing account=%s folder=%s", self.name, folder)
                await self._set_state(self.state, str(exc))

def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


class ImapWorkers:
    """All accounts' workers: started with the daemon, each isolated from the others' failures."""

    def __init__(self, config: Config, store: Store, on_accept: Callable[[], None] | None = None) -> None:
        self.workers = {a.name: AccountWorker(config, a, store, on_accept) for a in config.imap}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for worker in self.workers.values():
            self._tasks.append(asyncio.create_task(worker.run(), name=f"imap-{worker.name}"))

    async def stop(self, timeout: float = 10.0) -> None:
        for worker in self.workers.values():
            worker.stop()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            # A server that hangs mid-command: break its socket so the thread returns.
            worker = self.workers[task.get_name().removeprefix("imap-")]
            worker.session.abort()
        if pending:
            _, still = await asyncio.wait(pending, timeout=5)
            for task in still:
                task.cancel()
        self._tasks.clear()
