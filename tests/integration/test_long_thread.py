"""A ticket with thousands of messages: what outgoing mail reads of its thread is bounded, and its
References still name the first Message-ID and the newest ones, in order (RFC 5322 3.6.4)."""

from __future__ import annotations

import mailbox
import re
from pathlib import Path

import pytest

from mailgate.outgoing.notices import Mailer
from mailgate.store.ticket_facts import FIRST_MAILS, RECENT_IDS, facts

from .conftest import AGENTS, SUPPORT, MakeDaemon, cli_ok, mail, send, settle
from .sink import Sink, wait_mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

THREAD = 2000


def archive(path: Path) -> list[str]:
    """An mbox of one customer's long correspondence, each mail answering the one before; its Message-IDs."""
    box = mailbox.mbox(path)
    ids = [f"<long{i}@customer.test>" for i in range(THREAD)]
    for i, message_id in enumerate(ids):
        raw = mail(subject="Re: Printer on fire" if i else "Printer on fire", body=f"Still burning, day {i}.\n",
                   message_id=message_id, in_reply_to=ids[i - 1] if i else None)
        box.add(raw)
    box.flush()
    box.close()
    return ids


async def test_the_notice_on_a_2000_message_ticket_references_the_first_and_newest(
    make_daemon: MakeDaemon, sink: Sink, tmp_path: Path
) -> None:
    running = await make_daemon(AGENTS)
    ids = archive(tmp_path / "old.mbox")
    await cli_ok(running, "ingest", "--mbox", str(tmp_path / "old.mbox"), "--recipient", SUPPORT)
    live = "<live@customer.test>"
    await send(running.smtp_port, mail(subject="Re: Printer on fire", body="Now it smokes.\n",
                                       message_id=live, in_reply_to=ids[-1]))
    await settle(running)
    notice = await wait_mail(sink, "aino@agents.test", "Customer replied")
    thread = [*ids, live]
    assert notice.header("In-Reply-To") == live
    # Compose keeps the first and the 19 newest (the RFC's trimming); all of the ticket's mail is inbound here.
    assert re.findall(r"<[^>]+>", notice.header("References")) == [thread[0], *thread[-19:]]

    async with running.store.read() as tx:
        found = await facts(tx, 1)
        info = await running.mailer.ticket(tx, 1)
    assert isinstance(running.mailer, Mailer)
    assert found is not None and found.number == 1000
    assert len(found.references) == 1 + RECENT_IDS and len(found.written_to) == FIRST_MAILS
    assert found.references == tuple(m.strip("<>") for m in [thread[0], *thread[-RECENT_IDS:]])
    assert found.last_inbound == live.strip("<>")
    assert info.from_address == SUPPORT and info.queue is not None and info.queue.name == "support"
