"""The outbox sender: claims due rows and hands them to the relay, retrying with backoff until outbox.max_age."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

from mailgate.clock import Clock, iso
from mailgate.config import OutboxConfig
from mailgate.obs import q
from mailgate.ops import sla
from mailgate.outgoing.outbox import backoff
from mailgate.outgoing.relay import Delivery, Result
from mailgate.runners import Spawn
from mailgate.store import Store, StoreUnavailable, TransientError, Txn, events, messages
from mailgate.store import outbox as rows
from mailgate.store import outbox_leases as leases
from mailgate.store.outbox import OutboxRow

log = logging.getLogger("mailgate.outbox")

# An error of ours (not the relay's answer) is tried this often, then the row fails with it: a
# bug that one mail triggers every time must not keep that mail retrying for outbox.max_age.
UNEXPECTED_TRIES = 3
# Rows claimed, sent and recorded together: one write transaction records a batch and claims the
# next, instead of two per mail. Bounded, since a row claimed stays 'sending' until its batch is
# recorded, and a crash meanwhile sends the whole batch again.
BATCH = 16
# A sender task that died anyway is started again after this pause (never in a tight loop).
RESTART_PAUSE = 1.0

# Called inside the transaction that marks a row failed: record it and tell someone.
FailureHook = Callable[[Txn, OutboxRow, str], Awaitable[None]]


class Sender:
    """Claims due rows and hands them to the relay, `relay.connections` at a time."""

    def __init__(
        self,
        config: OutboxConfig,
        store: Store,
        relay: Delivery,
        *,
        on_failed: FailureHook | None = None,
        clock: Clock | None = None,
        poll_seconds: float = 30.0,
        node: str = "local",
        lease: float = 300.0,
    ) -> None:
        self.config = config
        self.store = store
        self.relay = relay
        self.on_failed = on_failed
        self.clock = clock or store.clock
        self.poll_seconds = poll_seconds
        # Whose claims these are among daemons sharing the database, and how long one holds.
        self.node = node
        self.lease = lease
        self._wake = asyncio.Event()
        self.delivered = asyncio.Event()  # set after every attempt; tests wait on it
        self.attempts = 0
        self.restarts = 0  # sender tasks started again after dying
        # What the relay did last, for /healthz and the metrics (monotonic seconds; None: not yet).
        self.relay_ok_at: float | None = None
        self.relay_failed_at: float | None = None
        self.relay_failures = 0
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._errors: dict[int, str] = {}
        self._spawn_in: Spawn | None = None

    def wake(self) -> None:
        self._wake.set()

    def alive(self) -> bool:
        """Every sender task runs (one that died is dead until its restart a second later)."""
        return not self._stopping and bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def recover(self) -> int:
        """Rows this node's killed previous life left 'sending' (another daemon's stay its own until their lease
        ends): they may or may not have reached the relay, so they go again."""
        async with self.store.read() as tx:
            if not await leases.mine_in_flight(tx, self.node):
                return 0
        async with self.store.txn() as tx:
            return await leases.take_back(tx, self.node)

    async def start(self, spawn: Spawn) -> None:
        """Recover, then run `relay.connections` workers as tasks of the daemon's group (`spawn`)."""
        recovered = await self.recover()
        if recovered:
            log.warning("outbox.recovered rows=%s (in flight when the daemon stopped)", recovered)
        log.info("outbox.claims node=%s lease=%gs", q(self.node), self.lease)  # the name `outbox list` shows
        self._stopping = False
        self._spawn_in = spawn
        self._tasks = [self._spawn(i) for i in range(self.relay.config.connections)]

    def _spawn(self, index: int) -> asyncio.Task[None]:
        assert self._spawn_in is not None
        task = self._spawn_in(lambda: self._guarded(index), f"outbox-sender-{index}")
        task.add_done_callback(lambda done: self._ended(index, done))
        return task

    async def _guarded(self, index: int) -> None:
        """A worker whose error ends only itself: the daemon's task group must not fall with it."""
        try:
            await self._work()
        except Exception as exc:
            self._errors[index] = _reason(exc)

    def _ended(self, index: int, task: asyncio.Task[None]) -> None:
        """A sender task ended while the daemon runs: say so now (not at shutdown) and start another."""
        if self._stopping or index >= len(self._tasks) or self._tasks[index] is not task:
            return
        error = "cancelled" if task.cancelled() else self._errors.pop(index, "returned")
        log.error("outbox.worker_died worker=%s error=%s restart_in=%.0fs", index, error, RESTART_PAUSE)
        self.restarts += 1

        def restart() -> None:
            if not self._stopping and self._tasks[index] is task:
                with contextlib.suppress(RuntimeError):  # the task group is already closing
                    self._tasks[index] = self._spawn(index)

        asyncio.get_running_loop().call_later(RESTART_PAUSE, restart)

    async def stop(self, grace: float = 0.0) -> None:
        """Claim no more rows; mail already handed to the relay gets `grace` seconds to finish.

        Then the workers are cancelled: a row still 'sending' is sent again at this node's next
        start, or by another daemon once its lease ran out (the relay may see it twice, never zero times).
        """
        self._stopping = True
        self._wake.set()
        if self._tasks and grace > 0:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            if pending:
                log.warning("outbox.stop_cut in_flight=%d after=%gs (sent again at start)", len(pending), grace)
        for task in self._tasks:
            # Cancel until done: 3.11's wait_for (inside aiosmtplib) can swallow a cancel that
            # arrives with a reply, and a shutdown must not hang on that.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1)
        for error in self._errors.values():
            log.error("outbox.worker_failed error=%s", error)
        self._errors.clear()
        self._tasks = []

    async def _work(self) -> None:
        pause = 1.0
        batch: list[OutboxRow] = []
        while not self._stopping:
            self._wake.clear()
            if not batch:
                try:
                    batch = await self._claim()
                except Exception as exc:  # the store struggling, or a bug: either way the loop goes on
                    log.warning("outbox.claim_failed error=%s retry_in=%.0fs", _reason(exc), pause)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 60.0)
                    continue
                pause = 1.0
            if not batch:
                with contextlib.suppress(TimeoutError):
                    # Another daemon's lease may run out meanwhile: look again by then at the latest.
                    async with asyncio.timeout(min(self.poll_seconds, self.lease)):
                        await self._wake.wait()
                continue
            # The transaction that records this batch claims the next one: under load the sender
            # costs one write transaction per BATCH mails.
            batch = await self._deliver(batch)

    async def _claim(self) -> list[OutboxRow]:
        now = self.clock.now()
        # Look before taking the write lock: an idle sender must not contend with intake writers.
        async with self.store.read() as tx:
            if not await leases.any_due(tx, self.node, now):
                return []
        async with self.store.txn() as tx:
            return await self._claim_in(tx)

    async def _claim_in(self, tx: Txn) -> list[OutboxRow]:
        now = self.clock.now()
        taken = await leases.expire(tx, self.node, now)
        if taken:  # another daemon died (or stalled past its lease) with these claimed: they go again
            log.warning("outbox.lease_expired ids=%s from=%s", sorted(taken), ",".join({q(n) for n in taken.values()}))
        return await leases.claim_batch(tx, self.node, now, now + timedelta(seconds=self.lease), BATCH)

    async def _send(self, row: OutboxRow) -> Result:
        try:
            return await self.relay.send(row.mail_from, row.rcpt_to, row.raw)
        except Exception as exc:  # Relay.send answers every failure; this is a bug, kept to this row
            log.error("outbox.send_error id=%s error=%s", row.id, _reason(exc))
            return Result(False, False, None, _reason(exc), unexpected=True)

    async def _deliver(self, batch: list[OutboxRow]) -> list[OutboxRow]:
        """Send the batch in the order it fell due, record every result; the next batch, if claimed.

        One after another over this worker's session: agents read a ticket's notices in the order
        they were written; the other workers (relay.connections) send other batches meanwhile.
        """
        results: list[Result] = []
        taken: list[datetime] = []
        trouble: Result | None = None
        for row in batch:
            if self._stopping:
                break  # not handed to the relay yet: back to the queue, without an attempt counted
            if trouble is not None:
                # The relay, not the mail, failed (no session, 421): the rest of the batch would
                # wait out the same timeout one by one; they are retried after the same backoff.
                results.append(replace(trouble, message=f"not tried: {trouble.message}"[:2000]))
                taken.append(self.clock.now())
                continue
            # When it was handed to the relay, not when the batch is recorded: a first response is
            # timed by this (SLA, reports), and a batch's record may come seconds after its first mail.
            taken.append(self.clock.now())
            result = await self._send(row)
            self.attempts += 1
            self._relay_seen(result)
            results.append(result)
            trouble = result if relay_trouble(result) else None
        tried, untried = batch[:len(results)], batch[len(results):]
        pause = 1.0
        claimed: list[OutboxRow] = []
        while True:
            try:
                async with self.store.txn() as tx:
                    mine = await self._record(tx, tried, results, taken)
                    await leases.unclaim(tx, self.node, untried)
                    if not self._stopping:
                        claimed = await self._claim_in(tx)
                self._log_sent(tried, results, mine)
                break
            except (StoreUnavailable, TransientError) as exc:
                # The mail went (or not); the rows must say so, or a restart sends them again.
                log.warning("outbox.record_failed ids=%s error=%s retry_in=%.0fs", [r.id for r in batch], exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
            except Exception as exc:
                # A bug while recording (the ticket's event, the agents' notice of a failure): each row
                # again on its own, so one row's trouble costs the others nothing.
                log.error("outbox.record_error ids=%s error=%s", [r.id for r in batch], _reason(exc))
                for row, result, at in zip(tried, results, taken, strict=True):
                    await self._record_alone(row, result, at)
                break  # an untried row stays 'sending' until this node's next start or its lease's end
        self.delivered.set()
        return claimed

    async def _record_alone(self, row: OutboxRow, result: Result, at: datetime) -> None:
        """One row's full record in its own transaction; only its state when that raises too."""
        pause = 1.0
        while True:
            try:
                async with self.store.txn() as tx:
                    mine = await self._record(tx, [row], [result], [at])
                self._log_sent([row], [result], mine)
                return
            except (StoreUnavailable, TransientError) as exc:
                log.warning("outbox.record_failed id=%s error=%s retry_in=%.0fs", row.id, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
            except Exception as exc:
                log.error("outbox.record_error id=%s error=%s", row.id, _reason(exc))
                await self._record_plain(row, result, exc)
                return

    def _relay_seen(self, result: Result) -> None:
        """Whether the relay itself works: any answer about a recipient proves it; no session does not."""
        now = time.monotonic()
        if relay_trouble(result):
            self.relay_failed_at = now
            self.relay_failures += 1
        elif not result.unexpected:
            self.relay_ok_at = now

    async def _record_plain(self, row: OutboxRow, result: Result, error: Exception) -> None:
        """Only the row's state, when recording it in full raised: 'sent', or 'failed' with both reasons."""
        state = "sent" if result.ok else "failed"
        note = f"{'sent' if result.ok else result.message}; recording it failed: {_reason(error)}"[:2000]
        pause = 1.0
        while True:
            try:
                async with self.store.txn() as tx:
                    if not await self._mine(tx, [row]):
                        return
                    await rows.mark_plain(tx, row.id, state, note)
                log.warning("outbox.%s id=%s rcpt=%r reason=%s", state, row.id, row.rcpt_to, note)
                return
            except (StoreUnavailable, TransientError) as exc:
                log.warning("outbox.record_failed id=%s error=%s retry_in=%.0fs", row.id, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
            except Exception as exc:  # left 'sending': sent again after a restart or the lease's end
                log.error("outbox.record_error id=%s error=%s", row.id, _reason(exc))
                return

    async def _mine(self, tx: Txn, batch: list[OutboxRow]) -> set[int]:
        """The rows of the batch this node's claim still holds; the others were taken over after the lease."""
        mine = await leases.held(tx, self.node, batch)
        for row in batch:
            if row.id not in mine:  # the batch outlived [storage] lease: another claim sent it too
                log.warning("outbox.lease_lost id=%s node=%s attempts=%s", row.id, q(self.node), row.attempts)
        return mine

    async def _record(self, tx: Txn, batch: list[OutboxRow], results: list[Result], taken: list[datetime]) -> set[int]:
        """What became of each row this node still holds, in the caller's transaction: sent rows and their events
        in one statement each; returns the ids recorded.

        taken: when each row was handed to the relay (a sent mail's time; a retry's backoff counts from it).
        """
        mine = await self._mine(tx, batch)
        done = [(row, result, at) for row, result, at in zip(batch, results, taken, strict=True) if row.id in mine]
        shown = await messages.insert_sent(tx, [self._message_of(tx, row, at) for row, result, at in done
                                                if result.ok and _shown(row)])
        sent: list[tuple[int, int | None, datetime]] = []
        changes: list[events.Event] = []
        for row, result, at in done:
            if not result.ok:
                await self._unsent(tx, row, result, at)
                continue
            sent.append((row.id, shown.get(row.message_id) if _shown(row) else None, at))
            if row.ticket_id is not None and row.kind == "reply":
                # An agent's answer reached the relay: the ticket's first-response SLA is met.
                await sla.first_response_sent(tx, row.ticket_id, at)
            if row.ticket_id is not None:
                changes.append((row.ticket_id, "system", "mail.sent", {
                    "outbox": row.id, "kind": row.kind, "to": row.rcpt_to, "message_id": row.message_id,
                    "attempts": row.attempts,
                }))
        await rows.mark_sent_many(tx, sent)
        await events.add_many(tx, changes)
        return mine

    def _log_sent(self, batch: list[OutboxRow], results: list[Result], mine: set[int]) -> None:
        # After the commit: the relay's reply holds its queue id, the thread to follow into its log.
        for row, result in zip(batch, results, strict=True):
            if result.ok and row.id in mine:
                log.info("outbox.sent id=%s ticket=%s kind=%s message_id=%s rcpt=%s attempts=%s relay=%s",
                         row.id, row.ticket_number, row.kind, q(f"<{row.message_id}>"), q(row.rcpt_to),
                         row.attempts, q(" ".join(str(result.message or "").split())[:300]))

    async def _unsent(self, tx: Txn, row: OutboxRow, result: Result, now: datetime) -> None:
        """Queued again after the backoff, or failed: refused for good, too old, or our own error too often."""
        created = datetime.fromisoformat(row.created_at)
        retry_at = now + timedelta(seconds=backoff(self.config, row.attempts))
        capped = result.unexpected and row.attempts >= UNEXPECTED_TRIES
        if not result.permanent and not capped and retry_at <= created + timedelta(seconds=self.config.max_age):
            # The retry's timer row wakes this sender when it is due (the store says so on commit).
            await rows.mark_retry(tx, row.id, retry_at, result.message)
            # A relay outage or a refusal for now: nothing is lost, but the operator must see it.
            log.warning("outbox.retry id=%s kind=%s attempts=%s at=%s reason=%s",
                        row.id, row.kind, row.attempts, retry_at.isoformat(), q(result.message))
            return
        reason = result.message if result.permanent else f"gave up after {row.attempts} tries: {result.message}"
        await rows.mark_failed(tx, row.id, reason)
        log.warning("outbox.failed id=%s kind=%s rcpt=%s reason=%s", row.id, row.kind, q(row.rcpt_to), q(reason))
        if self.on_failed is not None:
            await self.on_failed(tx, row, reason)

    def _message_of(self, tx: Txn, row: OutboxRow, now: datetime) -> messages.NewMessage:
        """Mail the customer sees becomes an outgoing message of its ticket."""
        assert row.ticket_id is not None
        text = row.text
        return messages.NewMessage(
            ticket_id=row.ticket_id, direction="out", message_id=row.message_id,
            content_key=hashlib.sha256(text.encode()).hexdigest(), in_reply_to=row.in_reply_to,
            from_name=row.from_name, from_address=row.from_address,
            recipients={"to": [{"name": "", "address": row.rcpt_to}], "cc": [], "reply_to": []},
            subject=row.subject, sent_at=iso(now), text=text, reply_text=text,
            kind="auto-reply" if row.automatic else "message", thread_rule="outbound",
            thread_detail=row.kind, created_at=iso(now), thread_by_id=False,
        )


def _shown(row: OutboxRow) -> bool:
    """Mail the customer sees is stored as an outgoing message of its ticket once sent."""
    return row.ticket_id is not None and row.kind in rows.CUSTOMER_KINDS


def relay_trouble(result: Result) -> bool:
    """The relay, not this one mail, is the problem: no session (refused, timeout, dropped), 421, or
    our credentials refused; every mail waits until the operator or the relay fixes it."""
    if result.ok or result.unexpected:
        return False
    if result.code is None:
        return not result.permanent
    return result.code in (421, 454, 530, 534, 535)


def _reason(exc: BaseException | None) -> str:
    """One line for the log and last_error: the exception's type and text, bounded."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
