"""Turn spooled raw mail into ticket messages: parse once, then the steps, in one transaction per mail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from mailgate import rules, spool
from mailgate.config import Config
from mailgate.config.node import lease_seconds, node_name
from mailgate.mail.parse import content_key, parse
from mailgate.models import ParsedMail
from mailgate.obs import q
from mailgate.outgoing import notices
from mailgate.pipeline.context import MailContext, Outcome
from mailgate.pipeline.steps import STEPS
from mailgate.store import Priority, Store, StoreUnavailable, TransientError, Txn
from mailgate.store.blobs import BlobStore
from mailgate.store.savepoints import savepoint
from mailgate.store.spool import SpoolEntry

log = logging.getLogger("mailgate.process")

__all__ = ["MAX_ATTEMPTS", "Outcome", "Processor", "log_outcome"]

MAX_ATTEMPTS = 5
INLINE_PARSE_LIMIT = 256 * 1024
# A backlog is processed several rows per transaction: each BEGIN/COMMIT is a hop to the store's
# thread that cost about as much as the statements of a whole message. The batch holds the
# store's lock, so it is bounded in rows and time, and ends early when an intake commit (an SMTP
# session waiting for its 250) queues for the lock. Its mails are parsed before it begins.
# 25 ms: a mail's steps take 2-5 ms, so 5 ms made nearly every mail its own transaction, and each
# COMMIT writes the shared index pages (messages, outbox, events) to the WAL again. An SMTP commit
# never waits for the rest of a batch, only for the mail in hand (store.contended below).
_BATCH_ROWS = 32
_BATCH_SECONDS = 0.025
_LARGE_BLOB = 1 << 20  # attachments above this are written off the loop, so SMTP stays responsive


def log_outcome(outcome: Outcome | None) -> None:
    """After the commit: the line that ties a spool id to its ticket, and how it got there."""
    if outcome is None or outcome.state == "skipped":
        return
    if outcome.state == "duplicate":
        log.info("spool.duplicate spool=%d ticket=%s message=%s", outcome.spool_id, outcome.ticket_number,
                 outcome.message_row)
        return
    log.info(
        "ticket.%s ticket=%s spool=%d message=%s rule=%s queue=%s by=%s",
        "opened" if outcome.new_ticket else "appended", outcome.ticket_number, outcome.spool_id,
        outcome.message_row, outcome.rule or "-", q(outcome.queue or "-"), outcome.by,
    )


def reason(exc: BaseException) -> str:
    """One line for the log and the row: the exception's type and text, bounded."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


