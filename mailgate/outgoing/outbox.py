"""The durable outbox: rows written with the ticket change, a sender that delivers them with retries."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mailgate.config import OutboxConfig
from mailgate.obs import q
from mailgate.ops import tickets
from mailgate.outgoing.relay import Delivery, Result
from mailgate.store import Row, Store, StoreUnavailable, Txn, messages, now_iso, timers

if TYPE_CHECKING:
    from mailgate.outgoing.compose import File
    from mailgate.outgoing.notices import Mailer

log = logging.getLogger("mailgate.outbox")

# Mail the customer sees: stored as an outgoing message of the ticket once sent.
CUSTOMER_KINDS = frozenset({"ack", "resolved", "reply"})
# An error of ours (not the relay's answer) is tried this often, then the row fails with it: a
# bug that one mail triggers every time must not keep that mail retrying for outbox.max_age.
UNEXPECTED_TRIES = 3
# A sender task that died anyway is started again after this pause (never in a tight loop).
RESTART_PAUSE = 1.0


@dataclass(frozen=True, slots=True)
class NewMail:
    """One rendered mail for one envelope recipient, ready for the table."""

    ticket_id: int | None
    kind: str
    automatic: bool
    agent: str | None
    message_id: str
    from_name: str
    from_address: str
    in_reply_to: str | None
    rcpt_to: str
    subject: str
    text: str
    not_before: datetime
    state: str = "queued"


async def insert(tx: Txn, mail: NewMail) -> int:
    """The row, before its bytes: the VERP return path names the row id, so compose comes after."""
    outbox_id = await tx.execute(
        "INSERT INTO outbox (ticket_id, kind, automatic, agent, message_id, mail_from, from_name, from_address,"
        " in_reply_to, rcpt_to, subject, text, raw, not_before, created_at, state)"
        " VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, x'', ?, ?, ?)",
        (
            mail.ticket_id, mail.kind, int(mail.automatic), mail.agent, mail.message_id, mail.from_name,
            mail.from_address, mail.in_reply_to, mail.rcpt_to.lower(), mail.subject, mail.text,
            timers.iso(mail.not_before), now_iso(), mail.state,
        ),
    )
    if mail.ticket_id is not None:
        # Every Message-ID we send threads a reply by header, even with a rewritten subject.
        await tx.execute(
            "INSERT OR IGNORE INTO message_ids (message_id, ticket_id, outbound) VALUES (?, ?, 1)",
            (mail.message_id, mail.ticket_id),
        )
    return outbox_id


async def set_wire(tx: Txn, outbox_id: int, mail_from: str, raw: bytes, not_before: datetime) -> None:
    """Store the composed bytes; a future not-before time gets its timer row in the same transaction."""
    await tx.execute("UPDATE outbox SET mail_from = ?, raw = ? WHERE id = ?", (mail_from, raw, outbox_id))
    if not_before > datetime.now(UTC):
        await timers.add(tx, timers.OUTBOX_RELEASE, outbox_id, not_before)


async def queue_agent_reply(
    tx: Txn, mailer: Mailer, ticket_id: int, agent: str, text: str, *, delay: float | None = None,
    files: tuple[File, ...] = (),
) -> int:
    """An agent's reply to the customer (with the files they attached), sent after outbox.send_delay unless cancelled or held."""
    wait = mailer.config.outbox.send_delay if delay is None else delay
    return await mailer.agent_reply(tx, ticket_id, agent, text, not_before=datetime.now(UTC) + timedelta(seconds=wait),
                                    files=files)


async def cancel_pending(tx: Txn, ticket_id: int, agent: str | None) -> int:
    """Cancel the agent's replies that have not gone yet (queued or held); None = any agent's."""
    rows = await tx.all(
        "UPDATE outbox SET state = 'cancelled' WHERE ticket_id = ? AND kind = 'reply'"
        " AND state IN ('queued', 'held') AND (? IS NULL OR agent = ?) RETURNING id",
        (ticket_id, agent, agent),
    )
    for row in rows:
        await timers.cancel(tx, timers.OUTBOX_RELEASE, row["id"])
    if rows:
        await tickets.event(tx, ticket_id, f"agent:{agent}" if agent else "system", "reply.cancelled",
                            {"outbox": [r["id"] for r in rows]})
    return len(rows)


async def hold_pending(tx: Txn, ticket_id: int) -> list[Row]:
    """The customer wrote again: waiting replies stop until their agent confirms them."""
    rows = await tx.all(
        "UPDATE outbox SET state = 'held' WHERE ticket_id = ? AND kind = 'reply' AND state = 'queued'"
        " RETURNING id, agent, text",
        (ticket_id,),
    )
    for row in rows:
        await timers.cancel(tx, timers.OUTBOX_RELEASE, row["id"])
    if rows:
        await tickets.event(tx, ticket_id, "system", "reply.held", {"outbox": [r["id"] for r in rows]})
    return rows


