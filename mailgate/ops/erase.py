"""Erasing a contact (GDPR art. 17): their mail, files, spool bytes, names and addresses; an event stays on each ticket."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from mailgate.ops import contacts, retention, tickets
from mailgate.store import Txn

ERASED = "[erased]"


def placeholder(contact_id: int) -> str:
    return f"erased-{contact_id}@invalid"


@dataclass
class Erased:
    """What one erase changed; `hashes` are blobs no row names any more (files to remove after commit)."""

    contact: int
    placeholder: str
    tickets: int = 0
    messages: int = 0
    attachments: int = 0
    spool: int = 0
    outbox: int = 0
    events: int = 0
    hashes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = len(out.pop("hashes"))
        return out


class _Scrubber:
    """Replaces every known trace of the person (addresses, names, subjects) inside free text."""

    def __init__(self, addresses: list[str], words: list[str], replacement_address: str) -> None:
        self.address = replacement_address
        self._addresses = [re.compile(re.escape(a), re.IGNORECASE) for a in addresses if a]
        # Short names ("Al") would erase half the database's words; they are dropped from free text only.
        self._words = [re.compile(re.escape(w), re.IGNORECASE) for w in sorted(set(words), key=len, reverse=True)
                       if len(w.strip()) >= 3]

    def text(self, value: str | None) -> str | None:
        if not value:
            return value
        for pattern in self._addresses:
            value = pattern.sub(self.address, value)
        for pattern in self._words:
            value = pattern.sub(ERASED, value)
        return value

    def json_text(self, value: str | None) -> str | None:
        """JSON with every string inside scrubbed (the structure stays readable for the audit trail)."""
        if not value:
            return value
        try:
            data = json.loads(value)
        except ValueError:
            return self.text(value)
        return json.dumps(self._walk(data), ensure_ascii=False)

    def _walk(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, list):
            return [self._walk(v) for v in data]
        if isinstance(data, dict):
            return {self.text(str(k)): self._walk(v) for k, v in data.items()}
        return data


def _marks(values: list[Any]) -> str:
    return ",".join("?" for _ in values)


async def erase(tx: Txn, ref: str, *, actor: str = "cli") -> Erased:
    """Erase one contact in the caller's transaction; refused (ContactError) when there is no such contact."""
    contact_id = await contacts.resolve(tx, ref)
    # Freed pages are overwritten with zeros, so the person's bytes do not linger in the file.
    await tx.execute("PRAGMA secure_delete = ON")
    person = await tx.one("SELECT * FROM contacts WHERE id = ?", (contact_id,))
    assert person is not None
    fake = placeholder(contact_id)
    result = Erased(contact_id, fake)
    addresses = [r["address"] for r in await tx.all(
        "SELECT address FROM contact_addresses WHERE contact_id = ? AND address != ?", (contact_id, fake))]
    owned = [r["id"] for r in await tx.all("SELECT id FROM tickets WHERE contact_id = ?", (contact_id,))]

    messages = await _their_messages(tx, addresses, owned)
    names = [person["name"], person["organization"]]
    for address in addresses:  # the names they signed with; never an agent's, on replies to them
        names += [r["from_name"] for r in await tx.all(
            "SELECT DISTINCT from_name FROM messages WHERE lower(from_address) = ? AND direction = 'in'", (address,))]
    subjects = [r["subject"] for r in await tx.all(
        f"SELECT DISTINCT subject FROM messages WHERE id IN ({_marks(messages)})", messages)] if messages else []
    subjects += [r["subject"] for r in await tx.all(
        f"SELECT subject FROM tickets WHERE id IN ({_marks(owned)})", owned)] if owned else []
    scrub = _Scrubber(addresses, [*names, *(s for s in subjects if len(s) >= 8)], fake)

    touched = set(owned)
    if messages:
        touched |= {r["ticket_id"] for r in await tx.all(
            f"SELECT DISTINCT ticket_id FROM messages WHERE id IN ({_marks(messages)})", messages)}
        result.messages = len(messages)
        await _erase_messages(tx, messages, scrub, result)
    touched |= {r["ticket_id"] for r in await tx.all(
        f"SELECT DISTINCT ticket_id FROM ticket_parties WHERE address IN ({_marks(addresses)})", addresses)
    } if addresses else set()

    await _erase_spool(tx, addresses, scrub, result)
    await _erase_outbox(tx, addresses, owned, messages, result)
    await _erase_people(tx, contact_id, addresses, owned, fake, scrub)
    result.events = await _scrub_events(tx, sorted(touched), addresses, scrub)
    result.hashes = await retention.drop_unreferenced_blobs(tx, result.hashes)
    result.tickets = len(touched)
    for ticket_id in sorted(touched):
        await tickets.event(tx, ticket_id, actor, "contact.erased",
                            {"contact": contact_id, "text": "contact erased by operator"})
    return result


