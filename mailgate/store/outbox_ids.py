"""Outbox row ids known before the row is written: the VERP return path of a mail names its row."""

from __future__ import annotations

import weakref

from mailgate.store import Txn

# The next outbox id of each open transaction, once it has read it: BEGIN IMMEDIATE keeps every
# other writer out until COMMIT, so ids counted on from one read are this transaction's to take.
_next_ids: weakref.WeakKeyDictionary[Txn, int] = weakref.WeakKeyDictionary()


def seed(tx: Txn, seq: int | None) -> None:
    """AUTOINCREMENT's counter as a statement of this transaction read it anyway (the ticket's facts,
    read before every notice): the first reserve_id then needs no statement of its own."""
    if seq is not None and tx.engine == "sqlite" and tx not in _next_ids:
        _next_ids[tx] = int(seq) + 1


async def reserve_id(tx: Txn) -> int:
    """The id the next outbox row of this transaction takes, known before its mail is composed.

    The VERP return path names the row id; knowing it first lets the row go in whole, in one
    statement. AUTOINCREMENT's counter is read once per transaction (ids are never reused: an old
    bounce must not find a new row). A savepoint rolled back leaves a gap, never a reuse.
    """
    if tx.engine == "postgresql":
        # Several daemons write the outbox at once: the identity's sequence hands each its own ids
        # (one statement per row; a rolled-back one leaves a gap, never a reuse).
        return int(await tx.value("SELECT nextval(pg_get_serial_sequence('outbox', 'id'))"))
    taken = _next_ids.get(tx)
    if taken is None:
        seq = await tx.value("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)")
        taken = int(seq) + 1
    _next_ids[tx] = taken + 1
    return taken
