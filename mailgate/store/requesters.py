"""Who a ticket is for: the contact owning an address, and the ticket_parties rows of requester and Cc."""

from __future__ import annotations

from mailgate.store import Txn


async def contact_of(tx: Txn, address: str) -> int | None:
    """The contact owning an address, if any."""
    value = await tx.value("SELECT contact_id FROM contact_addresses WHERE address = ?", (address.lower(),))
    return None if value is None else int(value)


async def contact_for(tx: Txn, address: str, name: str) -> int:
    """The contact owning an address (a name fills an empty one); an unknown sender becomes a new contact."""
    key = address.lower()
    contact_id = await contact_of(tx, key)
    if contact_id is not None:
        if name:
            await tx.execute("UPDATE contacts SET name = ? WHERE id = ? AND name = ''", (name, contact_id))
        return contact_id
    now = tx.now_iso()
    contact_id = await tx.execute("INSERT INTO contacts (name, created_at) VALUES (?, ?)", (name, now))
    await tx.execute("INSERT INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
                     (key, contact_id, now))
    return int(contact_id)


async def add_party(tx: Txn, ticket_id: int, address: str, role: str) -> None:
    await tx.execute("INSERT OR IGNORE INTO ticket_parties (ticket_id, address, role) VALUES (?, ?, ?)",
                     (ticket_id, address.lower(), role))


async def latest_requested_by(tx: Txn, address: str) -> int | None:
    """The newest ticket this address opened, if any."""
    value = await tx.value(
        "SELECT ticket_id FROM ticket_parties WHERE address = ? AND role = 'requester' ORDER BY ticket_id DESC LIMIT 1",
        (address.lower(),),
    )
    return None if value is None else int(value)
