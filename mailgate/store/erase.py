"""Where a person's traces lie, and the statements that blank them: the store side of erasing a contact."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.store import Txn
from mailgate.store.contacts import EPOCH
from mailgate.store.timers import OUTBOX_RELEASE


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" for _ in values)


@dataclass(frozen=True, slots=True)
class MessageTrace:
    """The columns of a message that may name its people beyond its text."""

    id: int
    from_address: str
    recipients: str  # JSON
    message_id: str
    in_reply_to: str | None
    defects: str  # JSON


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


async def secure_delete(tx: Txn) -> None:
    """Freed pages are overwritten with zeros, so the person's bytes do not linger in the file."""
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
        "SELECT id FROM messages WHERE lower(from_address) = ? OR instr(lower(recipients), ?)", (address, address))
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


async def blank_message(tx: Txn, trace: MessageTrace, text: str) -> None:
    """Every free-text column becomes `text`; the address columns take the trace's (already scrubbed) values."""
    await tx.execute(
        "UPDATE messages SET subject = ?, text = ?, html = NULL, reply_text = ?, from_name = '',"
        " from_address = ?, recipients = ?, in_reply_to = ?, defects = ?, thread_detail = '' WHERE id = ?",
        (text, text, text, trace.from_address, trace.recipients, trace.in_reply_to, trace.defects, trace.id),
    )


async def rename_message_id(tx: Txn, row: int, old: str, new: str) -> None:
    """A Message-ID rewritten on the message and in the threading index; a clash keeps the old row's."""
    await tx.execute("UPDATE OR IGNORE messages SET message_id = ? WHERE id = ?", (new, row))
    await tx.execute("UPDATE OR IGNORE message_ids SET message_id = ? WHERE message_id = ?", (new, old))
    await tx.execute("DELETE FROM message_ids WHERE message_id = ?", (old,))


async def drop_attachments(tx: Txn, ids: Sequence[int]) -> tuple[int, list[str]]:
    """Delete the messages' attachment rows; (rows deleted, the distinct sha256s they named)."""
    marks = _marks(ids)
    hashes = [r["sha256"] for r in await tx.all(
        f"SELECT DISTINCT sha256 FROM attachments WHERE message_row IN ({marks})", ids)]
    return await tx.rowcount(f"DELETE FROM attachments WHERE message_row IN ({marks})", ids), hashes


async def blank_spool_of_messages(tx: Txn, ids: Sequence[int]) -> int:
    """The wire bytes behind these messages hold everything their columns held: they go."""
    marks = _marks(ids)
    return await tx.rowcount(
        f"UPDATE spool SET raw = X'', error = NULL WHERE message_row IN ({marks})"
        f" OR id IN (SELECT spool_id FROM messages WHERE id IN ({marks}))", [*ids, *ids])


async def spool_naming(tx: Txn, address: str) -> list[SpoolTrace]:
    """Spool rows from or to the address, or whose bytes name it."""
    rows = await tx.all(
        "SELECT id, mail_from, rcpt_to, length(raw) AS size FROM spool WHERE lower(mail_from) = ?"
        " OR instr(lower(rcpt_to), ?) OR instr(lower(CAST(raw AS TEXT)), ?)", (address, address, address))
    return [SpoolTrace(r["id"], r["mail_from"], r["rcpt_to"], int(r["size"] or 0)) for r in rows]


async def blank_spool(tx: Txn, spool_id: int, mail_from: str, rcpt_to: str) -> None:
    await tx.execute("UPDATE spool SET raw = X'', error = NULL, mail_from = ?, rcpt_to = ? WHERE id = ?",
                     (mail_from, rcpt_to, spool_id))


async def outbox_naming(tx: Txn, address: str) -> set[int]:
    """Outgoing mail to the address, or whose bytes name it."""
    return {r["id"] for r in await tx.all(
        "SELECT id FROM outbox WHERE rcpt_to = ? OR instr(lower(CAST(raw AS TEXT)), ?)", (address, address))}


async def outbox_of_tickets(tx: Txn, ticket_ids: Sequence[int]) -> set[int]:
    if not ticket_ids:
        return set()
    return {r["id"] for r in await tx.all(f"SELECT id FROM outbox WHERE ticket_id IN ({_marks(ticket_ids)})", ticket_ids)}


