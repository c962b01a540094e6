"""Savepoints: a part of an open transaction that can fail and roll back alone while the rest commits."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator

from mailgate.store import StoreUnavailable, Txn


@contextlib.asynccontextmanager
async def savepoint(tx: Txn, name: str) -> AsyncIterator[Txn]:
    """Run the block as savepoint `name` of tx: an error rolls back the block only, then propagates.

    If even the rollback fails, the enclosing transaction can no longer be trusted: that is
    StoreUnavailable, so the caller rolls all of it back.
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
    await tx.execute(f"RELEASE {name}")


# The same three statements for callers whose undo decision is not an exception (a refused agent
# mail keeps the mail, not its commands).
async def begin(tx: Txn, name: str) -> None:
    await tx.execute(f"SAVEPOINT {name}")


async def rollback(tx: Txn, name: str) -> None:
    await tx.execute(f"ROLLBACK TO {name}")


async def release(tx: Txn, name: str) -> None:
    await tx.execute(f"RELEASE {name}")
