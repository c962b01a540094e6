"""The contacts tables: people, their addresses, phones and agents' notes about them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mailgate.store import Txn

# Columns an operator may set on a contact; the names are fixed here, the values always bound.
FIELDS: tuple[str, ...] = ("name", "organization", "department", "title")
# An erased contact's one address keeps this date: no trace of when the person first wrote.
EPOCH = "1970-01-01T00:00:00+00:00"


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    name: str
    organization: str
    department: str
    title: str
    language: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class ContactSummary:
    """One line of `contacts list`."""

    id: int
    name: str
    organization: str
    department: str
    title: str
    addresses: tuple[str, ...]
    tickets: int


@dataclass(frozen=True, slots=True)
class Phone:
    phone: str
    label: str


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    author: str
    text: str
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class ContactTicket:
    """A ticket as a contact's page lists it."""

    number: int
    subject: str
    status: str
    updated_at: str


async def exists(tx: Txn, contact_id: int) -> bool:
    return await tx.value("SELECT id FROM contacts WHERE id = ?", (contact_id,)) is not None


async def get(tx: Txn, contact_id: int) -> Contact | None:
    row = await tx.one(
        "SELECT id, name, organization, department, title, language, created_at FROM contacts WHERE id = ?",
        (contact_id,),
    )
    if row is None:
        return None
    return Contact(row["id"], row["name"], row["organization"], row["department"], row["title"], row["language"],
                   row["created_at"])


async def owner(tx: Txn, address: str) -> int | None:
    """The contact an address (lowercased) belongs to, if any."""
    value = await tx.value("SELECT contact_id FROM contact_addresses WHERE address = ?", (address,))
    return None if value is None else int(value)


async def find_or_create(tx: Txn, address: str, name: str = "", language: str | None = None) -> int:
    """The contact owning an address (lowercased); an unknown one becomes a new contact with that name.

    A name learnt later fills an empty one and never overwrites what an agent or an earlier mail set.
    language: a new contact's, known from its first mail (an existing contact's is learn_language's).
    """
    key = address.lower()
    found = await owner(tx, key)
    if found is not None:
        if name:
            await tx.execute("UPDATE contacts SET name = ? WHERE id = ? AND name = ''", (name, found))
        return found
    now = tx.now_iso()
    contact_id = await tx.execute("INSERT INTO contacts (name, created_at, language) VALUES (?, ?, ?)",
                                  (name, now, language))
    await tx.execute("INSERT INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
                     (key, contact_id, now))
    return contact_id


async def search(tx: Txn, text: str | None, limit: int) -> list[ContactSummary]:
    """Contacts, most recently created first; `text` matches name, organization or an address."""
    rows = await tx.all(
        "SELECT c.id, c.name, c.organization, c.department, c.title,"
        " (SELECT group_concat(address, ' ') FROM (SELECT address FROM contact_addresses a"
        "   WHERE a.contact_id = c.id ORDER BY created_at, address) AS a) AS addresses,"
        " (SELECT COUNT(*) FROM tickets t WHERE t.contact_id = c.id) AS ticket_count"
        " FROM contacts c WHERE CAST(? AS TEXT) IS NULL OR instr(lower(c.name), ?) > 0"
        " OR instr(lower(c.organization), ?) > 0"
        " OR EXISTS (SELECT 1 FROM contact_addresses a WHERE a.contact_id = c.id AND instr(a.address, ?) > 0)"
        " ORDER BY c.id DESC LIMIT ?",
        (text, *(3 * [(text or "").lower()]), limit),
    )
    return [
        ContactSummary(r["id"], r["name"], r["organization"], r["department"], r["title"],
                       tuple((r["addresses"] or "").split()), int(r["ticket_count"]))
        for r in rows
    ]


async def addresses(tx: Txn, contact_id: int) -> list[str]:
    """A contact's addresses, oldest first."""
    rows = await tx.all(
        "SELECT address FROM contact_addresses WHERE contact_id = ? ORDER BY created_at, address", (contact_id,))
    return [r["address"] for r in rows]


async def phones(tx: Txn, contact_id: int) -> list[Phone]:
    rows = await tx.all("SELECT phone, label FROM contact_phones WHERE contact_id = ? ORDER BY id", (contact_id,))
    return [Phone(r["phone"], r["label"]) for r in rows]


async def notes(tx: Txn, contact_id: int) -> list[Note]:
    """Agents' notes on a contact, newest first."""
    rows = await tx.all(
        "SELECT id, author, text, created_at, updated_at FROM contact_notes WHERE contact_id = ?"
        " ORDER BY created_at DESC, id DESC", (contact_id,))
    return [Note(r["id"], r["author"], r["text"], r["created_at"], r["updated_at"]) for r in rows]


async def tickets(tx: Txn, contact_id: int) -> list[ContactTicket]:
    """The contact's tickets, most recently changed first."""
    rows = await tx.all(
        "SELECT number, subject, status, updated_at FROM tickets WHERE contact_id = ? ORDER BY updated_at DESC",
        (contact_id,))
    return [ContactTicket(r["number"], r["subject"], r["status"], r["updated_at"]) for r in rows]


