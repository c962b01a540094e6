"""The spool table: every mail's wire bytes and envelope as they arrived, and how far processing got."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from mailgate.models import Envelope, Source
from mailgate.store import Row, Txn

# SQLite refuses more bound variables than this in one statement (SQLITE_MAX_VARIABLE_NUMBER
# was 999 before 3.32); lists of ids and digests go in chunks under it. States are written as
# literals in the statements: the partial index spool_pending (WHERE state = 'received') is only
# used when the query's own text implies it, never through a bound parameter.
CHUNK = 500

DEAD, RECEIVED = "dead", "received"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spooled mail waiting for (or past) processing."""

    id: int
    raw: bytes
    envelope: Envelope
    received_at: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Known:
    """The first row holding some bytes, with the recipients it has so far."""

    id: int
    rcpt_to: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Listed:
    """One line of `spool list`: the row, its size and the ticket its message went to."""

    id: int
    state: str
    source: str
    mail_from: str
    rcpt_to: list[str]
    peer: str | None
    size: int
    received_at: str
    attempts: int
    error: str | None
    last_error: str | None
    retries: int
    ticket: int | None
    claimed_by: str | None  # the daemon that took it (is processing it, or did)


@dataclass(frozen=True, slots=True)
class Detail:
    """Everything `spool show` tells of one row, the stored bytes included."""

    id: int
    sha256: str
    raw: bytes
    mail_from: str
    rcpt_to: list[str]
    source: str
    source_ref: str | None
    imported: bool
    received_at: str
    state: str
    attempts: int
    error: str | None
    message_row: int | None
    peer: str | None
    last_error: str | None
    retries: int
    retried_at: str | None
    ticket: int | None
    message_id: str | None


@dataclass(frozen=True, slots=True)
class Copied:
    """A row as replay copies it into a fresh database, id and arrival time kept."""

    id: int
    sha256: str
    raw: bytes
    envelope: Envelope
    received_at: str