async def _their_messages(tx: Txn, addresses: list[str], owned: list[int]) -> list[int]:
    """Every message of their tickets, and every message from or to one of their addresses elsewhere."""
    found: set[int] = set()
    if owned:
        found |= {r["id"] for r in await tx.all(f"SELECT id FROM messages WHERE ticket_id IN ({_marks(owned)})", owned)}
    for address in addresses:
        # recipients is JSON of lowercased and as-written addresses: a case-blind substring catches both.
        rows = await tx.all(
            "SELECT id FROM messages WHERE lower(from_address) = ? OR instr(lower(recipients), ?)", (address, address))
        found |= {r["id"] for r in rows}
    return sorted(found)


async def _erase_messages(tx: Txn, ids: list[int], scrub: _Scrubber, result: Erased) -> None:
    marks = _marks(ids)
    rows = await tx.all(f"SELECT id, from_address, recipients, message_id, in_reply_to, defects FROM messages"
                        f" WHERE id IN ({marks})", ids)
    for r in rows:
        await tx.execute(
            "UPDATE messages SET subject = ?, text = ?, html = NULL, reply_text = ?, from_name = '',"
            " from_address = ?, recipients = ?, in_reply_to = ?, defects = ?, thread_detail = '' WHERE id = ?",
            (ERASED, ERASED, ERASED, scrub.text(r["from_address"]), scrub.json_text(r["recipients"]),
             scrub.text(r["in_reply_to"]), scrub.json_text(r["defects"]), r["id"]),
        )
        new_id = scrub.text(r["message_id"])
        if new_id != r["message_id"]:  # a Message-ID some mailers build from the sender's address
            await tx.execute("UPDATE OR IGNORE messages SET message_id = ? WHERE id = ?", (new_id, r["id"]))
            await tx.execute("UPDATE OR IGNORE message_ids SET message_id = ? WHERE message_id = ?",
                             (new_id, r["message_id"]))
            await tx.execute("DELETE FROM message_ids WHERE message_id = ?", (r["message_id"],))
    result.hashes = [r["sha256"] for r in await tx.all(
        f"SELECT DISTINCT sha256 FROM attachments WHERE message_row IN ({marks})", ids)]
    result.attachments = await tx.rowcount(f"DELETE FROM attachments WHERE message_row IN ({marks})", ids)
    # The wire bytes behind these messages hold everything the columns above held.
    result.spool += await tx.rowcount(
        f"UPDATE spool SET raw = X'', error = NULL WHERE message_row IN ({marks})"
        f" OR id IN (SELECT spool_id FROM messages WHERE id IN ({marks}))", [*ids, *ids])


async def _erase_spool(tx: Txn, addresses: list[str], scrub: _Scrubber, result: Erased) -> None:
    """Spool rows from them that made no message (dead, duplicates) lose their bytes; envelopes are scrubbed."""
    for address in addresses:
        rows = await tx.all(
            "SELECT id, mail_from, rcpt_to, length(raw) AS size FROM spool WHERE lower(mail_from) = ?"
            " OR instr(lower(rcpt_to), ?) OR instr(lower(CAST(raw AS TEXT)), ?)", (address, address, address))
        for r in rows:
            await tx.execute("UPDATE spool SET raw = X'', error = NULL, mail_from = ?, rcpt_to = ? WHERE id = ?",
                             (scrub.text(r["mail_from"]), scrub.text(r["rcpt_to"]), r["id"]))
            result.spool += 1 if r["size"] else 0


