"""One IMAP folder into the spool: plan batches by size, fetch ahead, commit with the checkpoint, then flag/move/delete."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from mailgate import spool
from mailgate.config import ImapAccount
from mailgate.models import Envelope, Source
from mailgate.sources.imap_session import Fetched, FolderInfo, Session
from mailgate.sources.imap_state import (
    Checkpoint,
    load_checkpoint,
    record_skipped,
    save_checkpoint,
    skipped_uids,
)
from mailgate.store import Store

log = logging.getLogger("mailgate.imap")

P = ParamSpec("P")
T = TypeVar("T")

BATCH_BYTES = 16 << 20  # bytes fetched per batch at most; a larger message goes alone
WINDOW = 1000  # UIDs planned at a time
ACTION_BATCH = 500  # committed messages per flag/move/delete command
PREFETCH = 3  # batches fetched ahead of the commit


@dataclass(frozen=True, slots=True)
class _Batch:
    uids: list[int]  # to fetch and store
    too_big: list[tuple[int, int]]  # (uid, size) left on the server
    upto: int  # the checkpoint after this batch


def _quiet(future: asyncio.Future[Any]) -> None:
    """Collect an abandoned future's outcome so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


class FolderSync:
    """The account worker's folder pass; the worker supplies the session, its thread and its state."""

    account: ImapAccount
    name: str
    store: Store
    session: Session
    executor: ThreadPoolExecutor
    max_size: int
    on_accept: Callable[[], None] | None
    stored: int

    def stopping(self) -> bool:
        raise NotImplementedError

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        raise NotImplementedError

    async def _set_state(self, state: str, error: str | None = None, retry_in: float | None = None) -> None:
        raise NotImplementedError

    async def _notify(self) -> None:
        raise NotImplementedError

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
            if self.stopping():
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
            while plans and len(fetches) < PREFETCH and not self.stopping():
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
