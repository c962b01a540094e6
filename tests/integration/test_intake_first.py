"""Intake never waits on processing: a spool commit goes before the rest of a processing batch."""

from __future__ import annotations

import asyncio
import smtplib
from hashlib import sha256

import pytest

from mailgate import spool
from mailgate.config import Config
from mailgate.models import Envelope, Source
from mailgate.pipeline.process import Processor
from mailgate.store import Priority, store_for

from .conftest import AGENTS, SUPPORT, MakeDaemon, mail, settle, wait_until
from .sink import Sink
from .test_perf_semantics import spool_all

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]


async def test_a_spool_commit_queued_during_a_batch_waits_for_one_message_not_the_batch(config: Config) -> None:
    backlog = [mail(subject=f"backlog {i}", message_id=f"<b{i}@customer.test>") for i in range(12)]
    async with store_for(config) as store:
        await spool_all(store, backlog)
        processor = Processor(config, store)
        seen: list[int] = []

        async def smtp_session() -> None:
            # spool.accept's commit after DATA, also noting what had been processed when it got its turn.
            raw = mail(subject="new", message_id="<new@customer.test>")
            async with store.txn(wait=5, priority=Priority.INTAKE) as tx:
                await spool.accept_in(tx, raw, sha256(raw).hexdigest(), Envelope("carol@customer.test", (SUPPORT,), Source.SMTP))
                seen.append(await tx.value("SELECT COUNT(*) FROM spool WHERE state = 'done'"))

        drain = asyncio.create_task(processor.drain())
        session: asyncio.Task[None] | None = None
        async with asyncio.timeout(20):  # a guard against a batch that never gives the loop back
            while session is None:
                await asyncio.sleep(0)
                if processor._batch is not None:  # the batch transaction is open: the session queues behind it
                    session = asyncio.create_task(smtp_session())
        await session
        assert await drain == 13
        # The batch ended at the first message boundary after the session queued: the one it saw
        # open and the one in hand at most (before: up to 32 messages or 5 ms of them, then a
        # FIFO turn behind the next batch). The session's own mail was processed in the same drain.
        assert seen[0] <= 2
        async with store.read() as tx:
            assert await tx.value("SELECT COUNT(*) FROM tickets") == 13


async def test_a_burst_from_concurrent_sessions_is_all_accepted_ticketed_and_acknowledged(
    make_daemon: MakeDaemon, sink: Sink
) -> None:
    """Several MTAs' sessions at once while processing and delivery run: the priorities starve nobody."""
    running = await make_daemon(AGENTS)
    sessions, per_session = 6, 8

    def session(n: int) -> list[str]:
        customers = [f"customer{n}-{i}@shop{n}.test" for i in range(per_session)]
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=30) as client:
            for i, customer in enumerate(customers):
                raw = mail(sender=customer, subject=f"Order {n}-{i} missing", message_id=f"<o{n}-{i}@shop{n}.test>")
                client.sendmail(customer, [SUPPORT], raw)  # raises unless 250
        return customers

    customers = [c for batch in await asyncio.gather(
        *(asyncio.to_thread(session, n) for n in range(sessions))) for c in batch]
    await settle(running)
    async with running.store.read() as tx:
        assert await tx.value("SELECT COUNT(*) FROM tickets") == sessions * per_session

    def acknowledged() -> bool:
        return {r for m in sink.received for r in m.rcpt_tos} >= set(customers)

    await wait_until(acknowledged, what="an acknowledgement to every customer")
