"""Durable intake: raw bytes and envelope committed once, before any source acknowledges."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.models import Envelope, Source
from mailgate.obs import q
from mailgate.store import Store, StoreUnavailable, Txn, now_iso

log = logging.getLogger("mailgate.spool")


@dataclass(frozen=True, slots=True)
class Accepted:
    spool_id: int
    duplicate: bool  # the very same bytes were already in the spool


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    id: int
    raw: bytes
    envelope: Envelope
    received_at: str
    attempts: int


async def accept(store: Store, raw: bytes, envelope: Envelope, *, wait: float | None = None) -> Accepted:
    """Store the raw message durably; return once it is committed.

    The same bytes again (a retried delivery, an IMAP re-read) add no row; their recipients are
    merged into the first one, so a mail sent to two support addresses in two transactions is
    kept once with both. wait: give up after this many seconds if the database is busy
    (StoreUnavailable), for a sender that retries.
    """
    digest = hashlib.sha256(raw).hexdigest()
    try:
        async with store.txn(wait=wait) as tx:
            return await accept_in(tx, raw, digest, envelope)
    except sqlite3.Error as exc:
        raise StoreUnavailable(str(exc)) from exc


async def accept_in(tx: Txn, raw: bytes, digest: str, envelope: Envelope) -> Accepted:
    existing = await tx.one("SELECT id, rcpt_to FROM spool WHERE sha256 = ? ORDER BY id LIMIT 1", (digest,))
    if existing is not None:
        known = json.loads(existing["rcpt_to"])
        added = [r for r in envelope.rcpt_to if r not in known]
        if added:
            await tx.execute(
                "UPDATE spool SET rcpt_to = ? WHERE id = ?", (json.dumps(known + added), existing["id"])
            )
        _stored(existing["id"], raw, envelope, duplicate=True)
        return Accepted(existing["id"], duplicate=True)
    spool_id = await tx.execute(
        "INSERT INTO spool (sha256, raw, mail_from, rcpt_to, source, source_ref, imported, received_at, peer)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            digest,
            raw,
            envelope.mail_from,
            json.dumps(list(envelope.rcpt_to)),
            str(envelope.source),
            envelope.source_ref,
            int(envelope.imported),
            now_iso(),
            envelope.peer,
        ),
    )
    _stored(spool_id, raw, envelope, duplicate=False)
    return Accepted(spool_id, duplicate=False)


def _stored(spool_id: int, raw: bytes, envelope: Envelope, *, duplicate: bool) -> None:
    """The line that ties a mail's arrival (SMTP peer, IMAP uid, pipe) to its spool id and, later, its ticket."""
    log.info(
        "spool.stored id=%d source=%s size=%d peer=%s rcpts=%d ref=%s duplicate=%s",
        spool_id, envelope.source, len(raw), envelope.peer or "-", len(envelope.rcpt_to),
        q(envelope.source_ref or "-"), duplicate,
    )


