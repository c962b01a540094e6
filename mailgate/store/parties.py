"""The ticket_parties table: who receives a ticket's replies (requester, cc) and who waits to be confirmed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailgate.store import Txn

SAMPLE = 10  # addresses named in events and notifications; the rest are counted


@dataclass(frozen=True, slots=True)
class Joined:
    """What one inbound mail did to its ticket's parties, for the agents' notification."""

    pending: tuple[str, ...] = ()  # the sender, not a party: kept out until an agent confirms them
    added: tuple[str, ...] = ()  # new Cc parties
    left_out: tuple[str, ...] = ()  # Cc addresses past tickets.max_cc_parties
    ignored_cc: int = 0  # Cc addresses of a pending sender: a stranger does not bring others in
    cap: int = 0

    def for_template(self) -> dict[str, Any]:
        return {"pending": list(self.pending), "left_out": len(self.left_out),
                "left_out_sample": list(self.left_out[:SAMPLE]), "cap": self.cap}


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a ticket sits: its queue and assignee (who may speak for it as an agent)."""

    queue: str | None
    assignee: str | None


async def roles(tx: Txn, ticket_id: int) -> dict[str, str]:
    """Every party of a ticket: address → role."""
    rows = await tx.all("SELECT address, role FROM ticket_parties WHERE ticket_id = ?", (ticket_id,))
    return {r["address"]: r["role"] for r in rows}


async def role_of(tx: Txn, ticket_id: int, address: str) -> str | None:
    value = await tx.value("SELECT role FROM ticket_parties WHERE ticket_id = ? AND address = ?", (ticket_id, address))
    return None if value is None else str(value)


async def put(tx: Txn, ticket_id: int, address: str, role: str) -> None:
    """Add a party, or raise a pending one to role; never lower a requester or a cc."""
    await tx.execute(
        "INSERT INTO ticket_parties (ticket_id, address, role) VALUES (?, ?, ?)"
        " ON CONFLICT (ticket_id, address) DO UPDATE SET role = excluded.role"
        " WHERE ticket_parties.role = 'pending' AND excluded.role != 'pending'",
        (ticket_id, address, role),
    )


async def add(tx: Txn, ticket_id: int, address: str, role: str) -> None:
    """Add a party (lowercased); one already there keeps its role."""
    await tx.execute(
        "INSERT INTO ticket_parties (ticket_id, address, role) VALUES (?, ?, ?)"
        " ON CONFLICT (ticket_id, address) DO NOTHING",
        (ticket_id, address.lower(), role),
    )


async def copy(tx: Txn, from_ticket: int, to_ticket: int) -> None:
    """One ticket's people take part in another (a merge); a sender still waiting for confirmation stays so."""
    await tx.execute("INSERT INTO ticket_parties (ticket_id, address, role) SELECT ?, address,"
                     " CASE role WHEN 'pending' THEN 'pending' ELSE 'cc' END"
                     " FROM ticket_parties WHERE ticket_id = ? ON CONFLICT (ticket_id, address) DO NOTHING",
                     (to_ticket, from_ticket))


async def latest_requested_by(tx: Txn, address: str) -> int | None:
    """The newest ticket this address opened, if any."""
    value = await tx.value(
        "SELECT ticket_id FROM ticket_parties WHERE address = ? AND role = 'requester' ORDER BY ticket_id DESC LIMIT 1",
        (address.lower(),),
    )
    return None if value is None else int(value)


async def remove(tx: Txn, ticket_id: int, address: str) -> None:
    await tx.execute("DELETE FROM ticket_parties WHERE ticket_id = ? AND address = ?", (ticket_id, address))


async def is_contact_address(tx: Txn, ticket_id: int, address: str) -> bool:
    """An address of the ticket's own contact: the customer writing from a second mailbox."""
    return bool(await tx.value(
        "SELECT 1 FROM contact_addresses a JOIN tickets t ON t.contact_id = a.contact_id"
        " WHERE t.id = ? AND a.address = ?", (ticket_id, address),
    ))


async def placement(tx: Txn, ticket_id: int) -> Placement | None:
    row = await tx.one("SELECT queue, assignee FROM tickets WHERE id = ?", (ticket_id,))
    return None if row is None else Placement(row["queue"], row["assignee"])


async def rename_address(tx: Txn, address: str, placeholder: str) -> None:
    """The address becomes the placeholder on every ticket (a ticket that has both keeps one)."""
    await tx.execute(
        "UPDATE ticket_parties SET address = ? WHERE address = ? AND NOT EXISTS (SELECT 1 FROM ticket_parties o"
        " WHERE o.ticket_id = ticket_parties.ticket_id AND o.address = ?)", (placeholder, address, placeholder))
    await tx.execute("DELETE FROM ticket_parties WHERE address = ?", (address,))