async def set_fields(tx: Txn, contact_id: int, values: Mapping[str, str]) -> None:
    """Set some of FIELDS; any other key is a programming error."""
    for key in FIELDS:
        if key in values:
            await tx.execute(f"UPDATE contacts SET {key} = ? WHERE id = ?", (values[key], contact_id))


async def add_phone(tx: Txn, contact_id: int, phone: str, label: str) -> None:
    """A phone number; the same number twice is kept once."""
    await tx.execute(
        "INSERT INTO contact_phones (contact_id, phone, label, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (contact_id, phone, label, tx.now_iso()),
    )


async def remove_phone(tx: Txn, contact_id: int, phone: str) -> bool:
    """Remove a phone number; False when the contact had no such number."""
    return bool(await tx.rowcount("DELETE FROM contact_phones WHERE contact_id = ? AND phone = ?", (contact_id, phone)))


async def add_address(tx: Txn, contact_id: int, address: str) -> None:
    await tx.execute("INSERT INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
                     (address, contact_id, tx.now_iso()))


async def move_address(tx: Txn, address: str, contact_id: int) -> None:
    await tx.execute("UPDATE contact_addresses SET contact_id = ? WHERE address = ?", (contact_id, address))


async def unused(tx: Txn, contact_id: int) -> bool:
    """A contact left with nothing: no address, ticket, phone or note."""
    return not await tx.value(
        "SELECT EXISTS (SELECT 1 FROM contact_addresses WHERE contact_id = ?)"
        " OR EXISTS (SELECT 1 FROM tickets WHERE contact_id = ?)"
        " OR EXISTS (SELECT 1 FROM contact_phones WHERE contact_id = ?)"
        " OR EXISTS (SELECT 1 FROM contact_notes WHERE contact_id = ?)",
        (contact_id,) * 4,
    )


async def delete(tx: Txn, contact_id: int) -> None:
    await tx.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))


async def first_requester_contact(tx: Txn, ticket_id: int) -> int | None:
    """The contact of the ticket's first requester (by address order) that has one, if any."""
    value = await tx.value(
        "SELECT a.contact_id FROM ticket_parties p JOIN contact_addresses a ON a.address = p.address"
        " WHERE p.ticket_id = ? AND p.role = 'requester' ORDER BY p.address LIMIT 1", (ticket_id,),
    )
    return None if value is None else int(value)


async def add_note(tx: Txn, contact_id: int, author: str, text: str) -> int:
    now = tx.now_iso()
    return await tx.execute(
        "INSERT INTO contact_notes (contact_id, author, text, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (contact_id, author, text, now, now),
    )


async def note_author(tx: Txn, note_id: int) -> str | None:
    value = await tx.value("SELECT author FROM contact_notes WHERE id = ?", (note_id,))
    return None if value is None else str(value)


async def edit_note(tx: Txn, note_id: int, text: str) -> None:
    await tx.execute("UPDATE contact_notes SET text = ?, updated_at = ? WHERE id = ?", (text, tx.now_iso(), note_id))


async def delete_note(tx: Txn, note_id: int) -> None:
    await tx.execute("DELETE FROM contact_notes WHERE id = ?", (note_id,))


@dataclass(frozen=True, slots=True)
class TicketOwner:
    """A ticket by its number, with the contact it belongs to."""

    id: int
    contact_id: int | None


async def ticket_owner(tx: Txn, number: int) -> TicketOwner | None:
    row = await tx.one("SELECT id, contact_id FROM tickets WHERE number = ?", (number,))
    return None if row is None else TicketOwner(row["id"], row["contact_id"])


async def learn_language(tx: Txn, ticket_id: int, language: str) -> bool:
    """The ticket's contact writes in `language`, unless a language was known already; whether it was stored."""
    return 0 < await tx.rowcount(
        "UPDATE contacts SET language = ? WHERE id = (SELECT contact_id FROM tickets WHERE id = ?)"
        " AND language IS NULL", (language, ticket_id),
    )


async def blank(tx: Txn, contact_id: int, placeholder: str) -> None:
    """The contact keeps its id and one placeholder address (its tickets still point at it); nothing else."""
    await tx.execute("UPDATE contacts SET name = '', organization = '', department = '', title = '', language = NULL"
                     " WHERE id = ?", (contact_id,))
    await tx.execute("DELETE FROM contact_phones WHERE contact_id = ?", (contact_id,))
    await tx.execute("DELETE FROM contact_notes WHERE contact_id = ?", (contact_id,))
    await tx.execute("DELETE FROM contact_addresses WHERE contact_id = ?", (contact_id,))
    await tx.execute("INSERT INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)"
                     " ON CONFLICT (address) DO NOTHING", (placeholder, contact_id, EPOCH))
