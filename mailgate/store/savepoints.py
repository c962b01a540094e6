"""Savepoints: a part of an open transaction that can fail and roll back alone while the rest commits."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator

from mailgate.store import StoreUnavailable, Txn


@contextlib.asynccontextmanager
async def savepoint(tx: Txn, name: str) -> AsyncIterator[Txn]:
    """Run the block as savepoint `name` of tx: an error rolls back the block only, then propagates.

    A block that succeeds leaves its savepoint open: its work is the enclosing transaction's
    either way, COMMIT releases every open savepoint, and a RELEASE per block (a batch runs one
    per mail) would be a statement that changes nothing. Savepoints nest, and ROLLBACK TO finds
    the newest of a name (sqlite.org/lang_savepoint.html), so a later block that fails still
    undoes only its own work. If even the rollback fails, the enclosing transaction can no
    longer be trusted: that is StoreUnavailable, so the caller rolls all of it back.
    """
    if not name.isidentifier():
        raise ValueError(f"not a savepoint name: {name!r}")
    await tx.execute(f"SAVEPOINT {name}")
    try:
        yield tx
    except BaseException:
        try:
            await tx.execute(f"ROLLBACK TO {name}")
            await tx.execute(f"RELEASE {name}")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot roll back savepoint {name}: {exc}") from exc
        raise


# The same three statements for callers whose undo decision is not an exception (a refused agent
# mail keeps the mail, not its commands).
async def begin(tx: Txn, name: str) -> None:
    await tx.execute(f"SAVEPOINT {name}")


async def rollback(tx: Txn, name: str) -> None:
    await tx.execute(f"ROLLBACK TO {name}")


async def release(tx: Txn, name: str) -> None:
    await tx.execute(f"RELEASE {name}")