_ENTRY = "id, raw, mail_from, rcpt_to, source, source_ref, imported, received_at, attempts, peer"
_INSERT = (
    "INSERT INTO spool (sha256, raw, mail_from, rcpt_to, source, source_ref, imported, received_at, peer)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _chunks(items: Sequence[_T]) -> Iterable[list[_T]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


def _marks(chunk: Sequence[object]) -> str:
    return ",".join("?" * len(chunk))


def _envelope(row: Row) -> Envelope:
    return Envelope(
        mail_from=row["mail_from"],
        rcpt_to=tuple(json.loads(row["rcpt_to"])),
        source=Source(row["source"]),
        source_ref=row["source_ref"],
        imported=bool(row["imported"]),
        peer=row["peer"],
    )


def _entry(row: Row) -> SpoolEntry:
    return SpoolEntry(int(row["id"]), bytes(row["raw"]), _envelope(row), row["received_at"], int(row["attempts"]))


def _values(digest: str, raw: bytes, e: Envelope, received_at: str) -> tuple[object, ...]:
    return (digest, raw, e.mail_from, json.dumps(list(e.rcpt_to)), str(e.source), e.source_ref, int(e.imported),
            received_at, e.peer)


# -- intake ---------------------------------------------------------------------------------------


async def first_with(tx: Txn, digest: str) -> Known | None:
    """The oldest row holding exactly these bytes."""
    row = await tx.one("SELECT id, rcpt_to FROM spool WHERE sha256 = ? ORDER BY id LIMIT 1", (digest,))
    return None if row is None else Known(int(row["id"]), tuple(json.loads(row["rcpt_to"])))


async def set_recipients(tx: Txn, spool_id: int, rcpt_to: Sequence[str]) -> None:
    await tx.execute("UPDATE spool SET rcpt_to = ? WHERE id = ?", (json.dumps(list(rcpt_to)), spool_id))


async def insert(tx: Txn, digest: str, raw: bytes, envelope: Envelope) -> int:
    """A new row, received now; returns its id."""
    return await tx.execute(_INSERT, _values(digest, raw, envelope, tx.now_iso()))


async def insert_many(tx: Txn, rows: Iterable[tuple[str, bytes, Envelope]]) -> None:
    """New rows of (sha256, raw, envelope) in one statement, all received now."""
    now = tx.now_iso()
    await tx.executemany(_INSERT, [_values(digest, raw, e, now) for digest, raw, e in rows])


async def known_digests(tx: Txn, digests: Sequence[str]) -> set[str]:
    """Which of these sha256 values some row already holds."""
    known: set[str] = set()
    for chunk in _chunks(digests):
        rows = await tx.all(f"SELECT sha256 FROM spool WHERE sha256 IN ({_marks(chunk)})", chunk)
        known.update(r["sha256"] for r in rows)
    return known


async def first_ids(tx: Txn, digests: Sequence[str]) -> dict[str, int]:
    """sha256 → the oldest row holding those bytes."""
    ids: dict[str, int] = {}
    for chunk in _chunks(digests):
        for row in await tx.all(f"SELECT id, sha256 FROM spool WHERE sha256 IN ({_marks(chunk)}) ORDER BY id", chunk):
            ids.setdefault(row["sha256"], int(row["id"]))
    return ids


# -- processing -----------------------------------------------------------------------------------


async def pending(tx: Txn, limit: int = 100, after: int = 0) -> list[SpoolEntry]:
    """Received rows not yet turned into messages, oldest first."""
    rows = await tx.all(
        f"SELECT {_ENTRY} FROM spool WHERE state = 'received' AND id > ? ORDER BY id LIMIT ?", (after, limit)
    )
    return [_entry(r) for r in rows]


# Rows a node may claim: unleased, the lease ran out (its daemon died), or its own (its previous
# life's, or a round of its own worker that the store interrupted).
_CLAIMABLE = "state = 'received' AND id > ? AND (lease_until IS NULL OR lease_until <= ? OR claimed_by = ?)"


async def any_claimable(tx: Txn, node: str, now: str, after: int = 0) -> bool:
    return bool(await tx.value(f"SELECT 1 FROM spool WHERE {_CLAIMABLE} LIMIT 1", (after, now, node)))


async def claim(tx: Txn, node: str, now: str, lease_until: str, limit: int, after: int = 0) -> list[SpoolEntry]:
    """Up to `limit` received rows after an id, oldest first, leased to `node` before anyone parses them.

    Another live daemon's rows are skipped (on PostgreSQL also rows its open claim has locked);
    processing still checks each row's state in its own transaction, the last line of defence.
    """
    lock = " FOR UPDATE SKIP LOCKED" if tx.engine == "postgresql" else ""
    rows = await tx.all(
        f"UPDATE spool SET claimed_by = ?, lease_until = ? WHERE id IN (SELECT id FROM spool WHERE {_CLAIMABLE}"
        f" ORDER BY id LIMIT ?{lock}) RETURNING {_ENTRY}",
        (node, lease_until, after, now, node, limit),
    )
    return sorted((_entry(r) for r in rows), key=lambda entry: entry.id)


async def release(tx: Txn, node: str, spool_ids: Sequence[int]) -> None:
    """This node's leases on rows it will not process now (it is stopping): free for any daemon at once."""
    for chunk in _chunks(spool_ids):
        await tx.execute(
            f"UPDATE spool SET lease_until = NULL WHERE state = 'received' AND claimed_by = ? AND id IN ({_marks(chunk)})",
            (node, *chunk),
        )


async def get(tx: Txn, spool_id: int) -> SpoolEntry | None:
    row = await tx.one(f"SELECT {_ENTRY} FROM spool WHERE id = ?", (spool_id,))
    return None if row is None else _entry(row)


async def state_of(tx: Txn, spool_id: int) -> str | None:
    value = await tx.value("SELECT state FROM spool WHERE id = ?", (spool_id,))
    return None if value is None else str(value)


async def mark_done(tx: Txn, spool_id: int, message_row: int | None) -> None:
    """Processed: the row points at the message it became (or the one an agent's mail made)."""
    await tx.execute(
        "UPDATE spool SET state = 'done', message_row = ?, error = NULL WHERE id = ?", (message_row, spool_id)
    )


async def mark_duplicate(tx: Txn, spool_id: int, message_row: int) -> None:
    """The same mail is stored already: the row points at that message."""
    await tx.execute("UPDATE spool SET state = 'duplicate', message_row = ? WHERE id = ?", (message_row, spool_id))


async def record_failure(tx: Txn, spool_id: int, error: str, max_attempts: int) -> str:
    """One more failed attempt; after max_attempts the row is dead (kept, requeueable). Returns the state."""
    attempts = int(await tx.value("SELECT attempts FROM spool WHERE id = ?", (spool_id,)) or 0)
    state = DEAD if attempts + 1 >= max_attempts else RECEIVED
    await tx.execute(
        "UPDATE spool SET attempts = attempts + 1, error = ?, state = ? WHERE id = ?", (error[:2000], state, spool_id)
    )
    return state


async def requeue(tx: Txn, spool_ids: Sequence[int] | None = None) -> int:
    """Dead rows (all, or those of the given ids) back to received; returns how many.

    The error they died of moves to last_error and retries counts up, so a row that dies again
    after a fix still tells the operator what happened the first time.
    """
    keep = (
        "UPDATE spool SET state = 'received', attempts = 0, last_error = COALESCE(error, last_error), error = NULL,"
        " retries = retries + 1, retried_at = ?, lease_until = NULL"
    )
    now = tx.now_iso()
    if not spool_ids:
        return await tx.rowcount(f"{keep} WHERE state = 'dead'", (now,))
    count = 0
    for chunk in _chunks(spool_ids):
        count += await tx.rowcount(
            f"{keep} WHERE id IN ({_marks(chunk)}) AND state = 'dead'", (now, *chunk)
        )
    return count


async def counts(tx: Txn) -> dict[str, int]:
    """Rows per state."""
    rows = await tx.all("SELECT state, COUNT(*) AS n FROM spool GROUP BY state")
    return {r["state"]: int(r["n"]) for r in rows}


# -- operators' views -----------------------------------------------------------------------------

_WITH_TICKET = " LEFT JOIN messages m ON m.id = s.message_row LEFT JOIN tickets t ON t.id = m.ticket_id"


async def listing(tx: Txn, state: str | None, limit: int) -> list[Listed]:
    """The newest rows, of one state, or with failed=every row that failed at least once."""
    where: str = ""
    params: tuple[object, ...] = ()
    if state == "failed":
        where = " WHERE s.error IS NOT NULL OR s.state = 'dead'"
    elif state is not None:
        where, params = " WHERE s.state = ?", (state,)
    rows = await tx.all(
        "SELECT s.id, s.state, s.source, s.mail_from, s.rcpt_to, s.peer, LENGTH(s.raw) AS size, s.received_at,"
        f" s.attempts, s.error, s.last_error, s.retries, t.number AS ticket, s.claimed_by FROM spool s{_WITH_TICKET}"
        f"{where} ORDER BY s.id DESC LIMIT ?",
        (*params, limit),
    )
    return [Listed(**{**dict(r), "rcpt_to": json.loads(r["rcpt_to"])}) for r in rows]


async def detail(tx: Txn, spool_id: int) -> Detail | None:
    row = await tx.one(
        "SELECT s.id, s.sha256, s.raw, s.mail_from, s.rcpt_to, s.source, s.source_ref, s.imported, s.received_at,"
        " s.state, s.attempts, s.error, s.message_row, s.peer, s.last_error, s.retries, s.retried_at,"
        f" t.number AS ticket, m.message_id FROM spool s{_WITH_TICKET} WHERE s.id = ?",
        (spool_id,),
    )
    if row is None:
        return None
    values = dict(row)
    values.update(raw=bytes(row["raw"]), rcpt_to=json.loads(row["rcpt_to"]), imported=bool(row["imported"]))
    return Detail(**values)


# -- replay ---------------------------------------------------------------------------------------


async def copies(tx: Txn, after: int, limit: int) -> list[Copied]:
    """Rows after an id in arrival order, as replay copies them."""
    rows = await tx.all(
        "SELECT id, sha256, raw, mail_from, rcpt_to, source, source_ref, imported, received_at, peer"
        " FROM spool WHERE id > ? ORDER BY id LIMIT ?",
        (after, limit),
    )
    return [Copied(int(r["id"]), r["sha256"], bytes(r["raw"]), _envelope(r), r["received_at"]) for r in rows]


async def insert_copies(tx: Txn, rows: Sequence[Copied]) -> None:
    """Rows copied from another database: the same ids and arrival times, not yet processed."""
    await tx.executemany(
        "INSERT INTO spool (id, sha256, raw, mail_from, rcpt_to, source, source_ref, imported, received_at, peer)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(c.id, *_values(c.sha256, c.raw, c.envelope, c.received_at)) for c in rows],
    )


# Processed mail whose bytes retention may drop: 'received' is not parsed yet and 'dead' waits for
# the operator (requeue, replay); the row and its sha256 stay (dedupe, message links).
AGED = "state IN ('done', 'duplicate') AND received_at < ? AND length(raw) > 0"


async def blank_aged(tx: Txn, cutoff: str, batch: int) -> int:
    """Drop the bytes of at most `batch` processed rows received before cutoff; how many were."""
    return await tx.rowcount(
        f"UPDATE spool SET raw = ? WHERE id IN (SELECT id FROM spool WHERE {AGED} LIMIT ?)", (b"", cutoff, batch))


async def blank_of_messages(tx: Txn, ids: Sequence[int]) -> int:
    """The wire bytes behind these messages hold everything their columns held: they go."""
    marks = ",".join("?" for _ in ids)
    return await tx.rowcount(
        f"UPDATE spool SET raw = ?, error = NULL WHERE message_row IN ({marks})"
        f" OR id IN (SELECT spool_id FROM messages WHERE id IN ({marks}))", [b"", *ids, *ids])


async def blank(tx: Txn, spool_id: int, mail_from: str, rcpt_to: str) -> None:
    await tx.execute("UPDATE spool SET raw = ?, error = NULL, mail_from = ?, rcpt_to = ? WHERE id = ?",
                     (b"", mail_from, rcpt_to, spool_id))


async def unlink_messages(tx: Txn, ids: Sequence[int]) -> None:
    """Rows parsed into these messages forget them (the messages are about to go)."""
    await tx.execute(f"UPDATE spool SET message_row = NULL WHERE message_row IN ({','.join('?' for _ in ids)})", ids)


async def delete_processed(tx: Txn, ids: Sequence[int]) -> None:
    """Delete these rows, but a dead one: that is the operator's to look at, never purged with its ticket."""
    if ids:
        await tx.execute(f"DELETE FROM spool WHERE state != 'dead' AND id IN ({','.join('?' for _ in ids)})", ids)
