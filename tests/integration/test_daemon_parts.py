"""The daemon owns its parts: one clock everywhere, the mailer reached through the transaction, commits that wake the sender."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mailgate.clock import ManualClock
from mailgate.outgoing import outbox
from mailgate.outgoing.notices import Mailer, mailer_for
from mailgate.store import Store, open_store, timers
from mailgate.store import outbox as rows

from .conftest import MakeDaemon, mail, send, settle
from .sink import AGENTS, Sink, wait_mail

pytestmark = pytest.mark.asyncio


async def test_a_delayed_reply_goes_when_the_clock_is_moved(make_daemon: MakeDaemon, sink: Sink) -> None:
    clock = ManualClock()
    running = await make_daemon(AGENTS, clock=clock)
    await send(running.smtp_port, mail(subject="Printer on fire", message_id="<clock1@customer.test>"))
    await settle(running)
    await wait_mail(sink, "alice@customer.test", "Printer on fire")
    async with running.store.txn() as tx:
        reply_id = await outbox.queue_agent_reply(tx, running.mailer, 1, "aino", "An hour later.", delay=3600)
    assert running.outgoing is not None
    await running.outgoing.timers.reschedule()  # by the clock that has not moved: not due
    async with running.store.read() as tx:
        assert await rows.states(tx, [reply_id]) == {reply_id: "queued"}
    assert not any("An hour later." in r.text() for r in sink.to("alice@customer.test"))

    clock.advance(timedelta(hours=1, seconds=1))
    await running.outgoing.timers.reschedule()
    reply = await wait_mail(sink, "alice@customer.test", "Printer on fire", count=2)
    assert "An hour later." in reply.text()


async def test_the_mailer_is_the_daemons_own_and_follows_a_reload(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS)
    config = running.config
    async with running.store.txn() as tx:
        assert mailer_for(tx, running.config) is running.mailer
        other = config.model_copy()
        made = mailer_for(tx, other)  # not the daemon's config: a Mailer of its own
        assert made is not running.mailer and made.config is other
    # Without a daemon (the CLI's store), a Mailer is made for the call.
    store = await open_store(config)
    try:
        async with store.txn() as tx:
            assert isinstance(mailer_for(tx, config), Mailer)
    finally:
        await store.close()


async def test_a_commit_tells_the_stores_owner_what_it_queued(tmp_path: Path) -> None:
    heard: list[frozenset[str]] = []
    async with Store(tmp_path / "db.sqlite3") as store:
        store.on_commit = heard.append
        async with store.txn() as tx:
            await timers.add(tx, "test.kind", 1, tx.now() + timedelta(hours=1))
        async with store.txn():
            pass  # queued nothing: nobody is woken
        with pytest.raises(RuntimeError):
            async with store.txn() as tx:
                await timers.add(tx, "test.kind", 2, tx.now())
                raise RuntimeError("rolled back")
    assert heard == [frozenset({"timers"})]
