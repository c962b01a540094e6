"""The intake pipeline as named steps, and the spool, IMAP and savepoint store functions under it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from mailgate import spool
from mailgate.clock import ManualClock, iso
from mailgate.config import Config
from mailgate.models import Envelope, Source
from mailgate.pipeline.process import Processor
from mailgate.pipeline.steps import STEPS
from mailgate.sources import imap_state
from mailgate.store import imap as imap_rows
from mailgate.store import spool as spool_rows
from mailgate.store import store_for
from mailgate.store.savepoints import savepoint

from .conftest import SUPPORT, mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def envelope(sender: str = "alice@customer.test") -> Envelope:
    return Envelope(mail_from=sender, rcpt_to=(SUPPORT,), source=Source.SMTP, peer="127.0.0.1")


async def test_the_flow_of_one_mail_reads_as_its_list_of_steps() -> None:
    assert [step.__name__ for step in STEPS] == [
        "claim", "dedupe", "thread", "bounce", "agent",
        "reopen", "storm_fuse", "open_or_append", "join_parties", "store_message", "notify", "finish",
    ]


async def test_a_row_handled_meanwhile_is_skipped_and_a_second_copy_is_a_duplicate(config: Config) -> None:
    first = mail(message_id="<twice@customer.test>")
    # The same mail by a second route: other trace headers, the same Message-ID and body.
    second = b"Received: from relay.customer.test\r\n" + first
    async with store_for(config) as store:
        accepted = await spool.accept(store, first, envelope())
        processor = Processor(config, store)
        async with store.read() as tx:
            entry = await spool.get(tx, accepted.spool_id)
        assert entry is not None
        done = await processor.process(entry)
        assert done.state == "done" and done.new_ticket and done.ticket_number is not None
        again = await processor.process(entry)  # another process got there first
        assert (again.state, again.ticket_number) == ("skipped", None)

        copy = await spool.accept(store, second, envelope())
        assert not copy.duplicate  # other bytes: a new spool row
        async with store.read() as tx:
            copied = await spool.get(tx, copy.spool_id)
        assert copied is not None
        duplicate = await processor.process(copied)
        assert duplicate.state == "duplicate"
        assert (duplicate.ticket_number, duplicate.message_row) == (done.ticket_number, done.message_row)
        async with store.read() as tx:
            assert await spool_rows.state_of(tx, copy.spool_id) == "duplicate"
            assert await spool_rows.counts(tx) == {"done": 1, "duplicate": 1}


async def test_spool_times_come_from_the_store_clock(config: Config) -> None:
    clock = ManualClock(START)
    async with store_for(config, clock) as store:
        accepted = await spool.accept(store, mail(message_id="<clock@customer.test>"), envelope())
        assert await spool.fail(store, accepted.spool_id, "RuntimeError: once", max_attempts=1) == "dead"
        clock.advance(timedelta(hours=2))
        assert await spool.requeue(store, [accepted.spool_id]) == 1
        async with store.read() as tx:
            row = await spool_rows.detail(tx, accepted.spool_id)
        assert row is not None
        assert (row.received_at, row.retried_at) == (iso(START), iso(START + timedelta(hours=2)))
        assert (row.state, row.error, row.last_error, row.retries) == ("received", None, "RuntimeError: once", 1)
        assert row.rcpt_to == [SUPPORT] and row.peer == "127.0.0.1" and row.ticket is None


async def test_the_same_bytes_twice_keep_one_row_with_both_recipients(config: Config) -> None:
    raw = mail(message_id="<both@customer.test>")
    other = Envelope(mail_from="alice@customer.test", rcpt_to=("help@example.test",), source=Source.SMTP)
    async with store_for(config) as store:
        first = await spool.accept(store, raw, envelope())
        async with store.txn() as tx:
            many = await spool.accept_many_in(tx, [(raw, hashlib.sha256(raw).hexdigest(), other)])
        assert [(a.spool_id, a.duplicate) for a in many] == [(first.spool_id, True)]
        async with store.read() as tx:
            entry = await spool.get(tx, first.spool_id)
        assert entry is not None and entry.envelope.rcpt_to == (SUPPORT, "help@example.test")


async def test_an_imap_account_says_when_it_tries_again_by_the_store_clock(config: Config) -> None:
    async with store_for(config, ManualClock(START)) as store:
        await imap_state.save_state(store, "inbox", "backoff", "connection refused", retry_in=90)
        async with store.read() as tx:
            state = await imap_rows.account_state(tx, "inbox")
        assert state is not None
        assert (state.state, state.last_error, state.last_error_at) == ("backoff", "connection refused", iso(START))
        assert state.next_try_at == "2026-11-23T10:01:30Z"
        await imap_state.save_state(store, "inbox", "idle")
        async with store.read() as tx:
            state = await imap_rows.account_state(tx, "inbox")
        assert state is not None and state.next_try_at is None and state.last_ok_at == iso(START)


async def test_a_failing_savepoint_rolls_back_alone(config: Config) -> None:
    async with store_for(config) as store:
        async with store.txn() as tx:
            kept = await spool_rows.insert(tx, "a" * 64, b"kept", envelope())
            with pytest.raises(RuntimeError):
                async with savepoint(tx, "one"):
                    await spool_rows.insert(tx, "b" * 64, b"dropped", envelope())
                    raise RuntimeError("this part fails")
        async with store.read() as tx:
            assert [e.id for e in await spool_rows.pending(tx)] == [kept]
