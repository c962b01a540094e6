"""Erasing a contact (GDPR art. 17): their mail, files, spool bytes, names and addresses; an event stays on each ticket."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mailgate.ops import contacts
from mailgate.store import Txn, assignment, events, forwards, search, storms, tasks
from mailgate.store import contacts as contact_rows
from mailgate.store import erase as store
from mailgate.store import messages as message_rows
from mailgate.store import outbox as outbox_rows
from mailgate.store import parties as party_rows
from mailgate.store import spool as spool_rows
from mailgate.store import tickets as ticket_rows
from mailgate.store.blobs import drop_unreferenced

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


async def erase(tx: Txn, ref: str, *, actor: str = "cli") -> Erased:
    """Erase one contact in the caller's transaction; refused (ContactError) when there is no such contact."""
    contact_id = await contacts.resolve(tx, ref)
    await store.secure_delete(tx)
    person = await contact_rows.get(tx, contact_id)
    assert person is not None
    fake = placeholder(contact_id)
    result = Erased(contact_id, fake)
    addresses = await store.other_addresses(tx, contact_id, fake)
    owned = await store.owned_tickets(tx, contact_id)

    messages = await _their_messages(tx, addresses, owned)
    names = [person.name, person.organization]
    for address in addresses:  # the names they signed with; never an agent's, on replies to them
        names += await store.names_signed(tx, address)
    subjects = await store.message_subjects(tx, messages) + await store.ticket_subjects(tx, owned)
    scrub = _Scrubber(addresses, [*names, *(s for s in subjects if len(s) >= 8)], fake)

    touched = set(owned)
    if messages:
        touched |= await store.tickets_of_messages(tx, messages)
        result.messages = len(messages)
        await _erase_messages(tx, messages, scrub, result)
    touched |= await store.tickets_with_parties(tx, addresses)

    await _erase_spool(tx, addresses, scrub, result)
    await _erase_outbox(tx, addresses, owned, messages, result)
    await _erase_people(tx, contact_id, addresses, owned, fake, scrub)
    result.events = await _scrub_events(tx, sorted(touched), addresses, scrub)
    result.hashes = await drop_unreferenced(tx, result.hashes)
    result.tickets = len(touched)
    await search.forget_deleted(tx)
    for ticket_id in sorted(touched):
        await events.add(tx, ticket_id, actor, "contact.erased",
                            {"contact": contact_id, "text": "contact erased by operator"})
    return result


async def _their_messages(tx: Txn, addresses: list[str], owned: list[int]) -> list[int]:
    """Every message of their tickets, and every message from or to one of their addresses elsewhere."""
    found = await store.messages_of_tickets(tx, owned)
    for address in addresses:
        found |= await store.messages_naming(tx, address)
    return sorted(found)


async def _erase_messages(tx: Txn, ids: list[int], scrub: _Scrubber, result: Erased) -> None:
    for trace in await store.message_traces(tx, ids):
        await message_rows.blank(tx, replace(
            trace, from_address=scrub.text(trace.from_address) or "", recipients=scrub.json_text(trace.recipients) or "",
            in_reply_to=scrub.text(trace.in_reply_to), defects=scrub.json_text(trace.defects) or "",
        ), ERASED)
        new_id = scrub.text(trace.message_id)
        if new_id and new_id != trace.message_id:  # a Message-ID some mailers build from the sender's address
            await message_rows.rename_message_id(tx, trace.id, trace.message_id, new_id)
    result.attachments, result.hashes = await message_rows.drop_attachments(tx, ids)
    result.spool += await spool_rows.blank_of_messages(tx, ids)


async def _erase_spool(tx: Txn, addresses: list[str], scrub: _Scrubber, result: Erased) -> None:
    """Spool rows from them that made no message (dead, duplicates) lose their bytes; envelopes are scrubbed."""
    for address in addresses:
        for trace in await store.spool_naming(tx, address):
            await spool_rows.blank(tx, trace.id, scrub.text(trace.mail_from) or "", scrub.text(trace.rcpt_to) or "")
            result.spool += 1 if trace.size else 0


async def _erase_outbox(tx: Txn, addresses: list[str], owned: list[int], messages: list[int], result: Erased) -> None:
    """Mail to them, and every copy of their words (agents' notifications of their tickets), is dropped."""
    ids: set[int] = set()
    for address in addresses:
        ids |= await store.outbox_naming(tx, address)
    ids |= await store.outbox_of_tickets(tx, owned)
    ids |= await store.outbox_of_messages(tx, messages)
    if ids:
        result.outbox = await outbox_rows.drop(tx, sorted(ids))


async def _erase_people(
    tx: Txn, contact_id: int, addresses: list[str], owned: list[int], fake: str, scrub: _Scrubber
) -> None:
    await contact_rows.blank(tx, contact_id, fake)
    for address in addresses:
        # The address becomes the placeholder as a ticket party, in the sender-rate window and on forwards.
        await party_rows.rename_address(tx, address, fake)
        await storms.rename_sender(tx, address, fake)
        await forwards.rename_address(tx, address, fake)
    await ticket_rows.set_subjects(tx, owned, ERASED)
    for trace in await store.routing_traces(tx):
        new = scrub.json_text(trace.text)
        if new != trace.text:
            await assignment.set_trace_text(tx, trace.id, new)
    for task in await store.task_texts(tx):
        new = scrub.text(task.text)
        if new != task.text:
            await tasks.set_text(tx, task.id, new)


async def _scrub_events(tx: Txn, ticket_ids: list[int], addresses: list[str], scrub: _Scrubber) -> int:
    """Events name the customer as actor ('customer:<address>') and quote addresses and subjects in data."""
    changed = 0
    found = await store.events_of_tickets(tx, ticket_ids)
    for address in addresses:  # events elsewhere that name the address (a cc on someone else's ticket)
        found += await store.events_naming(tx, address)
    seen: set[int] = set()
    for event in found:
        if event.id in seen:
            continue
        seen.add(event.id)
        actor, data = scrub.text(event.text), scrub.json_text(event.extra)
        if (actor, data) != (event.text, event.extra):
            await events.rewrite(tx, event.id, actor, data)
            changed += 1
    return changed