async def outbox_of_messages(tx: Txn, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    return {r["id"] for r in await tx.all(f"SELECT id FROM outbox WHERE message_row IN ({_marks(ids)})", ids)}


async def drop_outbox(tx: Txn, ids: Sequence[int]) -> int:
    """Delete outgoing mail and the timers that would release it; how many mails went."""
    await tx.execute(f"DELETE FROM timers WHERE kind = ? AND ref IN ({_marks(ids)})", [OUTBOX_RELEASE, *ids])
    return await tx.rowcount(f"DELETE FROM outbox WHERE id IN ({_marks(ids)})", ids)


async def blank_contact(tx: Txn, contact_id: int, placeholder: str) -> None:
    """The contact keeps its id and one placeholder address (its tickets still point at it); nothing else."""
    await tx.execute("UPDATE contacts SET name = '', organization = '', department = '', title = '', language = NULL"
                     " WHERE id = ?", (contact_id,))
    await tx.execute("DELETE FROM contact_phones WHERE contact_id = ?", (contact_id,))
    await tx.execute("DELETE FROM contact_notes WHERE contact_id = ?", (contact_id,))
    await tx.execute("DELETE FROM contact_addresses WHERE contact_id = ?", (contact_id,))
    await tx.execute("INSERT OR IGNORE INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
                     (placeholder, contact_id, EPOCH))


async def replace_address(tx: Txn, address: str, placeholder: str) -> None:
    """The address becomes the placeholder as a ticket party, in the sender-rate window and on forwards."""
    await tx.execute("UPDATE OR IGNORE ticket_parties SET address = ? WHERE address = ?", (placeholder, address))
    await tx.execute("DELETE FROM ticket_parties WHERE address = ?", (address,))
    await tx.execute("UPDATE OR IGNORE sender_hours SET sender = ? WHERE sender = ?", (placeholder, address))
    await tx.execute("DELETE FROM sender_hours WHERE sender = ?", (address,))
    await tx.execute("UPDATE forwards SET address = ? WHERE address = ?", (placeholder, address))


async def set_ticket_subjects(tx: Txn, ticket_ids: Sequence[int], subject: str) -> None:
    if ticket_ids:
        await tx.execute(f"UPDATE tickets SET subject = ? WHERE id IN ({_marks(ticket_ids)})", [subject, *ticket_ids])


async def routing_traces(tx: Txn) -> list[TextTrace]:
    """Every stored routing trace (JSON), by ticket id."""
    return [TextTrace(r["ticket_id"], r["trace"]) for r in await tx.all("SELECT ticket_id, trace FROM ticket_routing")]


async def set_routing_trace(tx: Txn, ticket_id: int, trace: str | None) -> None:
    await tx.execute("UPDATE ticket_routing SET trace = ? WHERE ticket_id = ?", (trace, ticket_id))


async def task_texts(tx: Txn) -> list[TextTrace]:
    return [TextTrace(r["id"], r["text"]) for r in await tx.all("SELECT id, text FROM tasks")]


async def set_task_text(tx: Txn, task_id: int, text: str | None) -> None:
    await tx.execute("UPDATE tasks SET text = ? WHERE id = ?", (text, task_id))


async def events_of_tickets(tx: Txn, ticket_ids: Sequence[int]) -> list[TextTrace]:
    """Events as (id, actor, data JSON)."""
    if not ticket_ids:
        return []
    rows = await tx.all(f"SELECT id, actor, data FROM events WHERE ticket_id IN ({_marks(ticket_ids)})", ticket_ids)
    return [TextTrace(r["id"], r["actor"], r["data"]) for r in rows]


async def events_naming(tx: Txn, address: str) -> list[TextTrace]:
    """Events anywhere whose actor or data name the address (a cc on someone else's ticket)."""
    rows = await tx.all("SELECT id, actor, data FROM events WHERE instr(lower(actor), ?) OR instr(lower(data), ?)",
                        (address, address))
    return [TextTrace(r["id"], r["actor"], r["data"]) for r in rows]


async def set_event(tx: Txn, event_id: int, actor: str | None, data: str | None) -> None:
    await tx.execute("UPDATE events SET actor = ?, data = ? WHERE id = ?", (actor, data, event_id))
