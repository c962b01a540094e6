"""Contacts: who a customer is (name, organization, addresses, phones), linking and detaching addresses, agents' notes."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from mailgate.config import Config
from mailgate.errors import Refused
from mailgate.store import Txn, events
from mailgate.store import contacts as store
from mailgate.store import parties as party_rows
from mailgate.store import tickets as ticket_store
from mailgate.store.contacts import FIELDS as FIELDS

_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\".]+(?:\.[^@\s<>()\[\],;:\".]+)+")
_PHONE = re.compile(r"\+?[0-9 ()./\-]{3,40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
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
        found = int(ref) if await store.exists(tx, int(ref)) else None
    else:
        found = await store.owner(tx, ref.lower())
    if found is None:
        raise ContactError(f"no contact {ref!r}")
    return found


async def owner(tx: Txn, address: str) -> int | None:
    return await store.owner(tx, address)


# -- reading --------------------------------------------------------------------------------------


async def list_contacts(tx: Txn, *, search: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Contacts, most recently created first; `search` matches name, organization or an address."""
    return [
        {"id": c.id, "name": c.name, "organization": c.organization, "department": c.department,
         "title": c.title, "addresses": list(c.addresses), "tickets": c.tickets}
        for c in await store.search(tx, search, limit)
    ]


async def show(tx: Txn, contact_id: int) -> dict[str, Any]:
    """One contact with its addresses, phones, notes (newest first) and tickets."""
    contact = await store.get(tx, contact_id)
    if contact is None:
        raise ContactError(f"no contact {contact_id}")
    return {
        "id": contact.id, "name": contact.name, "organization": contact.organization,
        "department": contact.department, "title": contact.title, "language": contact.language,
        "created_at": contact.created_at,
        "addresses": await store.addresses(tx, contact_id),
        "phones": [{"phone": p.phone, "label": p.label} for p in await store.phones(tx, contact_id)],
        "notes": [asdict(n) for n in await store.notes(tx, contact_id)],
        "tickets": [asdict(t) for t in await store.tickets(tx, contact_id)],
    }


# -- the contact's own fields ---------------------------------------------------------------------


async def update(tx: Txn, contact_id: int, values: dict[str, str | None]) -> None:
    """Set name, organization, department or title (None: leave as is)."""
    await resolve(tx, str(contact_id))
    changes = {k: _field(k, v) for k, v in values.items() if v is not None}
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ContactError(f"unknown field(s): {', '.join(sorted(unknown))}")
    await store.set_fields(tx, contact_id, changes)


async def add_phone(tx: Txn, contact_id: int, phone: str, label: str = "") -> None:
    await resolve(tx, str(contact_id))
    phone = " ".join(phone.split())
    if not _PHONE.fullmatch(phone) or sum(c.isdigit() for c in phone) < 3:
        raise ContactError(f"not a phone number: {phone!r}")
    await store.add_phone(tx, contact_id, phone, _field("label", label))


async def remove_phone(tx: Txn, contact_id: int, phone: str) -> None:
    if not await store.remove_phone(tx, contact_id, " ".join(phone.split())):
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
    await store.add_address(tx, contact_id, address)


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
    await store.move_address(tx, address, contact_id)
    # "Its tickets": those of the old contact where this address is the requester.
    moved = await ticket_store.move_requested_tickets(tx, address, current, contact_id)
    for ticket in moved:
        await events.add(tx, ticket.id, actor, "ticket.contact_changed",
                            {"from": current, "to": contact_id, "address": address})
    result["moved_tickets"] = sorted(t.number for t in moved)
    # An automatic contact emptied by the move (no address, ticket, phone or note) goes too.
    if await store.unused(tx, current):
        await store.delete(tx, current)
        result["removed_contact"] = current
    return result


async def detach(tx: Txn, number: int, address: str, *, actor: str) -> dict[str, Any]:
    """Take a customer off a ticket: no longer a party (no mail, no threading by tag), nor its contact."""
    address = clean_address(address)
    ticket = await store.ticket_owner(tx, number)
    if ticket is None:
        raise ContactError(f"no ticket #{number}")
    contact_id = await owner(tx, address)
    party = await party_rows.role_of(tx, ticket.id, address)
    is_contact = contact_id is not None and contact_id == ticket.contact_id
    if party is None and not is_contact:
        raise ContactError(f"{address} is not a customer on ticket #{number}")
    await party_rows.remove(tx, ticket.id, address)
    new_contact = ticket.contact_id
    if is_contact:
        # Another requester with the same or another contact takes over; else the ticket has none.
        new_contact = await store.first_requester_contact(tx, ticket.id)
        await ticket_store.update(tx, ticket.id, contact_id=new_contact)
    await events.add(tx, ticket.id, actor, "ticket.customer_detached",
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
    return await store.add_note(tx, contact_id, _author(config, author), _text(text))


async def _own_note(tx: Txn, config: Config, note_id: int, author: str, verb: str) -> None:
    _author(config, author)
    written_by = await store.note_author(tx, note_id)
    if written_by is None:
        raise ContactError(f"no note {note_id}")
    if written_by != author:
        raise ContactError(f"note {note_id} was written by {written_by}; only its author may {verb} it")


async def edit_note(tx: Txn, config: Config, note_id: int, author: str, text: str) -> None:
    await _own_note(tx, config, note_id, author, "edit")
    await store.edit_note(tx, note_id, _text(text))


async def delete_note(tx: Txn, config: Config, note_id: int, author: str) -> None:
    await _own_note(tx, config, note_id, author, "delete")
    await store.delete_note(tx, note_id)
