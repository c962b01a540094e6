"""The tasks table: work one queue hands another on a ticket, with a deadline."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.store import Row, Txn

OPEN, DONE = "open", "done"


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    ticket_id: int
    queue: str
    text: str
    due_at: str
    status: str  # open | done
    created_by: str
    created_at: str
    done_by: str | None
    done_at: str | None
    reminded_at: str | None


def _task(row: Row) -> Task:
    return Task(id=int(row["id"]), ticket_id=int(row["ticket_id"]), queue=row["queue"], text=row["text"],
                due_at=row["due_at"], status=row["status"], created_by=row["created_by"],
                created_at=row["created_at"], done_by=row["done_by"], done_at=row["done_at"],
                reminded_at=row["reminded_at"])


async def add(tx: Txn, ticket_id: int, queue: str, text: str, due_at: str, created_by: str) -> int:
    return await tx.execute(
        "INSERT INTO tasks (ticket_id, queue, text, due_at, status, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ticket_id, queue, text, due_at, OPEN, created_by, tx.now_iso()),
    )


async def get(tx: Txn, task_id: int) -> Task | None:
    row = await tx.one("SELECT * FROM tasks WHERE id = ?", (task_id,))
    return None if row is None else _task(row)


async def mark_done(tx: Txn, task_id: int, by: str) -> None:
    await tx.execute("UPDATE tasks SET status = ?, done_by = ?, done_at = ? WHERE id = ?",
                     (DONE, by, tx.now_iso(), task_id))


async def mark_reminded(tx: Txn, task_id: int, at: str) -> None:
    await tx.execute("UPDATE tasks SET reminded_at = ? WHERE id = ?", (at, task_id))


async def of_ticket(tx: Txn, ticket_id: int, *, only_open: bool = False) -> list[Task]:
    rows = await tx.all("SELECT * FROM tasks WHERE ticket_id = ? AND (? = 0 OR status = 'open') ORDER BY id",
                        (ticket_id, int(only_open)))
    return [_task(r) for r in rows]


async def set_text(tx: Txn, task_id: int, text: str | None) -> None:
    await tx.execute("UPDATE tasks SET text = ? WHERE id = ?", (text, task_id))
