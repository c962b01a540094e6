"""Where a person's traces lie: the reads behind erasing a contact (each table's own module blanks its rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.store import Txn
from mailgate.store.messages import MessageTrace


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" for _ in values)


@dataclass(frozen=True, slots=True)
class SpoolTrace:
    id: int
    mail_from: str
    rcpt_to: str  # JSON
    size: int  # bytes of raw mail still held


@dataclass(frozen=True, slots=True)
class TextTrace:
    """A row's free text: an event's actor and data, a routing trace, a task."""

    id: int
    text: str | None
    extra: str | None = None


def _raw_text(tx: Txn) -> str:
    """A mail's stored bytes as text to search for an address in. SQLite reads them as they are;
    PostgreSQL's bytea cast would give hex, so it escapes only the non-ASCII bytes (addresses stay)."""
    return "encode(raw, 'escape')" if tx.engine == "postgresql" else "CAST(raw AS TEXT)"


async def secure_delete(tx: Txn) -> None:
    """Freed pages are overwritten with zeros, so the person's bytes do not linger in the file.

    PostgreSQL has no such switch: deleted rows' space is reclaimed by VACUUM (README: erasure).
    """
    if tx.engine == "postgresql":
        return
    await tx.execute("PRAGMA secure_delete = ON")


async def other_addresses(tx: Txn, contact_id: int, placeholder: str) -> list[str]:
    """The contact's addresses, but the placeholder of an earlier erase."""
    rows = await tx.all("SELECT address FROM contact_addresses WHERE contact_id = ? AND address != ?",
                        (contact_id, placeholder))
    return [r["address"] for r in rows]


async def owned_tickets(tx: Txn, contact_id: int) -> list[int]:
    return [r["id"] for r in await tx.all("SELECT id FROM tickets WHERE contact_id = ?", (contact_id,))]


async def messages_of_tickets(tx: Txn, ticket_ids: Sequence[int]) -> set[int]:
    if not ticket_ids:
        return set()
    rows = await tx.all(f"SELECT id FROM messages WHERE ticket_id IN ({_marks(ticket_ids)})", ticket_ids)
    return {r["id"] for r in rows}


async def messages_naming(tx: Txn, address: str) -> set[int]:
    """Messages from the address or to it (recipients is JSON of lowercased and as-written addresses:
    a case-blind substring catches both)."""
    rows = await tx.all(
        "SELECT id FROM messages WHERE lower(from_address) = ? OR instr(lower(recipients), ?) > 0", (address, address))
    return {r["id"] for r in rows}


async def names_signed(tx: Txn, address: str) -> list[str]:
    """The names a sender signed their mail to us with (never an agent's, on replies to them)."""
    rows = await tx.all(
        "SELECT DISTINCT from_name FROM messages WHERE lower(from_address) = ? AND direction = 'in'", (address,))
    return [r["from_name"] for r in rows]


async def message_subjects(tx: Txn, ids: Sequence[int]) -> list[str]:
    if not ids:
        return []
    return [r["subject"] for r in await tx.all(f"SELECT DISTINCT subject FROM messages WHERE id IN ({_marks(ids)})", ids)]


async def ticket_subjects(tx: Txn, ticket_ids: Sequence[int]) -> list[str]:
    if not ticket_ids:
        return []
    return [r["subject"] for r in await tx.all(
        f"SELECT subject FROM tickets WHERE id IN ({_marks(ticket_ids)})", ticket_ids)]


async def tickets_of_messages(tx: Txn, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    return {r["ticket_id"] for r in await tx.all(
        f"SELECT DISTINCT ticket_id FROM messages WHERE id IN ({_marks(ids)})", ids)}


async def tickets_with_parties(tx: Txn, addresses: Sequence[str]) -> set[int]:
    if not addresses:
        return set()
    return {r["ticket_id"] for r in await tx.all(
        f"SELECT DISTINCT ticket_id FROM ticket_parties WHERE address IN ({_marks(addresses)})", addresses)}


async def message_traces(tx: Txn, ids: Sequence[int]) -> list[MessageTrace]:
    rows = await tx.all(f"SELECT id, from_address, recipients, message_id, in_reply_to, defects FROM messages"
                        f" WHERE id IN ({_marks(ids)})", ids)
    return [MessageTrace(r["id"], r["from_address"], r["recipients"], r["message_id"], r["in_reply_to"], r["defects"])
            for r in rows]


async def spool_naming(tx: Txn, address: str) -> list[SpoolTrace]:
    """Spool rows from or to the address, or whose bytes name it."""
    rows = await tx.all(
        "SELECT id, mail_from, rcpt_to, length(raw) AS size FROM spool WHERE lower(mail_from) = ?"
        f" OR instr(lower(rcpt_to), ?) > 0 OR instr(lower({_raw_text(tx)}), ?) > 0", (address, address, address))
    return [SpoolTrace(r["id"], r["mail_from"], r["rcpt_to"], int(r["size"] or 0)) for r in rows]


async def outbox_naming(tx: Txn, address: str) -> set[int]:
    """Outgoing mail to the address, or whose bytes name it."""
    return {r["id"] for r in await tx.all(
        f"SELECT id FROM outbox WHERE rcpt_to = ? OR instr(lower({_raw_text(tx)}), ?) > 0", (address, address))}


async def outbox_of_tickets(tx: Txn, ticket_ids: Sequence[int]) -> set[int]:
    if not ticket_ids:
        return set()
    return {r["id"] for r in await tx.all(f"SELECT id FROM outbox WHERE ticket_id IN ({_marks(ticket_ids)})", ticket_ids)}


async def outbox_of_messages(tx: Txn, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    return {r["id"] for r in await tx.all(f"SELECT id FROM outbox WHERE message_row IN ({_marks(ids)})", ids)}


async def routing_traces(tx: Txn) -> list[TextTrace]:
    """Every stored routing trace (JSON), by ticket id."""
    return [TextTrace(r["ticket_id"], r["trace"]) for r in await tx.all("SELECT ticket_id, trace FROM ticket_routing")]


async def task_texts(tx: Txn) -> list[TextTrace]:
    return [TextTrace(r["id"], r["text"]) for r in await tx.all("SELECT id, text FROM tasks")]


async def events_of_tickets(tx: Txn, ticket_ids: Sequence[int]) -> list[TextTrace]:
    """Events as (id, actor, data JSON)."""
    if not ticket_ids:
        return []
    rows = await tx.all(f"SELECT id, actor, data FROM events WHERE ticket_id IN ({_marks(ticket_ids)})", ticket_ids)
    return [TextTrace(r["id"], r["actor"], r["data"]) for r in rows]


async def events_naming(tx: Txn, address: str) -> list[TextTrace]:
    """Events anywhere whose actor or data name the address (a cc on someone else's ticket)."""
    rows = await tx.all("SELECT id, actor, data FROM events WHERE instr(lower(actor), ?) > 0 OR instr(lower(data), ?) > 0",
                        (address, address))
    return [TextTrace(r["id"], r["actor"], r["data"]) for r in rows]
