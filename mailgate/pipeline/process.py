"""Turn spooled raw mail into ticket messages: parse once, thread, store in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from mailgate import rules, spool, tokens
from mailgate.config import Config
from mailgate.mail.parse import content_key, parse
from mailgate.mail.subjects import clean_subject
from mailgate.models import Correlation, MailKind, ParsedMail, ThreadRule
from mailgate.obs import q
from mailgate.ops import assign, lifecycle, parties, tickets, watchers
from mailgate.outgoing import guard as loops
from mailgate.outgoing import notices as outbound
from mailgate.pipeline import agent_mail
from mailgate.pipeline import thread as correlate
from mailgate.spool import SpoolEntry
from mailgate.store import Store, StoreUnavailable, Txn
from mailgate.store.blobs import BlobStore

log = logging.getLogger("mailgate.process")

MAX_ATTEMPTS = 5
_INLINE_PARSE_LIMIT = 256 * 1024
# A backlog is processed several rows per transaction: each BEGIN/COMMIT is a hop to the store's
# thread that cost about as much as the statements of a whole message. The batch holds the
# store's lock, so it is bounded in rows and time: an SMTP session's spool commit waits for it.
_BATCH_ROWS = 32
_BATCH_SECONDS = 0.005
# After this many failed rounds in a row the worker looks for one message that fails on its own,
# trying up to _ISOLATE_ROWS pending rows one at a time.
_SUSPECT_AFTER = 3
_ISOLATE_ROWS = 50


@dataclass(frozen=True, slots=True)
class Outcome:
    spool_id: int
    state: str  # done | duplicate | skipped (already handled elsewhere)
    ticket_number: int | None = None
    message_row: int | None = None
    rule: ThreadRule | None = None
    new_ticket: bool = False
    queue: str | None = None
    by: str = "customer"  # customer | agent: whose mail it was (an agent's is a command, reply or note)


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


def _storm_key(mail: ParsedMail, entry: SpoolEntry) -> str:
    """Whose hourly count a mail goes to: its From, else its envelope sender, else '<>' (mail from nobody)."""
    if mail.from_ and mail.from_[0].address:
        return mail.from_[0].address.strip().lower()
    return entry.envelope.mail_from.strip().strip("<>").lower() or "<>"


class Processor:
    """Processes spool entries; safe to run in several processes at once (claims inside the txn)."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.stopping = False  # the daemon is stopping: drain() ends after the message in hand
        self.blobs = BlobStore(config.attachments_path)
        self._secret = config.secret_bytes()
        self._ruleset = rules.compile_rules(config)
        self._batch: Txn | None = None  # drain's open transaction while it runs a batch

    def swap_config(self, config: Config) -> None:
        """Put a reloaded (already validated) config in force for the next messages.

        One synchronous step, so no message sees half of it; a message already being processed
        finishes with the rules it started with.
        """
        ruleset = rules.compile_rules(config)
        self.config, self._ruleset = config, ruleset
        self._secret = config.secret_bytes()

    async def process(self, entry: SpoolEntry) -> Outcome:
        # The one parse of this message: CPU only, outside the transaction. A big one goes to a
        # thread so SMTP sessions and IMAP fetchers on the loop keep their turn meanwhile.
        if len(entry.raw) > _INLINE_PARSE_LIMIT:
            mail = await asyncio.to_thread(parse, entry.raw)
        else:
            mail = parse(entry.raw)
        key = content_key(entry.raw)
        # Blobs first: content-addressed and idempotent, so a crash before commit leaves only an
        # unreferenced file, never a row pointing at nothing.
        for attachment in mail.attachments:
            if attachment.size > 1 << 20:  # large writes off the loop, so SMTP stays responsive
                await asyncio.to_thread(self.blobs.put, attachment.sha256, attachment.data)
            else:
                self.blobs.put(attachment.sha256, attachment.data)
        async with self._txn() as tx:
            state = await tx.value("SELECT state FROM spool WHERE id = ?", (entry.id,))
            if state != "received":
                return Outcome(entry.id, "skipped")
            duplicate = await tx.one(
                "SELECT m.id, t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                " WHERE m.message_id = ? AND m.content_key = ?",
                (mail.message_id, key),
            )
            if duplicate is not None:
                await tx.execute(
                    "UPDATE spool SET state = 'duplicate', message_row = ? WHERE id = ?",
                    (duplicate["id"], entry.id),
                )
                return Outcome(entry.id, "duplicate", duplicate["number"], duplicate["id"])
            found = await correlate.find(
                tx, mail, entry.envelope.rcpt_to, secret=self._secret, tag_prefix=self.config.gateway.ticket_tag,
                config=self.config,
            )
            mailer = outbound.mailer_for(tx, self.config)  # outgoing mail (issue 4)
            found = await mailer.rethread_bounce(tx, mail, entry.envelope.rcpt_to, found)
            # --- issue 6: a proven agent's mail is handled (commands, reply, note) in agent_mail ---
            agent = await agent_mail.dispatch(tx, self.config, mail, entry, key, found)
            if agent.handled:
                await tx.execute(
                    "UPDATE spool SET state = 'done', message_row = ?, error = NULL WHERE id = ?",
                    (agent.message_row, entry.id),
                )
                queue = await tx.value("SELECT queue FROM tickets WHERE number = ?", (agent.ticket_number,))
                return Outcome(entry.id, "done", agent.ticket_number, agent.message_row, agent.found.rule,
                               queue=queue, by="agent")
            found = agent.found  # mail to an agent's token address threads by it, whoever sent it
            # --- end issue 6 ---
            sender = mail.from_[0] if mail.from_ else None
            actor = f"customer:{sender.address.lower()}" if sender else "system"
            # Ticket life (issue 7): a customer reply wakes a waiting ticket, reopens a resolved one,
            # or (closed, or resolved long ago) becomes a new ticket linked to the old (`follows`).
            if found.ticket_id is not None and not await parties.speaks_for(
                tx, found.ticket_id, sender.address if sender else ""
            ):
                # A stranger threaded in by a Message-ID anyone in the thread holds: the mail is kept
                # on the ticket (and the agents told), but it wakes, reopens or follows up nothing.
                follows = None
            else:
                found, follows = await lifecycle.customer_reply(
                    tx, self.config, found, mail, actor=actor, imported=entry.envelope.imported
                )
            # Storm fuse: past the per-sender cap the mail is kept on the sender's latest ticket, and
            # nobody is told (one summary to the agents, once an hour), so a flood cannot become a
            # flood of tickets, notifications and acknowledgements.
            admission = await self._admit(tx, mail, entry)
            held = admission is not None and admission.held
            if held and admission is not None and found.ticket_id is None:
                latest = await tickets.latest_requested_by(tx, sender.address) if sender and sender.address else None
                latest = latest or admission.ticket_id  # no From: where this hour's held mail already went
                if latest is not None:
                    found = Correlation(latest, ThreadRule.NEW, "held: over the sender's hourly mail cap")
            new_ticket = found.ticket_id is None
            if found.ticket_id is None:
                contact_id = await tickets.contact_for(tx, sender) if sender and sender.address else None
                ref = await tickets.open_ticket(
                    tx,
                    subject=clean_subject(mail.subject, self.config.gateway.ticket_tag),
                    contact_id=contact_id,
                    first_number=self.config.gateway.first_ticket_number,
                    actor=actor,
                )
                ticket_id, number = ref.id, ref.number
                if sender and sender.address:
                    await tickets.add_party(tx, ticket_id, sender.address, "requester")
                # Routing (issue 5): rules decide queue, priority, tags, assignee; the trace is kept.
                ruleset = self._ruleset
                routing = rules.route(ruleset, mail, entry.envelope.rcpt_to)
                await assign.apply(tx, ruleset.config, ticket_id, routing)
                await lifecycle.opened(tx, ruleset.config, ticket_id, follows=follows, actor=actor)  # SLA, link (issue 7)
                if held:  # a first mail of this sender already over the cap: hidden like a quarantined one
                    await tx.execute("UPDATE tickets SET quarantined = 1, ack_suppressed = 1 WHERE id = ?", (ticket_id,))
            else:
                ticket_id = found.ticket_id
                number = int(await tx.value("SELECT number FROM tickets WHERE id = ?", (ticket_id,)))
            # Who this mail makes a party: its Cc people (capped) when a party wrote it; a sender who
            # is none yet (threaded by a Message-ID anyone could hold) waits for an agent's [cc:add].
            joined = await parties.join(tx, self.config, ticket_id, mail, new_ticket=new_ticket)
            message_row = await tickets.add_inbound_message(
                tx,
                ticket_id,
                mail,
                spool_id=entry.id,
                content_key=key,
                imported=entry.envelope.imported,
                rule=found.rule,
                detail=found.detail,
                actor=actor,
            )
            if held and admission is not None:
                await self._held(tx, mailer, ticket_id, number, mail, entry, admission)
            else:
                if mail.kind is not MailKind.BOUNCE:
                    await watchers.customer_wrote(tx, ticket_id)  # unread again for every agent
                # Outgoing mail (issue 4): ack, notifications, bounce handling, in this same transaction.
                await mailer.after_inbound(tx, ticket_id=ticket_id, mail=mail, envelope=entry.envelope, new_ticket=new_ticket,
                                           joined=joined)
                if agent.unproven:  # an agent's From without proof: stored as an outside party's; agent told
                    await agent_mail.tell_unproven(tx, self.config, agent, ticket_id, mail,
                                                   imported=entry.envelope.imported, opened=new_ticket)
            await tx.execute(
                "UPDATE spool SET state = 'done', message_row = ?, error = NULL WHERE id = ?",
                (message_row, entry.id),
            )
            queue = await tx.value("SELECT queue FROM tickets WHERE id = ?", (ticket_id,))
        return Outcome(entry.id, "done", number, message_row, found.rule, new_ticket, queue=queue)

    async def _admit(self, tx: Txn, mail: ParsedMail, entry: SpoolEntry) -> loops.Admission | None:
        """Count this mail against its sender's hourly cap; None when the fuse does not apply.

        Imported archives are old mail that tells nobody anyway: one customer's mbox is not a storm.
        Bounces tell nobody either, and each must still mark its outgoing mail failed.
        """
        if entry.envelope.imported or mail.kind is MailKind.BOUNCE:
            return None
        return await loops.admit(tx, _storm_key(mail, entry), self.config.storms.sender_mails_per_hour)

    async def _held(
        self, tx: Txn, mailer: outbound.Mailer, ticket_id: int, number: int, mail: ParsedMail, entry: SpoolEntry,
        admission: loops.Admission,
    ) -> None:
        """Held mail: stored, nobody told; the first of a sender's hour is logged and summarised to the agents."""
        sender = _storm_key(mail, entry)
        await tx.execute(
            "UPDATE sender_hours SET ticket_id = ? WHERE sender = ? AND hour = ?", (ticket_id, sender, admission.hour)
        )
        if not admission.first_held:
            return
        cap = self.config.storms.sender_mails_per_hour
        log.warning("storm.sender_capped sender=%s cap=%s ticket=%s", sender, cap, number)
        await tickets.event(tx, ticket_id, "system", "storm.held", {"sender": sender, "cap": cap})
        info = await mailer.ticket(tx, ticket_id)
        shown_name = mail.from_[0].name if mail.from_ else ""
        for agent in await mailer.recipients(tx, info):
            await mailer.queue_mail(
                tx, info, kind="notify", template="storm_held", to_name=agent.name, to_address=agent.addresses[0],
                language=mailer.agent_language(info, agent), auto_kind="auto-generated",
                # Answering the notice adds a note: it must never mail the flooding sender.
                reply_token=tokens.Token(tokens.AGENT_NOTE, info.number, agent.id),
                data=mailer.data(info, agent_name=agent.name, agent_id=agent.id,
                                 message_text=mail.reply_text or mail.text,
                                 message_from=f"{shown_name} <{sender}>" if shown_name else sender),
            )

    async def process_one_safely(self, entry: SpoolEntry) -> Outcome | None:
        """Process; on failure record it on the spool row (kept, retried, then dead)."""
        try:
            outcome = await self.process(entry)
        except (StoreUnavailable, sqlite3.OperationalError) as exc:
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
        In a batch the store's lock is already held: code in process() must use this tx and never
        open store.read()/store.txn() itself (asyncio.Lock is not re-entrant: it would hang).
        """
        batch = self._batch
        if batch is None:
            async with self.store.txn() as tx:
                yield tx
            return
        await batch.execute("SAVEPOINT message")
        try:
            yield batch
        except BaseException:
            try:
                await batch.execute("ROLLBACK TO message")
                await batch.execute("RELEASE message")
            except sqlite3.Error as exc:  # the batch can no longer be trusted: all of it goes back
                raise StoreUnavailable(f"cannot roll back one message: {exc}") from exc
            raise
        await batch.execute("RELEASE message")

    async def drain(self, batch: int = 200) -> int:
        """Process everything pending now; return how many rows were handled."""
        handled = 0
        after = 0
        while not self.stopping:
            entries = await spool.pending(self.store, limit=batch, after=after)
            if not entries:
                return handled
            i = 0
            while i < len(entries) and not self.stopping:
                if i + 1 < len(entries) and len(entries[i].raw) <= _INLINE_PARSE_LIMIT:
                    done = await self._process_batch(entries[i:])
                else:  # a lone row, or a big one (parsed on a thread, so never inside a batch)
                    await self.process_one_safely(entries[i])
                    done = 1
                handled += done
                i += done
                after = entries[i - 1].id
        return handled

    async def _process_batch(self, entries: list[SpoolEntry]) -> int:
        """Process leading small rows of entries in one transaction, a savepoint each; return how many.

        Failures are recorded after the commit (spool.fail needs the store's lock the batch holds).
        A struggling store rolls the whole batch back: every row stays 'received' for a later try.
        """
        failed: list[tuple[SpoolEntry, Exception]] = []
        outcomes: list[Outcome] = []
        count = 0
        deadline = time.monotonic() + _BATCH_SECONDS
        async with self.store.txn() as tx:
            self._batch = tx
            try:
                for entry in entries:
                    if count and (count >= _BATCH_ROWS or len(entry.raw) > _INLINE_PARSE_LIMIT
                                  or time.monotonic() > deadline or self.stopping):
                        break
                    count += 1
                    try:
                        outcomes.append(await self.process(entry))
                    except (StoreUnavailable, sqlite3.OperationalError) as exc:
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
                store = isinstance(exc, (StoreUnavailable, sqlite3.OperationalError))
                log.warning("worker.%s error=%s retry_in=%.0fs", "store_unavailable" if store else "drain_failed",
                            _reason(exc), backoff)
                self.failures += 1
                failed_rounds += 1
                # Once suspected, every failed round isolates again (without the pause) until a
                # drain succeeds: a poisoned row reaches its dead state in MAX_ATTEMPTS rounds.
                if failed_rounds >= _SUSPECT_AFTER and await self._isolate():
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
            entries = await spool.pending(store, limit=_ISOLATE_ROWS)
        except Exception as exc:
            log.warning("worker.isolate_failed error=%s", _reason(exc))
            return False
        for entry in entries:
            try:
                log_outcome(await self.processor.process(entry))
                continue
            except Exception as exc:
                error = exc
            try:
                async with store.txn() as tx:  # the store itself: can it write at all now?
                    await tx.value("SELECT 1")
                state = await spool.fail(store, entry.id, _reason(error), MAX_ATTEMPTS)
            except Exception as exc:
                log.warning("worker.isolate_failed error=%s", _reason(exc))
                return False
            log.error("spool.process_failed id=%s state=%s error=%s (isolated)", entry.id, state, _reason(error))
            return True
        return bool(entries)  # all went through one at a time; with none pending, pause as usual


def _reason(exc: BaseException) -> str:
    """One line for the log and the row: the exception's type and text, bounded."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
