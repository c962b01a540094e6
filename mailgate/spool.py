"""Durable intake: raw bytes and envelope committed once, before any source acknowledges."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from mailgate.clock import iso
from mailgate.models import Envelope
from mailgate.obs import q
from mailgate.store import DatabaseError, Priority, Store, StoreUnavailable, Txn
from mailgate.store import spool as rows
from mailgate.store.spool import SpoolEntry

log = logging.getLogger("mailgate.spool")

__all__ = ["Accepted", "SpoolEntry", "accept", "accept_in", "accept_many_in", "claim", "counts", "fail", "get",
           "pending", "release", "requeue"]


@dataclass(frozen=True, slots=True)
class Accepted:
    spool_id: int
    duplicate: bool  # the very same bytes were already in the spool


async def accept(store: Store, raw: bytes, envelope: Envelope, *, wait: float | None = None) -> Accepted:
    """Store the raw message durably; return once it is committed.

    The same bytes again (a retried delivery, an IMAP re-read) add no row; their recipients are
    merged into the first one, so a mail sent to two support addresses in two transactions is
    kept once with both. wait: give up after this many seconds if the database is busy
    (StoreUnavailable), for a sender that retries. It goes before processing and delivery at the
    store: the sender is waiting for the reply to its DATA.
    """
    digest = hashlib.sha256(raw).hexdigest()
    try:
        async with store.txn(wait=wait, priority=Priority.INTAKE) as tx:
            return await accept_in(tx, raw, digest, envelope)
    except DatabaseError as exc:
        raise StoreUnavailable(str(exc)) from exc


async def accept_in(tx: Txn, raw: bytes, digest: str, envelope: Envelope) -> Accepted:
    """accept inside the caller's transaction (a pipe's or an IMAP batch's)."""
    existing = await rows.first_with(tx, digest)
    if existing is not None:
        added = [r for r in envelope.rcpt_to if r not in existing.rcpt_to]
        if added:
            await rows.set_recipients(tx, existing.id, [*existing.rcpt_to, *added])
        _stored(existing.id, raw, envelope, duplicate=True)
        return Accepted(existing.id, duplicate=True)
    spool_id = await rows.insert(tx, digest, raw, envelope)
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
    known = await rows.known_digests(tx, list({digest for _, digest, _ in items}))
    fresh: dict[str, tuple[bytes, Envelope]] = {}
    again: list[int] = []
    for i, (raw, digest, envelope) in enumerate(items):
        if digest in known or digest in fresh:
            again.append(i)
        else:
            fresh[digest] = (raw, envelope)
    await rows.insert_many(tx, [(digest, raw, e) for digest, (raw, e) in fresh.items()])
    ids = await rows.first_ids(tx, list(fresh))
    out: list[Accepted | None] = [None] * len(items)
    for i, (raw, digest, envelope) in enumerate(items):
        if i not in again:
            out[i] = Accepted(ids[digest], duplicate=False)
            _stored(ids[digest], raw, envelope, duplicate=False)
    for i in again:
        raw, digest, envelope = items[i]
        out[i] = await accept_in(tx, raw, digest, envelope)
    return [a for a in out if a is not None]


async def pending(store: Store, limit: int = 100, after: int = 0) -> list[SpoolEntry]:
    """Received rows not yet turned into messages, oldest first."""
    async with store.read() as tx:
        return await rows.pending(tx, limit, after)


async def claim(store: Store, node: str, lease: float, limit: int, after: int = 0) -> list[SpoolEntry]:
    """Received rows after an id that no other live daemon holds, leased to `node` for `lease` seconds.

    A look first, without the write lock: an idle worker's poll must not contend with intake.
    """
    async with store.read() as tx:
        if not await rows.any_claimable(tx, node, tx.now_iso(), after):
            return []
    async with store.txn(priority=Priority.PROCESSING) as tx:
        now = tx.now()
        return await rows.claim(tx, node, iso(now), iso(now + timedelta(seconds=lease)), limit, after)


async def release(store: Store, node: str, spool_ids: Sequence[int]) -> None:
    """Leases on rows this node will not process now (it is stopping): another daemon may take them at once."""
    if spool_ids:
        async with store.txn() as tx:
            await rows.release(tx, node, spool_ids)


async def get(tx: Txn, spool_id: int) -> SpoolEntry | None:
    return await rows.get(tx, spool_id)


async def fail(store: Store, spool_id: int, error: str, max_attempts: int) -> str:
    """Record a processing failure; after max_attempts the row is dead (kept, requeueable)."""
    async with store.txn() as tx:
        return await rows.record_failure(tx, spool_id, error, max_attempts)


async def requeue(store: Store, spool_ids: list[int] | None = None) -> int:
    """Put dead rows (or the given ones) back to be processed again, keeping why they died."""
    async with store.txn() as tx:
        return await rows.requeue(tx, spool_ids)


async def counts(store: Store) -> dict[str, int]:
    async with store.read() as tx:
        return await rows.counts(tx)
