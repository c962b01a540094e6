"""A ticket's whole correspondence for print and export: each message with its wire bytes and files listed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mailgate.store import Txn
from mailgate.store.blobs import shown_name


@dataclass(frozen=True, slots=True)
class FileInfo:
    name: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One message of a ticket, numbered 1..n in the order `tickets show` lists them (by row)."""

    number: int
    direction: str  # in | out | agent | note
    message_id: str
    in_reply_to: str | None
    from_name: str
    from_address: str
    to: tuple[str, ...]  # "Name <address>" or the address
    cc: tuple[str, ...]
    subject: str
    date: str | None  # the Date header (received mail) or when it was sent
    created_at: str
    text: str
    kind: str
    files: tuple[FileInfo, ...]
    # The wire bytes: the spool's for received mail, the outbox's for sent mail; None when retention
    # has dropped them or there never were any (a note written with the CLI).
    raw: bytes | None
    # The From names this agent, but the mail did not prove it: a reader must not take it as theirs.
    unproven_agent: str | None = None


def _people(recipients: Any, key: str) -> tuple[str, ...]:
    found = []
    for person in (recipients or {}).get(key) or ():
        name, address = str(person.get("name") or ""), str(person.get("address") or "")
        if address:
            found.append(f"{name} <{address}>" if name else address)
    return tuple(found)


async def thread(tx: Txn, ticket_id: int) -> list[ThreadMessage]:
    """Every message of the ticket, oldest first, with its wire bytes where they are kept.

    A message an agent deleted is left out, as `tickets show` leaves it out: the numbers match.
    """
    rows = await tx.all(
        "SELECT m.*, s.raw AS spool_raw,"
        " (SELECT o.raw FROM outbox o WHERE o.ticket_id = m.ticket_id AND o.message_row = m.id LIMIT 1) AS sent_raw"
        " FROM messages m LEFT JOIN spool s ON s.id = m.spool_id WHERE m.ticket_id = ? AND m.deleted_at IS NULL"
        " ORDER BY m.created_at, m.id",  # as `tickets show` lists them
        (ticket_id,),
    )
    files: dict[int, list[FileInfo]] = {}
    for a in await tx.all(
        "SELECT a.* FROM attachments a JOIN messages m ON m.id = a.message_row WHERE m.ticket_id = ?"
        " ORDER BY a.message_row, a.id", (ticket_id,),
    ):
        files.setdefault(a["message_row"], []).append(FileInfo(shown_name(a), a["content_type"] or "", int(a["size"])))
    found = []
    for number, m in enumerate(rows, 1):
        try:
            recipients = json.loads(m["recipients"] or "{}")
        except ValueError:
            recipients = {}
        raw = m["sent_raw"] if m["direction"] == "out" else m["spool_raw"]
        found.append(ThreadMessage(
            number=number, direction=m["direction"], message_id=m["message_id"], in_reply_to=m["in_reply_to"],
            from_name=m["from_name"] or "", from_address=m["from_address"] or "", to=_people(recipients, "to"),
            cc=_people(recipients, "cc"), subject=m["subject"] or "", date=m["sent_at"], created_at=m["created_at"],
            text=m["text"] or "", kind=m["kind"], files=tuple(files.get(m["id"], ())),
            raw=bytes(raw) if raw else None, unproven_agent=m["unproven_agent"],
        ))
    return found
