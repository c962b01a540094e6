"""The forwards and ticket_flags tables: what an agent forwarded or asked, and the answers that flag a ticket."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.store import Row, Txn


@dataclass(frozen=True, slots=True)
class Forward:
    """One forward of a ticket (kind forward) or question to a colleague (kind help)."""

    id: int
    ticket_id: int
    kind: str
    asked_by: str
    address: str
    colleague: str | None
    notes: bool


def _forward(row: Row) -> Forward:
    return Forward(id=int(row["id"]), ticket_id=int(row["ticket_id"]), kind=row["kind"], asked_by=row["asked_by"],
                   address=row["address"], colleague=row["colleague"], notes=bool(row["notes"]))


async def add(tx: Txn, ticket_id: int, kind: str, asked_by: str, address: str, colleague: str | None,
              notes: bool) -> int:
    return await tx.execute(
        "INSERT INTO forwards (ticket_id, kind, asked_by, address, colleague, notes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ticket_id, kind, asked_by, address.lower(), colleague, int(notes), tx.now_iso()),
    )


async def set_outbox(tx: Txn, forward_id: int, outbox_id: int) -> None:
    await tx.execute("UPDATE forwards SET outbox_id = ? WHERE id = ?", (outbox_id, forward_id))


async def get(tx: Txn, forward_id: int) -> Forward | None:
    row = await tx.one("SELECT * FROM forwards WHERE id = ?", (forward_id,))
    return None if row is None else _forward(row)


async def move(tx: Txn, from_ticket: int, to_ticket: int) -> None:
    """A merged ticket's forwards: their answers land on the survivor."""
    await tx.execute("UPDATE forwards SET ticket_id = ? WHERE ticket_id = ?", (to_ticket, from_ticket))


async def answered(tx: Txn, forward_id: int, at: str) -> None:
    await tx.execute("UPDATE forwards SET answers = answers + 1, answered_at = ? WHERE id = ?", (at, forward_id))


async def flag(tx: Txn, ticket_id: int, agent_id: str, reason: str, at: str) -> None:
    """The ticket is first in this agent's inbox until they act on it."""
    await tx.execute(
        "INSERT INTO ticket_flags (ticket_id, agent, reason, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (ticket_id, agent) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at",
        (ticket_id, agent_id, reason, at),
    )


async def unflag(tx: Txn, ticket_id: int, agent_id: str) -> None:
    await tx.execute("DELETE FROM ticket_flags WHERE ticket_id = ? AND agent = ?", (ticket_id, agent_id))


async def rename_address(tx: Txn, address: str, placeholder: str) -> None:
    await tx.execute("UPDATE forwards SET address = ? WHERE address = ?", (placeholder, address))