async def _erase_outbox(tx: Txn, addresses: list[str], owned: list[int], messages: list[int], result: Erased) -> None:
    """Mail to them, and every copy of their words (agents' notifications of their tickets), is dropped."""
    ids: set[int] = set()
    for address in addresses:
        ids |= {r["id"] for r in await tx.all(
            "SELECT id FROM outbox WHERE rcpt_to = ? OR instr(lower(CAST(raw AS TEXT)), ?)", (address, address))}
    if owned:
        ids |= {r["id"] for r in await tx.all(f"SELECT id FROM outbox WHERE ticket_id IN ({_marks(owned)})", owned)}
    if messages:
        ids |= {r["id"] for r in await tx.all(
            f"SELECT id FROM outbox WHERE message_row IN ({_marks(messages)})", messages)}
    if ids:
        found = sorted(ids)
        await tx.execute(f"DELETE FROM timers WHERE kind = 'outbox.release' AND ref IN ({_marks(found)})", found)
        result.outbox = await tx.rowcount(f"DELETE FROM outbox WHERE id IN ({_marks(found)})", found)


async def _erase_people(
    tx: Txn, contact_id: int, addresses: list[str], owned: list[int], fake: str, scrub: _Scrubber
) -> None:
    await tx.execute("UPDATE contacts SET name = '', organization = '', department = '', title = '', language = NULL"
                     " WHERE id = ?", (contact_id,))
    await tx.execute("DELETE FROM contact_phones WHERE contact_id = ?", (contact_id,))
    await tx.execute("DELETE FROM contact_notes WHERE contact_id = ?", (contact_id,))
    await tx.execute("DELETE FROM contact_addresses WHERE contact_id = ?", (contact_id,))
    await tx.execute("INSERT OR IGNORE INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
                     (fake, contact_id, "1970-01-01T00:00:00+00:00"))
    for address in addresses:
        await tx.execute("UPDATE OR IGNORE ticket_parties SET address = ? WHERE address = ?", (fake, address))
        await tx.execute("DELETE FROM ticket_parties WHERE address = ?", (address,))
        await tx.execute("UPDATE OR IGNORE sender_hours SET sender = ? WHERE sender = ?", (fake, address))
        await tx.execute("DELETE FROM sender_hours WHERE sender = ?", (address,))
        await tx.execute("UPDATE forwards SET address = ? WHERE address = ?", (fake, address))
    if owned:
        await tx.execute(f"UPDATE tickets SET subject = ? WHERE id IN ({_marks(owned)})", [ERASED, *owned])
    for r in await tx.all("SELECT ticket_id, trace FROM ticket_routing"):
        new = scrub.json_text(r["trace"])
        if new != r["trace"]:
            await tx.execute("UPDATE ticket_routing SET trace = ? WHERE ticket_id = ?", (new, r["ticket_id"]))
    for r in await tx.all("SELECT id, text FROM tasks"):
        new = scrub.text(r["text"])
        if new != r["text"]:
            await tx.execute("UPDATE tasks SET text = ? WHERE id = ?", (new, r["id"]))


async def _scrub_events(tx: Txn, ticket_ids: list[int], addresses: list[str], scrub: _Scrubber) -> int:
    """Events name the customer as actor ('customer:<address>') and quote addresses and subjects in data."""
    changed = 0
    rows = await tx.all(f"SELECT id, actor, data FROM events WHERE ticket_id IN ({_marks(ticket_ids)})",
                        ticket_ids) if ticket_ids else []
    for address in addresses:  # events elsewhere that name the address (a cc on someone else's ticket)
        rows += await tx.all("SELECT id, actor, data FROM events WHERE instr(lower(actor), ?) OR instr(lower(data), ?)",
                             (address, address))
    seen: set[int] = set()
    for r in rows:
        if r["id"] in seen:
            continue
        seen.add(r["id"])
        actor, data = scrub.text(r["actor"]), scrub.json_text(r["data"])
        if (actor, data) != (r["actor"], r["data"]):
            await tx.execute("UPDATE events SET actor = ?, data = ? WHERE id = ?", (actor, data, r["id"]))
            changed += 1
    return changed
