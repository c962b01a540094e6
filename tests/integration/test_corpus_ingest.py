"""The whole corpus through spool → parse → thread → store: no message is lost or left dead."""

from __future__ import annotations

import pytest

from mailgate.models import Source
from mailgate.pipeline.process import Processor
from mailgate.sources import pipe
from mailgate.store import store_for

from .conftest import CORPUS

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = pytest.mark.engines


SKIP = {".json", ".yml", ".xml", ".md", ".out", ".html", ".bin", ".txt_decoded"}


def corpus_files() -> list[tuple[str, bytes]]:
    out = []
    for path in sorted(CORPUS.rglob("*")):
        if path.is_file() and path.suffix not in SKIP and "_decoded" not in path.name:
            out.append((str(path.relative_to(CORPUS)), path.read_bytes()))
    return out


@pytest.mark.asyncio
@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared/corpus is not beside the repository")
async def test_every_corpus_mail_becomes_a_stored_message(config) -> None:
    files = [(ref, raw) for ref, raw in corpus_files() if raw.strip()]
    async with store_for(config) as store:
        result = await pipe.store_messages(
            store, iter(files), mail_from="", rcpt_to=("support@example.test",), source=Source.IMPORT, imported=True
        )
        await Processor(config, store).drain()
        async with store.read() as tx:
            states = dict(await tx.all("SELECT state, COUNT(*) FROM spool GROUP BY state"))
            errors = await tx.all("SELECT source_ref, error FROM spool WHERE state != 'done' AND state != 'duplicate'")
            messages = await tx.value("SELECT COUNT(*) FROM messages")
            orphans = await tx.value(
                "SELECT COUNT(*) FROM attachments a LEFT JOIN blobs b ON b.sha256 = a.sha256 WHERE b.sha256 IS NULL"
            )
    assert result.stored + result.duplicates == len(files)
    assert not errors, [tuple(e) for e in errors[:5]]
    assert states.get("done", 0) == messages
    assert states.get("done", 0) + states.get("duplicate", 0) == result.stored
    assert orphans == 0
    # Attachments are on disk under their sha256 only, never under a sender's filename.
    blob_root = config.attachments_path
    names = [p.name for p in blob_root.rglob("*") if p.is_file()]
    assert names and all(len(n) == 64 and all(c in "0123456789abcdef" for c in n) for n in names)