class Processor:
    """Processes spool entries; safe to run in several processes at once (claims inside the txn)."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.stopping = False  # the daemon is stopping: drain() ends after the message in hand
        # Whose leases on spool rows these are among daemons sharing the database ([storage] node).
        self.node, self.lease = node_name(config), lease_seconds(config)
        self.blobs = BlobStore(config.attachments_path)
        self._secret = config.secret_bytes()
        self._ruleset = rules.compile_rules(config)
        self._batch: Txn | None = None  # drain's open transaction while it runs a batch
        # Mails drain parsed (and whose files it wrote) before opening the batch, by spool id.
        self._read: dict[int, tuple[ParsedMail, str]] = {}

    def swap_config(self, config: Config) -> None:
        """Put a reloaded (already validated) config in force for the next messages.

        One synchronous step, so no message sees half of it; a message already being processed
        finishes with the rules it started with.
        """
        ruleset = rules.compile_rules(config)
        self.config, self._ruleset = config, ruleset
        self._secret = config.secret_bytes()

    async def read(self, entry: SpoolEntry) -> tuple[ParsedMail, str]:
        """The one parse of a mail and its attachment files: CPU and disk, never under the store's lock."""
        # A big one goes to a thread so SMTP sessions and IMAP fetchers on the loop keep their turn.
        if len(entry.raw) > INLINE_PARSE_LIMIT:
            mail = await asyncio.to_thread(parse, entry.raw)
        else:
            mail = parse(entry.raw)
        # Files first: content-addressed and idempotent, so a crash before commit leaves only an
        # unreferenced file, never a row pointing at nothing.
        for attachment in mail.attachments:
            if attachment.size > _LARGE_BLOB:
                await asyncio.to_thread(self.blobs.put, attachment.sha256, attachment.data)
            else:
                self.blobs.put(attachment.sha256, attachment.data)
        return mail, content_key(entry.raw)

    async def process(self, entry: SpoolEntry) -> Outcome:
        """One mail through STEPS in one transaction; parsing and attachment files come before it."""
        ready = self._read.pop(entry.id, None)
        mail, key = ready if ready is not None else await self.read(entry)
        config, ruleset, secret = self.config, self._ruleset, self._secret
        async with self._txn() as tx:
            context = MailContext(tx, config, ruleset, secret, notices.mailer_for(tx, config), entry, mail, key)
            for step in STEPS:
                outcome = await step(context)
                if outcome is not None:
                    return outcome
        raise RuntimeError("the last step of the pipeline returned no outcome")

    async def process_one_safely(self, entry: SpoolEntry) -> Outcome | None:
        """Process; on failure record it on the spool row (kept, retried, then dead)."""
        try:
            outcome = await self.process(entry)
        except (StoreUnavailable, TransientError) as exc:
            # The store itself is struggling: leave the row untouched and try later.
            log.warning("spool.process_deferred id=%s error=%s", entry.id, exc)
            raise
        except Exception as exc:  # a bug on one message must not stop the others
            log.exception("spool.process_failed id=%s", entry.id)
            state = await spool.fail(self.store, entry.id, f"{type(exc).__name__}: {exc}", MAX_ATTEMPTS)
            log.error("spool.marked id=%s state=%s", entry.id, state)
            return None
        log_outcome(outcome)
        return outcome

    @contextlib.asynccontextmanager
    async def _txn(self) -> AsyncIterator[Txn]:
        """One message's transaction: its own, or a savepoint inside drain's batch transaction.

        A failing message rolls back to its savepoint only; the others in the batch stay.
        In a batch the store's lock is already held: the steps use this tx and never open
        store.read()/store.txn() themselves (asyncio.Lock is not re-entrant: it would hang).
        """
        batch = self._batch
        if batch is None:
            async with self.store.txn(priority=Priority.PROCESSING) as tx:
                yield tx
            return
        async with savepoint(batch, "message") as tx:
            yield tx

    async def drain(self, batch: int = 4 * _BATCH_ROWS) -> int:
        """Process everything pending now that no other daemon holds; return how many rows were handled.

        Rows are leased before they are parsed (another daemon sharing the database skips them), a
        few batches at a time, so a second daemon finds work to share in a backlog.
        """
        handled = 0
        after = 0
        entries: list[SpoolEntry] = []
        try:
            while not self.stopping:
                entries = await spool.claim(self.store, self.node, self.lease, limit=batch, after=after)
                if not entries:
                    return handled
                i = 0
                while i < len(entries) and not self.stopping:
                    if i + 1 < len(entries) and len(entries[i].raw) <= INLINE_PARSE_LIMIT:
                        done = await self._process_batch(entries[i:])
                    else:  # a lone row, or a big one (parsed on a thread, so never inside a batch)
                        await self.process_one_safely(entries[i])
                        done = 1
                    handled += done
                    i += done
                    after = entries[i - 1].id
                    # The loop's turn for SMTP sessions between batches: their commits queue first.
                    await asyncio.sleep(0)
            return handled
        finally:
            self._read.clear()
            # Stopping: the rows leased and not processed are free for another daemon now, not after the lease.
            left = [entry.id for entry in entries if entry.id > after]
            if self.stopping and left:
                with contextlib.suppress(Exception):
                    await spool.release(self.store, self.node, left)

    async def _read_ahead(self, entries: list[SpoolEntry]) -> list[SpoolEntry]:
        """Parse the leading small rows of a batch before it takes the store's lock; return them.

        A mail that fails to parse is left unread: process() parses it again and records why.
        """
        chosen: list[SpoolEntry] = []
        for entry in entries:
            if len(chosen) >= _BATCH_ROWS or (chosen and len(entry.raw) > INLINE_PARSE_LIMIT) or self.stopping:
                break
            chosen.append(entry)
            if entry.id not in self._read:
                with contextlib.suppress(Exception):
                    self._read[entry.id] = await self.read(entry)
                await asyncio.sleep(0)  # one parse at a time between SMTP sessions' turns
        return chosen

    async def _process_batch(self, entries: list[SpoolEntry]) -> int:
        """Process leading small rows of entries in one transaction, a savepoint each; return how many.

        The batch ends after _BATCH_ROWS, _BATCH_SECONDS under the lock, or as soon as an intake
        commit waits for the store. Failures are recorded after the commit (spool.fail needs the
        store's lock the batch holds). A struggling store rolls the whole batch back: every row
        stays 'received' for a later try.
        """
        entries = await self._read_ahead(entries)
        failed: list[tuple[SpoolEntry, Exception]] = []
        outcomes: list[Outcome] = []
        count = 0
        async with self.store.txn(priority=Priority.PROCESSING) as tx:
            deadline = time.monotonic() + _BATCH_SECONDS
            self._batch = tx
            try:
                for entry in entries:
                    if count:
                        # Statements run inline and never yield: give SMTP sessions the loop so
                        # one that finished DATA can queue its commit, and then let it go first.
                        await asyncio.sleep(0)
                        if time.monotonic() > deadline or self.stopping or self.store.contended(Priority.PROCESSING):
                            break
                    count += 1
                    try:
                        outcomes.append(await self.process(entry))
                    except (StoreUnavailable, TransientError) as exc:
                        log.warning("spool.process_deferred id=%s error=%s", entry.id, exc)
                        raise
                    except Exception as exc:  # a bug on one message must not stop the others
                        log.exception("spool.process_failed id=%s", entry.id)
                        failed.append((entry, exc))
            finally:
                self._batch = None
        for outcome in outcomes:
            log_outcome(outcome)
        for entry, error in failed:
            state = await spool.fail(self.store, entry.id, f"{type(error).__name__}: {error}", MAX_ATTEMPTS)
            log.error("spool.marked id=%s state=%s", entry.id, state)
        return count