async def accept_many_in(tx: Txn, items: Sequence[tuple[bytes, str, Envelope]]) -> list[Accepted]:
    """accept_in for a batch of (raw, sha256, envelope) in one transaction, in few round trips.

    New bytes go in with one executemany; bytes already spooled (or twice in the batch) take
    accept_in's path, which merges their recipients.
    """
    digests = list({digest for _, digest, _ in items})
    known: set[str] = set()
    for start in range(0, len(digests), 500):
        chunk = digests[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = await tx.all(f"SELECT sha256 FROM spool WHERE sha256 IN ({marks})", chunk)
        known.update(r["sha256"] for r in rows)
    fresh: dict[str, tuple[bytes, Envelope]] = {}
    again: list[int] = []
    for i, (raw, digest, envelope) in enumerate(items):
        if digest in known or digest in fresh:
            again.append(i)
        else:
            fresh[digest] = (raw, envelope)
    now = now_iso()
    await tx.executemany(
        "INSERT INTO spool (sha256, raw, mail_from, rcpt_to, source, source_ref, imported, received_at, peer)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (digest, raw, e.mail_from, json.dumps(list(e.rcpt_to)), str(e.source), e.source_ref, int(e.imported), now,
             e.peer)
            for digest, (raw, e) in fresh.items()
        ],
    )
    ids: dict[str, int] = {}
    fresh_digests = list(fresh)
    for start in range(0, len(fresh_digests), 500):
        chunk = fresh_digests[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in await tx.all(f"SELECT id, sha256 FROM spool WHERE sha256 IN ({marks}) ORDER BY id", chunk):
            ids.setdefault(row["sha256"], row["id"])
    out: list[Accepted | None] = [None] * len(items)
    for i, (raw, digest, envelope) in enumerate(items):
        if i not in again:
            out[i] = Accepted(ids[digest], duplicate=False)
            _stored(ids[digest], raw, envelope, duplicate=False)
    for i in again:
        raw, digest, envelope = items[i]
        out[i] = await accept_in(tx, raw, digest, envelope)
    return [a for a in out if a is not None]


def _entry(row: sqlite3.Row) -> SpoolEntry:
    return SpoolEntry(
        id=row["id"],
        raw=bytes(row["raw"]),
        envelope=Envelope(
            mail_from=row["mail_from"],
            rcpt_to=tuple(json.loads(row["rcpt_to"])),
            source=Source(row["source"]),
            source_ref=row["source_ref"],
            imported=bool(row["imported"]),
            peer=row["peer"],
        ),
        received_at=row["received_at"],
        attempts=row["attempts"],
    )


_COLUMNS = "id, raw, mail_from, rcpt_to, source, source_ref, imported, received_at, attempts, peer"


async def pending(store: Store, limit: int = 100, after: int = 0) -> list[SpoolEntry]:
    """Received rows not yet turned into messages, oldest first."""
    async with store.read() as tx:
        rows = await tx.all(
            f"SELECT {_COLUMNS} FROM spool WHERE state = 'received' AND id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
    return [_entry(r) for r in rows]


async def get(tx: Txn, spool_id: int) -> SpoolEntry | None:
    row = await tx.one(f"SELECT {_COLUMNS} FROM spool WHERE id = ?", (spool_id,))
    return None if row is None else _entry(row)


async def fail(store: Store, spool_id: int, error: str, max_attempts: int) -> str:
    """Record a processing failure; after max_attempts the row is dead (kept, requeueable)."""
    async with store.txn() as tx:
        attempts = await tx.value("SELECT attempts FROM spool WHERE id = ?", (spool_id,)) or 0
        state = "dead" if attempts + 1 >= max_attempts else "received"
        await tx.execute(
            "UPDATE spool SET attempts = attempts + 1, error = ?, state = ? WHERE id = ?",
            (error[:2000], state, spool_id),
        )
    return state


async def requeue(store: Store, spool_ids: list[int] | None = None) -> int:
    """Put dead rows (or the given ones) back to be processed again.

    The error they died of moves to last_error and retries counts up: a row that dies again (or
    differently) after a fix must still tell the operator what happened the first time.
    """
    keep = (
        "UPDATE spool SET state = 'received', attempts = 0, last_error = COALESCE(error, last_error), error = NULL,"
        " retries = retries + 1, retried_at = ?"
    )
    async with store.txn() as tx:
        if spool_ids:
            count = 0
            for start in range(0, len(spool_ids), 500):  # under SQLite's limit of bound variables
                chunk = spool_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                count += await tx.rowcount(f"{keep} WHERE id IN ({marks}) AND state = 'dead'", (now_iso(), *chunk))
            return count
        return await tx.rowcount(f"{keep} WHERE state = 'dead'", (now_iso(),))


async def counts(store: Store) -> dict[str, int]:
    async with store.read() as tx:
        rows = await tx.all("SELECT state, COUNT(*) AS n FROM spool GROUP BY state")
    return {r["state"]: r["n"] for r in rows}
