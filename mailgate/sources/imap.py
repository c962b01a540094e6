"""IMAP intake: one worker per account on its own thread; IDLE or poll, spool, checkpoint, then flag/move/delete."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import random
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from mailgate import spool
from mailgate.config import Config, ImapAccount
from mailgate.models import Envelope, Source
from mailgate.sources.imap_auth import CredentialsUnavailable
from mailgate.sources.imap_session import (
    AuthFailed,
    Disconnected,
    Fetched,
    FolderInfo,
    FolderMissing,
    Session,
)
from mailgate.sources.imap_state import (
    Checkpoint,
    load_checkpoint,
    record_skipped,
    save_checkpoint,
    save_state,
    skipped_uids,
)
from mailgate.store import Store, StoreUnavailable

log = logging.getLogger("mailgate.imap")

P = ParamSpec("P")
T = TypeVar("T")

IDLE_RENEW = 25 * 60.0  # RFC 2177: re-issue IDLE at least every 29 minutes or the server may log us out
BATCH_BYTES = 16 << 20  # bytes fetched per batch at most; a larger message goes alone
WINDOW = 1000  # UIDs planned at a time
ACTION_BATCH = 500  # committed messages per flag/move/delete command
PREFETCH = 3  # batches fetched ahead of the commit
_NETWORK = (OSError, imaplib.IMAP4.error, Disconnected, TimeoutError, StoreUnavailable, sqlite3.Error)


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


class AccountWorker:
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
        # imapclient blocks and is not thread-safe: one thread per account, never the default pool (P2).
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

    # -- state ------------------------------------------------------------------------------

    async def _set_state(self, state: str, error: str | None = None, retry_in: float | None = None) -> None:
        self.state = state
        if error is not None:
            self.last_error = error
        try:
            await save_state(self.store, self.name, state, error, retry_in)
        except (StoreUnavailable, sqlite3.Error) as exc:  # state is for humans; never fail over it
            log.warning("imap.state_not_saved account=%s state=%s error=%s", self.name, state, exc)
        await self._notify()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while not self._stopping:
                delay = await self._connected_session()
                if self._stopping:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            self.executor.shutdown(wait=False, cancel_futures=True)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._set_state("stopped"))

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
            while not self._stopping:
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
        if self._stopping:
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
            if self._stopping:
                return
            try:
                await self._sync(folder)
            except FolderMissing as exc:
                # One missing folder must not keep the account's other folders unread.
                log.error("imap.folder_missing account=%s folder=%s", self.name, folder)
                await self._set_state(self.state, str(exc))

    async def _sync(self, folder: str) -> None:
        info: FolderInfo = await self._call(self.session.select, folder)
        cp = await load_checkpoint(self.store, self.name, folder)
        if cp is None or cp.uidvalidity != info.uidvalidity:
            if cp is not None:
                # RFC 3501 2.3.1.1: old UIDs mean nothing now. Read the folder again; the spool's
                # sha256 and the Message-ID/body dedupe keep already stored mail from repeating.
                log.warning(
                    "imap.uidvalidity_changed account=%s folder=%s old=%s new=%s rereading",
                    self.name, folder, cp.uidvalidity, info.uidvalidity,
                )
            cp = Checkpoint(info.uidvalidity, 0, 0)
            async with self.store.txn() as tx:
                await save_checkpoint(tx, self.name, folder, cp)
        if cp.done_uid < cp.last_uid:
            cp = await self._finish_actions(folder, cp)
        uids = await self._call(self.session.uids_between, cp.last_uid + 1, info.uidnext and info.uidnext - 1)
        if not uids:
            return
        await self._set_state("fetching")
        # Mail above `alone` bytes is fetched one at a time, so a batch never holds more than
        # BATCH_BYTES; the server finds those with SEARCH LARGER, without sending every size.
        alone = min(self.max_size, max(BATCH_BYTES // self.account.batch_size, 1))
        for start in range(0, len(uids), WINDOW):
            window = uids[start : start + WINDOW]
            large = await self._call(self.session.uids_between, window[0], window[-1], alone)
            sizes = await self._call(self.session.sizes, large) if large else {}
            cp = await self._drain_window(folder, cp, window, sizes)
            if self._stopping:
                return

    async def _finish_actions(self, folder: str, cp: Checkpoint) -> Checkpoint:
        """A crash between commit and flag/move/delete: apply the action now (it is idempotent)."""
        skipped = await skipped_uids(self.store, self.name, folder, cp.uidvalidity)
        present = await self._call(self.session.uids_between, cp.done_uid + 1, cp.last_uid)
        todo = [u for u in present if u not in skipped]
        if todo:
            log.info("imap.resume_actions account=%s folder=%s count=%d", self.name, folder, len(todo))
            await self._call(self.session.after_store, todo)
        return await self._mark_done(folder, cp, cp.last_uid)

    async def _mark_done(self, folder: str, cp: Checkpoint, upto: int) -> Checkpoint:
        cp = Checkpoint(cp.uidvalidity, cp.last_uid, upto)
        async with self.store.txn() as tx:
            await save_checkpoint(tx, self.name, folder, cp)
        return cp

    def _plan(self, window: Sequence[int], large: dict[int, int]) -> list[_Batch]:
        """Batches of up to batch_size small messages; a large one alone; oversized ones unfetched."""
        plans: list[_Batch] = []
        batch: list[int] = []
        too_big: list[tuple[int, int]] = []
        for uid in window:
            size = large.get(uid)
            if size is not None and size > self.max_size:
                too_big.append((uid, size))
                continue
            if batch and (size is not None or len(batch) >= self.account.batch_size):
                plans.append(_Batch(batch, too_big, batch[-1]))
                batch, too_big = [], []
            batch.append(uid)
            if size is not None:
                plans.append(_Batch(batch, too_big, uid))
                batch, too_big = [], []
        if batch or too_big or not plans:
            plans.append(_Batch(batch, too_big, window[-1]))
        return plans

    async def _drain_window(self, folder: str, cp: Checkpoint, window: Sequence[int], sizes: dict[int, int]) -> Checkpoint:
        """Each batch: fetch, commit with the checkpoint; then flag/move/delete on the server.

        The IMAP thread fetches up to PREFETCH batches ahead while the loop commits; an action is
        queued on that thread only after the commit of the messages it touches, and the loop
        does not wait for it before committing the next batch.
        """
        loop = asyncio.get_running_loop()
        plans = deque(self._plan(window, sizes))
        fetches: deque[tuple[_Batch, asyncio.Future[list[Fetched]]]] = deque()
        action: asyncio.Future[None] | None = None
        action_upto = cp.done_uid
        committed: list[int] = []  # stored, action not yet queued

        def prefetch() -> None:
            while plans and len(fetches) < PREFETCH and not self._stopping:
                plan = plans.popleft()
                fetches.append((plan, loop.run_in_executor(self.executor, self.session.fetch, plan.uids)))

        try:
            prefetch()
            while fetches:
                plan, future = fetches.popleft()
                group = [(plan, await future)]
                # Group commit: batches already fetched go into the same transaction, so a slow
                # commit (the loop shares the GIL with this account's thread) does not stall fetching.
                while fetches and fetches[0][1].done() and len(group) < PREFETCH:
                    plan, future = fetches.popleft()
                    group.append((plan, future.result()))
                prefetch()
                cp = await self._commit(folder, cp, group)
                committed.extend(f.uid for _, fetched in group for f in fetched)
                if not fetches or len(committed) >= ACTION_BATCH:
                    # One command for several batches: servers pay per command.
                    if action is not None:
                        await action
                        cp = Checkpoint(cp.uidvalidity, cp.last_uid, action_upto)  # saved with the next commit
                    action = loop.run_in_executor(self.executor, self.session.after_store, committed)
                    action_upto, committed = cp.last_uid, []
            if action is not None:
                await action
                action = None
                cp = Checkpoint(cp.uidvalidity, cp.last_uid, action_upto)
        finally:
            # After an error: let queued fetches and actions end quietly; the checkpoint's done_uid
            # says which actions the next session must repeat.
            pending: list[asyncio.Future[Any]] = [f for _, f in fetches]
            if action is not None:
                pending.append(action)
            for future in pending:
                future.cancel()
                future.add_done_callback(_quiet)
        return await self._mark_done(folder, cp, cp.done_uid)

    async def _commit(self, folder: str, cp: Checkpoint, group: list[tuple[_Batch, list[Fetched]]]) -> Checkpoint:
        too_big = [item for plan, _ in group for item in plan.too_big]
        upto = max([cp.last_uid, *(plan.upto for plan, _ in group), *(u for u, _ in too_big)])
        fetched = [f for _, batch in group for f in batch]
        items = [
            (
                f.raw,
                f.digest,
                Envelope(
                    mail_from=f.mail_from,
                    rcpt_to=f.rcpt_to,
                    source=Source.IMAP,
                    source_ref=f"{self.name}/{folder}/{cp.uidvalidity}/{f.uid}",
                ),
            )
            for f in fetched
        ]
        async with self.store.txn() as tx:
            accepted = await spool.accept_many_in(tx, items)
            new = sum(not a.duplicate for a in accepted)
            for uid, size in too_big:
                reason = f"larger than the limit of {self.max_size} bytes"
                await record_skipped(tx, self.name, folder, cp.uidvalidity, uid, size, reason)
            # The checkpoint moves in the same transaction as the spool rows: no gap, no repeat.
            cp = Checkpoint(cp.uidvalidity, upto, cp.done_uid)
            await save_checkpoint(tx, self.name, folder, cp, stored=new)
        for uid, size in too_big:
            log.warning(
                "imap.too_big account=%s folder=%s uid=%s size=%s limit=%s left_on_server",
                self.name, folder, uid, size, self.max_size,
            )
        if new and self.on_accept:
            self.on_accept()
        self.stored += new
        await self._notify()
        return cp


@dataclass(frozen=True, slots=True)
class _Batch:
    uids: list[int]  # to fetch and store
    too_big: list[tuple[int, int]]  # (uid, size) left on the server
    upto: int  # the checkpoint after this batch


def _quiet(future: asyncio.Future[Any]) -> None:
    """Collect an abandoned future's outcome so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


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
