"""The speed-ups of issue 2 change nothing visible: batched drain, flattened headers, spool semantics."""

from __future__ import annotations

import sqlite3
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import spool
from mailgate.config import Config
from mailgate.mail.mime import AS_WRITTEN, parse_bytes
from mailgate.models import Source
from mailgate.pipeline.process import MAX_ATTEMPTS, Processor
from mailgate.sources import pipe
from mailgate.store import Store, store_for

from .conftest import CORPUS, mail, write_config

pytestmark = pytest.mark.asyncio

POISON = "poison@customer.test"


async def spool_all(store: Store, mails: list[bytes]) -> None:
    await pipe.store_messages(
        store, iter([(str(i), m) for i, m in enumerate(mails)]),
        mail_from="", rcpt_to=("support@example.test",), source=Source.IMPORT, imported=True,
    )


def poison_messages(config: Config) -> None:
    """A real SQLite failure in the middle of one message's processing (after its ticket was opened)."""
    db = sqlite3.connect(str(config.database_path))
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.message_id = ?"
        " BEGIN SELECT RAISE(ABORT, 'poisoned message'); END".replace("?", f"'{POISON}'")
    )
    db.commit()
    db.close()


async def test_one_failing_message_in_a_batch_leaves_the_others(config: Config) -> None:
    mails = [mail(subject=f"case {i}", message_id=f"<{POISON if i == 2 else f'm{i}@customer.test'}>") for i in range(6)]
    async with store_for(config) as store:
        await spool_all(store, mails)
        poison_messages(config)
        processor = Processor(config, store)
        assert await processor.drain() == 6
        async with store.read() as tx:
            states = [tuple(r) for r in await tx.all("SELECT state, attempts FROM spool ORDER BY id")]
            subjects = [r[0] for r in await tx.all("SELECT subject FROM tickets ORDER BY id")]
            error = await tx.value("SELECT error FROM spool WHERE state = 'received'")
        assert states == [("done", 0), ("done", 0), ("received", 1), ("done", 0), ("done", 0), ("done", 0)]
        # The savepoint took the poisoned message's ticket with it; the others' tickets stayed.
        assert subjects == ["case 0", "case 1", "case 3", "case 4", "case 5"]
        assert "poisoned message" in error
        for _ in range(MAX_ATTEMPTS - 1):  # retried alone until dead, as before batching
            await processor.drain()
        async with store.read() as tx:
            assert await tx.value("SELECT state FROM spool WHERE error LIKE '%poisoned%'") == "dead"
            assert await tx.value("SELECT COUNT(*) FROM tickets") == 5


async def test_big_mails_are_processed_outside_batches(config: Config) -> None:
    big = mail(subject="big", body="line of a big mail\n" * 20_000, message_id="<big@customer.test>")
    mails = [mail(subject="a", message_id="<a@customer.test>"), big, mail(subject="b", message_id="<b@customer.test>")]
    async with store_for(config) as store:
        await spool_all(store, mails)
        assert await Processor(config, store).drain() == 3
        async with store.read() as tx:
            assert await tx.value("SELECT COUNT(*) FROM spool WHERE state = 'done'") == 3
            assert [r[0] for r in await tx.all("SELECT subject FROM tickets ORDER BY id")] == ["a", "big", "b"]


def corpus_sample(limit: int) -> list[bytes]:
    out = []
    for path in sorted(CORPUS.rglob("*.eml")):
        raw = path.read_bytes()
        if raw.strip() and len(raw) < 200_000:
            out.append(raw)
        if len(out) >= limit:
            break
    return out


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/corpus is not beside the repository")
async def test_batched_drain_stores_what_one_by_one_stores(tmp_path: Path) -> None:
    mails = corpus_sample(120)
    # Replies into the same store thread by Message-ID: a few copies answering the first mails.
    mails += [mail(subject="Re: x", in_reply_to=f"<m{i}@customer.test>", message_id=f"<r{i}@customer.test>") for i in range(3)]
    mails = [mail(subject=f"first {i}", message_id=f"<m{i}@customer.test>") for i in range(3)] + mails
    tables = []
    for batched in (True, False):
        folder = tmp_path / ("batched" if batched else "single")
        folder.mkdir()
        config = config_mod.load(write_config(folder))
        async with store_for(config) as store:
            await spool_all(store, mails)
            processor = Processor(config, store)
            if batched:
                await processor.drain()
            else:
                for entry in await spool.pending(store, limit=10_000):
                    await processor.process_one_safely(entry)
            async with store.read() as tx:
                tables.append((
                    [tuple(r) for r in await tx.all("SELECT id, state, message_row, attempts FROM spool ORDER BY id")],
                    [tuple(r) for r in await tx.all("SELECT id, number, subject, status, contact_id FROM tickets ORDER BY id")],
                    [tuple(r) for r in await tx.all(
                        "SELECT id, ticket_id, message_id, content_key, thread_rule, text, reply_text FROM messages ORDER BY id")],
                    [tuple(r) for r in await tx.all("SELECT message_id, ticket_id FROM message_ids ORDER BY message_id")],
                ))
    assert tables[0] == tables[1]
    assert len(tables[0][2]) > 100


HEADERS = [
    ("Subject", "short"),
    ("Subject", "trailing space "),
    ("Subject", "two trailing spaces  "),
    ("Subject", "a\ttab"),
    ("Subject", ""),
    ("Subject", "x" * 72),
    ("Subject", "x" * 73),
    ("Subject", "word " * 30),
    ("Received", "from a by b\r\n\twith ESMTP; Mon, 23 Nov 2026 10:00:00 +0000"),
    ("Subject", "caf\udcc3\udca9 latin"),
    ("X-Long-Name-Header-That-Is-Rather-Long", "value " * 8),
]


@pytest.mark.parametrize(("name", "value"), HEADERS)
async def test_flattened_headers_are_compat32s_bytes(name: str, value: str) -> None:
    assert AS_WRITTEN.fold_binary(name, value) == compat32.fold_binary(name, value)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/corpus is not beside the repository")
async def test_attached_messages_flatten_as_compat32_does() -> None:
    seen = 0
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        for part in parse_bytes(path.read_bytes()).walk():
            inner = part.get_payload()
            if part.get_content_maintype() == "multipart" or not isinstance(inner, list):
                continue
            for message in inner:
                if isinstance(message, Message):
                    seen += 1
                    assert message.as_bytes(unixfrom=False, policy=AS_WRITTEN) == message.as_bytes(unixfrom=False)
    assert seen > 100
