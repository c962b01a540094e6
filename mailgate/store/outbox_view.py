"""The outbox as operators read it: newest-first listings and one row in full, each with its ticket's number."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from mailgate.store import Txn
from mailgate.store.outbox import OutboxRow, from_row


@dataclass(frozen=True, slots=True)
class Listed:
    """One line of `mailgate outbox list`."""

    id: int
    state: str
    kind: str
    number: int | None  # the ticket's
    rcpt_to: str
    attempts: int
    retries: int
    created_at: str
    not_before: str
    sent_at: str | None
    last_error: str | None
    claimed_by: str | None  # the daemon that took it last (is sending it, or did)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Shown:
    """Every column of one row, and its ticket's number, for `mailgate outbox show`."""

    row: OutboxRow
    ticket: int | None

    def to_json(self) -> dict[str, Any]:
        """The columns in the table's order, then the ticket's number."""
        return {**{f.name: getattr(self.row, f.name) for f in fields(self.row)}, "ticket": self.ticket}


async def listing(tx: Txn, *, state: str | None, ticket: int | None, kind: str | None, limit: int) -> list[Listed]:
    """Rows newest first, with the ticket's number."""
    rows = await tx.all(
        "SELECT o.id, o.state, o.kind, t.number, o.rcpt_to, o.attempts, o.retries, o.created_at, o.not_before,"
        " o.sent_at, o.last_error, o.claimed_by FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id"
        " WHERE (CAST(? AS TEXT) IS NULL OR o.state = ?) AND (CAST(? AS BIGINT) IS NULL OR t.number = ?)"
        " AND (CAST(? AS TEXT) IS NULL OR o.kind = ?)"
        " ORDER BY o.id DESC LIMIT ?",
        (state, state, ticket, ticket, kind, kind, limit),
    )
    return [Listed(r["id"], r["state"], r["kind"], r["number"], r["rcpt_to"], r["attempts"], r["retries"],
                   r["created_at"], r["not_before"], r["sent_at"], r["last_error"], r["claimed_by"]) for r in rows]


async def shown(tx: Txn, outbox_id: int) -> Shown | None:
    row = await tx.one(
        "SELECT o.*, t.number AS ticket FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id WHERE o.id = ?",
        (outbox_id,),
    )
    return None if row is None else Shown(from_row(row), row["ticket"])
