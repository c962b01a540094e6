"""The sender_hours table: mail per sender and clock hour, for the storm fuse and the operator's view of it."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.store import Txn

ALL_SENDERS = ""  # the row of the installation-wide acknowledgement cap


@dataclass(frozen=True, slots=True)
class SenderHour:
    passed: int
    held: int
    released: bool
    ticket_id: int | None


async def of(tx: Txn, sender: str, hour: str) -> SenderHour | None:
    row = await tx.one(
        "SELECT passed, held, released, ticket_id FROM sender_hours WHERE sender = ? AND hour = ?", (sender, hour)
    )
    if row is None:
        return None
    return SenderHour(int(row["passed"]), int(row["held"]), bool(row["released"]), row["ticket_id"])


# The existing row's counts decide (named by table: PostgreSQL's upsert would not know which `passed`).
_PASSES = "(:cap <= 0 OR sender_hours.released <> 0 OR sender_hours.passed < :cap)"


async def count(tx: Txn, sender: str, hour: str, cap: int, now: str) -> tuple[bool, SenderHour]:
    """Count one mail of the sender's hour, passed or (past cap, unless released; cap 0: never) held.

    One upsert: its SET reads the row as it was, so the decision and the count cannot disagree.
    Whether this mail was held: the row's last_held_at is this mail's time (a pass leaves it older;
    a pass at the very same instant as a hold would need the cap raised in between).
    """
    row = await tx.one(
        "INSERT INTO sender_hours (sender, hour, passed) VALUES (:sender, :hour, 1)"
        " ON CONFLICT (sender, hour) DO UPDATE SET"
        f" passed = sender_hours.passed + CASE WHEN {_PASSES} THEN 1 ELSE 0 END,"
        f" held = sender_hours.held + CASE WHEN {_PASSES} THEN 0 ELSE 1 END,"
        f" first_held_at = CASE WHEN {_PASSES} THEN sender_hours.first_held_at"
        " ELSE COALESCE(sender_hours.first_held_at, :now) END,"
        f" last_held_at = CASE WHEN {_PASSES} THEN sender_hours.last_held_at ELSE :now END"
        " RETURNING passed, held, released, ticket_id, last_held_at",
        {"sender": sender, "hour": hour, "cap": cap, "now": now},
    )
    assert row is not None  # an upsert always returns its row
    found = SenderHour(int(row["passed"]), int(row["held"]), bool(row["released"]), row["ticket_id"])
    held = cap > 0 and not found.released and found.passed >= cap and row["last_held_at"] == now
    return held, found


async def count_held(tx: Txn, sender: str, hour: str, now: str) -> None:
    await _ensure(tx, sender, hour)
    await tx.execute(
        "UPDATE sender_hours SET held = held + 1, first_held_at = COALESCE(first_held_at, ?), last_held_at = ?"
        " WHERE sender = ? AND hour = ?", (now, now, sender, hour),
    )


async def _ensure(tx: Txn, sender: str, hour: str) -> None:
    await tx.execute(
        "INSERT INTO sender_hours (sender, hour) VALUES (?, ?) ON CONFLICT (sender, hour) DO NOTHING", (sender, hour)
    )


async def remember_ticket(tx: Txn, sender: str, hour: str, ticket_id: int) -> None:
    """The rest of this sender's held mail this hour goes to the same ticket."""
    await tx.execute("UPDATE sender_hours SET ticket_id = ? WHERE sender = ? AND hour = ?", (ticket_id, sender, hour))


async def release(tx: Txn, sender: str, hour: str) -> int:
    """Lift the cap for the sender's hour; how many of its mails were held so far."""
    await tx.execute(
        "INSERT INTO sender_hours (sender, hour, released) VALUES (?, ?, 1)"
        " ON CONFLICT (sender, hour) DO UPDATE SET released = 1", (sender, hour),
    )
    return int(await tx.value("SELECT held FROM sender_hours WHERE sender = ? AND hour = ?", (sender, hour)) or 0)


@dataclass(frozen=True, slots=True)
class HeldHour:
    """One sender's clock hour in which the fuse held mail, with the number of the ticket it went to."""

    sender: str  # ALL_SENDERS for the installation-wide acknowledgement cap
    hour: str
    passed: int
    held: int
    released: bool
    first_held_at: str | None
    last_held_at: str | None
    ticket_number: int | None


async def held_since(tx: Txn, hour: str) -> list[HeldHour]:
    """Hours with held mail from `hour` on, newest first, with the number of the ticket it went to."""
    rows = await tx.all(
        "SELECT h.sender, h.hour, h.passed, h.held, h.released, h.first_held_at, h.last_held_at, t.number"
        " FROM sender_hours h LEFT JOIN tickets t ON t.id = h.ticket_id"
        " WHERE h.held > 0 AND h.hour >= ? ORDER BY h.hour DESC, h.held DESC, h.sender", (hour,),
    )
    return [HeldHour(r["sender"], r["hour"], int(r["passed"]), int(r["held"]), bool(r["released"]),
                     r["first_held_at"], r["last_held_at"], r["number"]) for r in rows]


async def rename_sender(tx: Txn, sender: str, placeholder: str) -> None:
    """The sender's hours are counted under the placeholder (an hour it has already keeps its own)."""
    await tx.execute(
        "UPDATE sender_hours SET sender = ? WHERE sender = ? AND NOT EXISTS (SELECT 1 FROM sender_hours o"
        " WHERE o.sender = ? AND o.hour = sender_hours.hour)", (placeholder, sender, placeholder))
    await tx.execute("DELETE FROM sender_hours WHERE sender = ?", (sender,))