async def release_held(tx: Txn, ticket_id: int, agent: str | None) -> int:
    """The agent confirmed: held replies go now."""
    count = await tx.rowcount(
        "UPDATE outbox SET state = 'queued', not_before = ? WHERE ticket_id = ? AND kind = 'reply'"
        " AND state = 'held' AND (? IS NULL OR agent = ?)",
        (now_iso(), ticket_id, agent, agent),
    )
    if count:
        await tickets.event(tx, ticket_id, f"agent:{agent}" if agent else "system", "reply.released", {"count": count})
    return count


def id_chunks(ids: list[int], size: int = 500) -> Iterator[tuple[str, list[int]]]:
    """(placeholders, ids) in slices: an operator's `xargs` list must not hit SQLite's variable limit."""
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        yield ",".join("?" * len(chunk)), chunk


async def requeue(tx: Txn, ids: list[int], actor: str) -> list[Row]:
    """Send these rows now: failed ones again (e.g. after a relay fix), queued ones without their wait.

    last_error stays: the operator must still see why a row failed if it fails again. created_at
    starts again for a failed row, since outbox.max_age counts from it and the old age would fail
    the retry at once. A running daemon notices the commit and sends them.
    """
    now = now_iso()
    rows: list[Row] = []
    for marks, chunk in id_chunks(ids):
        rows += await tx.all(
            "UPDATE outbox SET attempts = CASE WHEN state = 'failed' THEN 0 ELSE attempts END,"
            " created_at = CASE WHEN state = 'failed' THEN ? ELSE created_at END,"
            " state = 'queued', not_before = ?, retries = retries + 1"
            f" WHERE id IN ({marks}) AND (state = 'failed' OR (state = 'queued' AND not_before > ?))"
            " RETURNING id, ticket_id, kind, rcpt_to, last_error",
            (now, now, *chunk, now),
        )
    for row in rows:
        await timers.cancel(tx, timers.OUTBOX_RELEASE, row["id"])  # it is due now; the old wake-up is moot
        if row["ticket_id"] is not None:
            await tickets.event(tx, row["ticket_id"], actor, "mail.requeued",
                                {"outbox": row["id"], "kind": row["kind"], "to": row["rcpt_to"],
                                 "last_error": row["last_error"]})
        log.info("outbox.requeued id=%s rcpt=%r actor=%s last_error=%s", row["id"], row["rcpt_to"], actor,
                 row["last_error"])
    return rows


async def cancel(tx: Txn, ids: list[int], actor: str) -> list[Row]:
    """Never send these rows (queued or held; one being sent cannot be called back): kept as 'cancelled'."""
    rows: list[Row] = []
    for marks, chunk in id_chunks(ids):
        rows += await tx.all(
            f"UPDATE outbox SET state = 'cancelled' WHERE id IN ({marks}) AND state IN ('queued', 'held')"
            " RETURNING id, ticket_id, kind, rcpt_to",
            chunk,
        )
    for row in rows:
        await timers.cancel(tx, timers.OUTBOX_RELEASE, row["id"])
        if row["ticket_id"] is not None:
            await tickets.event(tx, row["ticket_id"], actor, "mail.cancelled",
                                {"outbox": row["id"], "kind": row["kind"], "to": row["rcpt_to"]})
        log.info("outbox.cancelled id=%s rcpt=%r actor=%s", row["id"], row["rcpt_to"], actor)
    return rows


def backoff(config: OutboxConfig, attempts: int) -> float:
    """Seconds before try number attempts+1: base, 2×base, 4×base ... at most retry_max."""
    return float(min(config.retry_base * (2 ** max(attempts - 1, 0)), config.retry_max))


# Called inside the transaction that marks a row failed: record it and tell someone.
FailureHook = Callable[[Txn, Row, str], Awaitable[None]]


