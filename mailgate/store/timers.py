"""The timers table: due things (wake-ups, SLA warnings, delayed sends) written with the change that made them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
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
    dead: bool = False  # given up on after too many failed tries; kept for the operator


@dataclass(frozen=True, slots=True)
class Failure:
    """A timer row after one more failed try."""

    kind: str
    ref: int
    attempts: int
    dead: bool


def timer_of(row: Row) -> Timer:
    return Timer(row["id"], row["kind"], row["ref"], datetime.fromisoformat(row["due_at"]),
                 dead=row["dead_at"] is not None)


async def add(tx: Txn, kind: str, ref: int, due_at: datetime) -> int:
    """A due thing, in the caller's transaction: it exists exactly when the change that made it does."""
    timer_id = await tx.execute(
        "INSERT INTO timers (kind, ref, due_at, created_at) VALUES (?, ?, ?, ?)", (kind, ref, iso(due_at), tx.now_iso())
    )
    tx.touch("timers")
    return timer_id


async def cancel(tx: Txn, kind: str, ref: int) -> int:
    """Drop the timers of one row (a cancelled send); a scheduled job then finds nothing to do."""
    return await tx.rowcount("DELETE FROM timers WHERE kind = ? AND ref = ?", (kind, ref))


# -- the runner's statements ------------------------------------------------------------------------


async def newer_than(tx: Txn, seen: int) -> tuple[list[Timer], dict[int, str]]:
    """Every row with an id above `seen`, oldest first (ids are never reused), and the unreadable ones' errors."""
    found: list[Timer] = []
    unreadable: dict[int, str] = {}
    for row in await tx.all("SELECT * FROM timers WHERE id > ? ORDER BY id", (seen,)):
        try:
            found.append(timer_of(row))
        except (TypeError, ValueError) as exc:  # a due_at no program of ours wrote
            unreadable[int(row["id"])] = f"{type(exc).__name__}: {exc}"
    return found, unreadable


async def get(tx: Txn, timer_id: int) -> Timer | None:
    row = await tx.one("SELECT * FROM timers WHERE id = ?", (timer_id,))
    return timer_of(row) if row is not None else None


async def done(tx: Txn, timer_id: int) -> None:
    """The timer fired: its row goes in the transaction of its effect."""
    await tx.execute("DELETE FROM timers WHERE id = ?", (timer_id,))


async def failed(tx: Txn, timer_id: int, reason: str, max_tries: int) -> Failure | None:
    """Count one failed try; the row is dead (never scheduled again) from `max_tries` on."""
    row = await tx.one(
        "UPDATE timers SET attempts = attempts + 1, last_error = ?,"
        " dead_at = CASE WHEN attempts + 1 >= ? THEN ? END WHERE id = ?"
        " RETURNING kind, ref, attempts, dead_at",
        (reason[:2000], max_tries, tx.now_iso(), timer_id),
    )
    if row is None:
        return None
    return Failure(row["kind"], row["ref"], int(row["attempts"]), row["dead_at"] is not None)


async def dead_count(tx: Txn) -> int:
    return int(await tx.value("SELECT COUNT(*) FROM timers WHERE dead_at IS NOT NULL") or 0)


# A handler runs inside the transaction that deletes the timer row; `after` runs once it committed.
Handler = Callable[[Txn, Timer], Awaitable[None]]


class Registry(Protocol):
    """Where the domain modules say what a due timer of their kind does (the daemon's timer runner)."""

    def register(self, kind: str, handler: Handler | None = None, after: Callable[[], None] | None = None) -> None: ...


__all__ = ["OUTBOX_RELEASE", "Failure", "Handler", "Registry", "Timer", "add", "cancel", "iso", "timer_of"]


async def drop(tx: Txn, kind: str, refs: Sequence[int]) -> None:
    """Delete the timers of this kind for these rows (the rows themselves are going)."""
    await tx.execute(f"DELETE FROM timers WHERE kind = ? AND ref IN ({','.join('?' for _ in refs)})", [kind, *refs])
