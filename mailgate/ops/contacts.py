"""Contacts: who a customer is (name, organization, addresses, phones), linking and detaching addresses, agents' notes."""

from __future__ import annotations

import re
from typing import Any

from mailgate.config import Config
from mailgate.errors import Refused
from mailgate.ops import tickets
from mailgate.store import Txn, now_iso

_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\".]+(?:\.[^@\s<>()\[\],;:\".]+)+")
_PHONE = re.compile(r"\+?[0-9 ()./\-]{3,40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FIELDS: tuple[str, ...] = ("name", "organization", "department", "title")
MAX_FIELD = 200
MAX_NOTE = 20_000


class ContactError(Refused):
    """A refused contact change; raised before anything is written, so nothing is half-done."""


def clean_address(value: str) -> str:
    address = value.strip().lower()
    if not _ADDRESS.fullmatch(address):
        raise ContactError(f"not a mail address: {value!r}")
    return address


def _field(key: str, value: str) -> str:
    value = value.strip()
    if _CONTROL.search(value):
        raise ContactError(f"{key}: no line breaks or control characters")
    if len(value) > MAX_FIELD:
        raise ContactError(f"{key}: at most {MAX_FIELD} characters")
    return value


async def resolve(tx: Txn, ref: str) -> int:
    """A contact by id ("12") or by one of its addresses."""
    ref = ref.strip()
    if ref.isdigit():
        found = await tx.value("SELECT id FROM contacts WHERE id = ?", (int(ref),))
    else:
        found = await tx.value("SELECT contact_id FROM contact_addresses WHERE address = ?", (ref.lower(),))
    if found is None:
        raise ContactError(f"no contact {ref!r}")
    return int(found)


async def owner(tx: Txn, address: str) -> int | None:
    value = await tx.value("SELECT contact_id FROM contact_addresses WHERE address = ?", (address,))
    return None if value is None else int(value)


# -- reading --------------------------------------------------------------------------------------


async def list_contacts(tx: Txn, *, search: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Contacts, most recently created first; `search` matches name, organization or an address."""
    rows = await tx.all(
        "SELECT c.id, c.name, c.organization, c.department, c.title,"
        " (SELECT group_concat(address, ' ') FROM (SELECT address FROM contact_addresses a"
        "   WHERE a.contact_id = c.id ORDER BY created_at, address)) AS addresses,"
        " (SELECT COUNT(*) FROM tickets t WHERE t.contact_id = c.id) AS ticket_count"
        " FROM contacts c WHERE ? IS NULL OR instr(lower(c.name), ?) OR instr(lower(c.organization), ?)"
        " OR EXISTS (SELECT 1 FROM contact_addresses a WHERE a.contact_id = c.id AND instr(a.address, ?))"
        " ORDER BY c.id DESC LIMIT ?",
        (search, *(3 * [(search or "").lower()]), limit),
    )
    return [
        {"id": r["id"], "name": r["name"], "organization": r["organization"], "department": r["department"],
         "title": r["title"], "addresses": (r["addresses"] or "").split(), "tickets": r["ticket_count"]}
        for r in rows
    ]


async def show(tx: Txn, contact_id: int) -> dict[str, Any]:
    """One contact with its addresses, phones, notes (newest first) and tickets."""
    row = await tx.one("SELECT * FROM contacts WHERE id = ?", (contact_id,))
    if row is None:
        raise ContactError(f"no contact {contact_id}")
    out: dict[str, Any] = {"id": row["id"], **{k: row[k] for k in FIELDS}, "language": row["language"],
                           "created_at": row["created_at"]}
    out["addresses"] = [r["address"] for r in await tx.all(
        "SELECT address FROM contact_addresses WHERE contact_id = ? ORDER BY created_at, address", (contact_id,))]
    out["phones"] = [{"phone": r["phone"], "label": r["label"]} for r in await tx.all(
        "SELECT phone, label FROM contact_phones WHERE contact_id = ? ORDER BY id", (contact_id,))]
    out["notes"] = [dict(r) for r in await tx.all(
        "SELECT id, author, text, created_at, updated_at FROM contact_notes WHERE contact_id = ?"
        " ORDER BY created_at DESC, id DESC", (contact_id,))]
    out["tickets"] = [dict(r) for r in await tx.all(
        "SELECT number, subject, status, updated_at FROM tickets WHERE contact_id = ? ORDER BY updated_at DESC",
        (contact_id,))]
    return out


# -- the contact's own fields ---------------------------------------------------------------------


async def update(tx: Txn, contact_id: int, values: dict[str, str | None]) -> None:
    """Set name, organization, department or title (None: leave as is)."""
    await resolve(tx, str(contact_id))
    changes = {k: _field(k, v) for k, v in values.items() if v is not None}
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ContactError(f"unknown field(s): {', '.join(sorted(unknown))}")
    for key in FIELDS:  # fixed column names, values bound
        if key in changes:
            await tx.execute(f"UPDATE contacts SET {key} = ? WHERE id = ?", (changes[key], contact_id))


async def add_phone(tx: Txn, contact_id: int, phone: str, label: str = "") -> None:
    await resolve(tx, str(contact_id))
    phone = " ".join(phone.split())
    if not _PHONE.fullmatch(phone) or sum(c.isdigit() for c in phone) < 3:
        raise ContactError(f"not a phone number: {phone!r}")
    await tx.execute(
        "INSERT OR IGNORE INTO contact_phones (contact_id, phone, label, created_at) VALUES (?, ?, ?, ?)",
        (contact_id, phone, _field("label", label), now_iso()),
    )


async def remove_phone(tx: Txn, contact_id: int, phone: str) -> None:
    if not await tx.rowcount("DELETE FROM contact_phones WHERE contact_id = ? AND phone = ?",
                             (contact_id, " ".join(phone.split()))):
        raise ContactError(f"contact {contact_id} has no phone {phone!r}")


# -- addresses ------------------------------------------------------------------------------------


async def add_address(tx: Txn, contact_id: int, address: str) -> None:
    """A new address for a contact; one that belongs to someone else is refused (see link --move)."""
    await resolve(tx, str(contact_id))
    address = clean_address(address)
    current = await owner(tx, address)
    if current == contact_id:
        return
    if current is not None:
        raise ContactError(
            f"{address} belongs to contact {current}; to move it (and its tickets) here: contacts link {address}"
            f" {contact_id} --move"
        )
    await tx.execute("INSERT INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
                     (address, contact_id, now_iso()))


async def link(tx: Txn, address: str, contact_id: int, *, move: bool, actor: str) -> dict[str, Any]:
    """The address becomes the contact's; from another contact only with move=True, which takes its tickets along."""
    await resolve(tx, str(contact_id))
    address = clean_address(address)
    current = await owner(tx, address)
    result: dict[str, Any] = {"address": address, "contact": contact_id, "from": current, "moved_tickets": [],
                              "removed_contact": None}
    if current == contact_id:
        return result
    if current is None:
        await add_address(tx, contact_id, address)
        return result
    if not move:
        raise ContactError(
            f"{address} belongs to contact {current}; add --move to move it and its tickets to contact {contact_id}"
        )
    await tx.execute("UPDATE contact_addresses SET contact_id = ? WHERE address = ?", (contact_id, address))
    # "Its tickets": those of the old contact where this address is the requester.
    moved = await tx.all(
        "UPDATE tickets SET contact_id = ? WHERE contact_id = ? AND id IN"
        " (SELECT ticket_id FROM ticket_parties WHERE address = ? AND role = 'requester') RETURNING id, number",
        (contact_id, current, address),
    )
    for row in moved:
        await tickets.event(tx, row["id"], actor, "ticket.contact_changed",
                            {"from": current, "to": contact_id, "address": address})
    result["moved_tickets"] = sorted(r["number"] for r in moved)
    if await _unused(tx, current):
        await tx.execute("DELETE FROM contacts WHERE id = ?", (current,))
        result["removed_contact"] = current
    return result


async def _unused(tx: Txn, contact_id: int) -> bool:
    """A contact left with nothing: no address, ticket, phone or note (an automatic one, emptied by a move)."""
    return not await tx.value(
        "SELECT EXISTS (SELECT 1 FROM contact_addresses WHERE contact_id = ?1)"
        " OR EXISTS (SELECT 1 FROM tickets WHERE contact_id = ?1)"
        " OR EXISTS (SELECT 1 FROM contact_phones WHERE contact_id = ?1)"
        " OR EXISTS (SELECT 1 FROM contact_notes WHERE contact_id = ?1)",
        (contact_id,),
    )


async def detach(tx: Txn, number: int, address: str, *, actor: str) -> dict[str, Any]:
    """Take a customer off a ticket: no longer a party (no mail, no threading by tag), nor its contact."""
    address = clean_address(address)
    ticket = await tx.one("SELECT id, contact_id FROM tickets WHERE number = ?", (number,))
    if ticket is None:
        raise ContactError(f"no ticket #{number}")
    contact_id = await owner(tx, address)
    party = await tx.value("SELECT role FROM ticket_parties WHERE ticket_id = ? AND address = ?", (ticket["id"], address))
    is_contact = contact_id is not None and contact_id == ticket["contact_id"]
    if party is None and not is_contact:
        raise ContactError(f"{address} is not a customer on ticket #{number}")
    await tx.execute("DELETE FROM ticket_parties WHERE ticket_id = ? AND address = ?", (ticket["id"], address))
    new_contact = ticket["contact_id"]
    if is_contact:
        # Another requester with the same or another contact takes over; else the ticket has none.
        new_contact = await tx.value(
            "SELECT a.contact_id FROM ticket_parties p JOIN contact_addresses a ON a.address = p.address"
            " WHERE p.ticket_id = ? AND p.role = 'requester' ORDER BY p.address LIMIT 1", (ticket["id"],),
        )
        await tx.execute("UPDATE tickets SET contact_id = ?, updated_at = ? WHERE id = ?",
                         (new_contact, now_iso(), ticket["id"]))
    await tickets.event(tx, ticket["id"], actor, "ticket.customer_detached",
                        {"address": address, "role": party, "contact": new_contact})
    return {"ticket": number, "address": address, "was": party or "contact", "contact": new_contact}


# -- notes ----------------------------------------------------------------------------------------


def _author(config: Config, author: str) -> str:
    if config.agent(author) is None:
        known = ", ".join(a.id for a in config.agents) or "none configured"
        raise ContactError(f"no agent {author!r} in the config (agents: {known})")
    return author


def _text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ContactError("a note needs some text")
    if len(text) > MAX_NOTE:
        raise ContactError(f"a note is at most {MAX_NOTE} characters")
    return text


async def add_note(tx: Txn, config: Config, contact_id: int, author: str, text: str) -> int:
    await resolve(tx, str(contact_id))
    now = now_iso()
    return await tx.execute(
        "INSERT INTO contact_notes (contact_id, author, text, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (contact_id, _author(config, author), _text(text), now, now),
    )


async def _own_note(tx: Txn, config: Config, note_id: int, author: str, verb: str) -> None:
    _author(config, author)
    written_by = await tx.value("SELECT author FROM contact_notes WHERE id = ?", (note_id,))
    if written_by is None:
        raise ContactError(f"no note {note_id}")
    if written_by != author:
        raise ContactError(f"note {note_id} was written by {written_by}; only its author may {verb} it")


async def edit_note(tx: Txn, config: Config, note_id: int, author: str, text: str) -> None:
    await _own_note(tx, config, note_id, author, "edit")
    await tx.execute("UPDATE contact_notes SET text = ?, updated_at = ? WHERE id = ?", (_text(text), now_iso(), note_id))


async def delete_note(tx: Txn, config: Config, note_id: int, author: str) -> None:
    await _own_note(tx, config, note_id, author, "delete")
    await tx.execute("DELETE FROM contact_notes WHERE id = ?", (note_id,))
