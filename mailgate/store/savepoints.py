"""Savepoints: part of a transaction undone on its own (a refused agent mail keeps the mail, not its commands)."""

from __future__ import annotations

from mailgate.store import Txn


async def begin(tx: Txn, name: str) -> None:
    await tx.execute(f"SAVEPOINT {name}")


async def rollback(tx: Txn, name: str) -> None:
    await tx.execute(f"ROLLBACK TO {name}")


async def release(tx: Txn, name: str) -> None:
    await tx.execute(f"RELEASE {name}")
