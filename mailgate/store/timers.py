"""The timers table: due things (wake-ups, SLA warnings, delayed sends) written with the change that made them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailgate.clock import iso
from mailgate.store import Row, Txn

OUTBOX_RELEASE = "outbox.release"


@dataclass(frozen=True, slots=True)
class Timer:
    id: int
    kind: str
    ref: int
    due_at: datetime


def timer_of(row: Row) -> Timer:
    return Timer(row["id"], row["kind"], row["ref"], datetime.fromisoformat(row["due_at"]))


async def add(tx: Txn, kind: str, ref: int, due_at: datetime) -> int:
    """A due thing, in the caller's transaction: it exists exactly when the change that made it does."""
    return await tx.execute(
        "INSERT INTO timers (kind, ref, due_at, created_at) VALUES (?, ?, ?, ?)", (kind, ref, iso(due_at), tx.now_iso())
    )


async def cancel(tx: Txn, kind: str, ref: int) -> int:
    """Drop the timers of one row (a cancelled send); a scheduled job then finds nothing to do."""
    return await tx.rowcount("DELETE FROM timers WHERE kind = ? AND ref = ?", (kind, ref))



# A handler runs inside the transaction that deletes the timer row; `after` runs once it committed.
Handler = Callable[[Txn, Timer], Awaitable[None]]


class Registry(Protocol):
    """Where the domain modules say what a due timer of their kind does (the daemon's timer runner)."""

    def register(self, kind: str, handler: Handler | None = None, after: Callable[[], None] | None = None) -> None: ...


__all__ = ["OUTBOX_RELEASE", "Handler", "Registry", "Timer", "add", "cancel", "iso", "timer_of"]