class Sender:
    """Claims due rows and hands them to the relay, `relay.connections` at a time."""

    def __init__(
        self,
        config: OutboxConfig,
        store: Store,
        relay: Delivery,
        *,
        on_failed: FailureHook | None = None,
        on_timer: Callable[[], None] | None = None,
        poll_seconds: float = 30.0,
    ) -> None:
        self.config = config
        self.store = store
        self.relay = relay
        self.on_failed = on_failed
        self.on_timer = on_timer
        self.poll_seconds = poll_seconds
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

    def wake(self) -> None:
        self._wake.set()

    def alive(self) -> bool:
        """Every sender task runs (one that died is dead until its restart a second later)."""
        return not self._stopping and bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def recover(self) -> int:
        """Rows a killed daemon left 'sending' may or may not have reached the relay: send again.

        One daemon per database: a row in 'sending' at start is one a dead process was holding.
        """
        async with self.store.read() as tx:
            if not await tx.value("SELECT 1 FROM outbox WHERE state = 'sending' LIMIT 1"):
                return 0
        async with self.store.txn() as tx:
            return await tx.rowcount("UPDATE outbox SET state = 'queued' WHERE state = 'sending'")

    async def start(self) -> None:
        recovered = await self.recover()
        if recovered:
            log.warning("outbox.recovered rows=%s (in flight when the daemon stopped)", recovered)
        self._stopping = False
        self._tasks = [self._spawn(i) for i in range(self.relay.config.connections)]

    def _spawn(self, index: int) -> asyncio.Task[None]:
        task = asyncio.create_task(self._work(), name=f"outbox-sender-{index}")
        task.add_done_callback(lambda done: self._ended(index, done))
        return task

    def _ended(self, index: int, task: asyncio.Task[None]) -> None:
        """A sender task ended while the daemon runs: say so now (not at shutdown) and start another."""
        if self._stopping or index >= len(self._tasks) or self._tasks[index] is not task:
            return
        error = "cancelled" if task.cancelled() else _reason(task.exception()) if task.exception() else "returned"
        log.error("outbox.worker_died worker=%s error=%s restart_in=%.0fs", index, error, RESTART_PAUSE)
        self.restarts += 1

        def restart() -> None:
            if not self._stopping and self._tasks[index] is task:
                self._tasks[index] = self._spawn(index)

        asyncio.get_running_loop().call_later(RESTART_PAUSE, restart)

    async def stop(self, grace: float = 0.0) -> None:
        """Claim no more rows; mail already handed to the relay gets `grace` seconds to finish.

        Then the workers are cancelled: a row still 'sending' is sent again at the next start
        (the relay may see it twice, never zero times).
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
            if not task.cancelled() and task.exception() is not None:
                log.error("outbox.worker_failed error=%s", _reason(task.exception()))
        self._tasks = []

    async def _work(self) -> None:
        pause = 1.0
        while not self._stopping:
            self._wake.clear()
            try:
                row = await self._claim()
            except Exception as exc:  # the store struggling, or a bug: either way the loop goes on
                log.warning("outbox.claim_failed error=%s retry_in=%.0fs", _reason(exc), pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)
                continue
            pause = 1.0
            if row is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
                continue
            await self._deliver(row)

    async def _claim(self) -> Row | None:
        # Look before taking the write lock: an idle sender must not contend with intake writers.
        async with self.store.read() as tx:
            if not await tx.value(
                "SELECT 1 FROM outbox WHERE state = 'queued' AND not_before <= ? LIMIT 1", (now_iso(),)
            ):
                return None
        async with self.store.txn() as tx:
            return await tx.one(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ("
                " SELECT id FROM outbox WHERE state = 'queued' AND not_before <= ? ORDER BY not_before, id LIMIT 1)"
                " RETURNING *",
                (now_iso(),),
            )

    async def _deliver(self, row: Row) -> None:
        try:
            result = await self.relay.send(row["mail_from"], row["rcpt_to"], bytes(row["raw"]))
        except Exception as exc:  # Relay.send answers every failure; this is a bug, kept to this row
            log.error("outbox.send_error id=%s error=%s", row["id"], _reason(exc))
            result = Result(False, False, None, _reason(exc), unexpected=True)
        self.attempts += 1
        self._relay_seen(result)
        pause = 1.0
        while True:
            try:
                await self._record(row, result)
                break
            except (StoreUnavailable, sqlite3.OperationalError) as exc:
                # The mail went (or not); the row must say so, or a restart sends it again.
                log.warning("outbox.record_failed id=%s error=%s retry_in=%.0fs", row["id"], exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
            except Exception as exc:
                # A bug after the send (the ticket's event, the agents' notice of a failure): the
                # row still says what happened, without the rest.
                log.error("outbox.record_error id=%s error=%s", row["id"], _reason(exc))
                await self._record_plain(row, result, exc)
                break
        self.delivered.set()

    def _relay_seen(self, result: Result) -> None:
        """Whether the relay itself works: any answer about a recipient proves it; no session does not."""
        now = time.monotonic()
        if relay_trouble(result):
            self.relay_failed_at = now
            self.relay_failures += 1
        elif not result.unexpected:
            self.relay_ok_at = now

    async def _record_plain(self, row: Row, result: Result, error: Exception) -> None:
        """Only the row's state, when recording it in full raised: 'sent', or 'failed' with both reasons."""
        state = "sent" if result.ok else "failed"
        note = f"{'sent' if result.ok else result.message}; recording it failed: {_reason(error)}"[:2000]
        pause = 1.0
        while True:
            try:
                async with self.store.txn() as tx:
                    await tx.execute(
                        "UPDATE outbox SET state = ?, last_error = ?, sent_at = CASE WHEN ? = 'sent' THEN ? END"
                        " WHERE id = ?",
                        (state, note, state, now_iso(), row["id"]),
                    )
                log.warning("outbox.%s id=%s rcpt=%r reason=%s", state, row["id"], row["rcpt_to"], note)
                return
            except (StoreUnavailable, sqlite3.OperationalError) as exc:
                log.warning("outbox.record_failed id=%s error=%s retry_in=%.0fs", row["id"], exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
            except Exception as exc:  # left 'sending': the next start sends it again
                log.error("outbox.record_error id=%s error=%s", row["id"], _reason(exc))
                return

    async def _record(self, row: Row, result: Result) -> None:
        now = datetime.now(UTC)
        retry_at: datetime | None = None
        if result.ok:
            number = None
            async with self.store.txn() as tx:
                await self._sent(tx, row, now)
                if row["ticket_id"] is not None:
                    number = await tx.value("SELECT number FROM tickets WHERE id = ?", (row["ticket_id"],))
            # After the commit: the relay's reply holds its queue id, the thread to follow into its log.
            log.info("outbox.sent id=%s ticket=%s kind=%s message_id=%s rcpt=%s attempts=%s relay=%s",
                     row["id"], number, row["kind"], q(f"<{row['message_id']}>"), q(row["rcpt_to"]),
                     row["attempts"], q(" ".join(str(result.message or "").split())[:300]))
            return
        async with self.store.txn() as tx:
            created = datetime.fromisoformat(row["created_at"])
            retry_at = now + timedelta(seconds=backoff(self.config, row["attempts"]))
            capped = result.unexpected and row["attempts"] >= UNEXPECTED_TRIES
            if not result.permanent and not capped and retry_at <= created + timedelta(seconds=self.config.max_age):
                await tx.execute(
                    "UPDATE outbox SET state = 'queued', not_before = ?, last_error = ? WHERE id = ?",
                    (timers.iso(retry_at), result.message, row["id"]),
                )
                await timers.add(tx, timers.OUTBOX_RELEASE, row["id"], retry_at)
                # A relay outage or a refusal for now: nothing is lost, but the operator must see it.
                log.warning("outbox.retry id=%s kind=%s attempts=%s at=%s reason=%s",
                            row["id"], row["kind"], row["attempts"], retry_at.isoformat(), q(result.message))
            else:
                retry_at = None
                reason = result.message if result.permanent else f"gave up after {row['attempts']} tries: {result.message}"
                await tx.execute(
                    "UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?", (reason, row["id"])
                )
                log.warning("outbox.failed id=%s kind=%s rcpt=%s reason=%s", row["id"], row["kind"], q(row["rcpt_to"]),
                            q(reason))
                if self.on_failed is not None:
                    await self.on_failed(tx, row, reason)
        if retry_at is not None and self.on_timer is not None:
            self.on_timer()

    async def _sent(self, tx: Txn, row: Row, now: datetime) -> None:
        message_row = None
        if row["ticket_id"] is not None and row["kind"] in CUSTOMER_KINDS:
            text = row["text"]
            message_row = await messages.insert(tx, messages.NewMessage(
                ticket_id=row["ticket_id"], direction="out", message_id=row["message_id"],
                content_key=hashlib.sha256(text.encode()).hexdigest(), in_reply_to=row["in_reply_to"],
                from_name=row["from_name"], from_address=row["from_address"],
                recipients={"to": [{"name": "", "address": row["rcpt_to"]}], "cc": [], "reply_to": []},
                subject=row["subject"], sent_at=timers.iso(now), text=text, reply_text=text,
                kind="auto-reply" if row["automatic"] else "message", thread_rule="outbound",
                thread_detail=row["kind"], created_at=now_iso(), thread_by_id=False,
            ))
        await tx.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?, last_error = NULL, message_row = ? WHERE id = ?",
            (timers.iso(now), message_row, row["id"]),
        )
        if row["ticket_id"] is not None and row["kind"] == "reply":
            # SLA (issue 7): an agent's answer reached the relay. Imported here: sla → outbound → outbox.
            from mailgate.ops import sla

            await sla.first_response_sent(tx, row["ticket_id"], now)
        if row["ticket_id"] is not None:
            await tickets.event(
                tx, row["ticket_id"], "system", "mail.sent",
                {"outbox": row["id"], "kind": row["kind"], "to": row["rcpt_to"], "message_id": row["message_id"],
                 "attempts": row["attempts"]},
            )


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
