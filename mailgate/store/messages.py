"""The messages table: the one place a message row is written, with its Message-ID and files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mailgate.store import Txn, blobs

NO_RECIPIENTS: Mapping[str, Sequence[Mapping[str, str]]] = {"to": (), "cc": (), "reply_to": ()}


class StoredFile(Protocol):
    """What an attachment row needs; the bytes themselves live in the blob folder."""

    @property
    def filename(self) -> str | None: ...
    @property
    def content_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def inline(self) -> bool: ...
    @property
    def content_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One message on a ticket: a customer's mail ('in'), mailgate's or an agent's ('out', 'agent'), a note."""

    ticket_id: int
    direction: str  # in | out | agent | note
    message_id: str
    content_key: str  # sha256 of the body: the same mail with other trace headers is a duplicate
    thread_rule: str  # how it found its ticket: token | header | subject-tag | new | system | outbound
    created_at: str
    kind: str = "message"
    thread_detail: str = ""
    spool_id: int | None = None
    in_reply_to: str | None = None
    from_name: str = ""
    from_address: str = ""
    recipients: Mapping[str, Sequence[Mapping[str, str | None]]] = field(default_factory=lambda: dict(NO_RECIPIENTS))
    subject: str = ""
    sent_at: str | None = None
    text: str = ""
    html: str | None = None
    reply_text: str = ""
    bounce_of: str | None = None
    defects: Sequence[str] = ()
    imported: bool = False
    attachments: Sequence[StoredFile] = ()
    # Its Message-ID threads later replies to this ticket; the first ticket to store an ID keeps it.
    thread_by_id: bool = True


@dataclass(frozen=True, slots=True)
class MessageTrace:
    """The columns of a message that may name its people beyond its text."""

    id: int
    from_address: str
    recipients: str  # JSON
    message_id: str
    in_reply_to: str | None
    defects: str  # JSON


async def index_message_id(tx: Txn, message_id: str, ticket_id: int, *, outbound: bool) -> None:
    """A Message-ID that threads later replies to the ticket; the first ticket to store an ID keeps it."""
    await tx.execute(
        "INSERT INTO message_ids (message_id, ticket_id, outbound) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (message_id, ticket_id, int(outbound)),
    )


_COLUMNS = (
    "ticket_id, spool_id, direction, message_id, content_key, in_reply_to, from_name, from_address, recipients,"
    " subject, sent_at, text, html, reply_text, kind, bounce_of, defects, imported, thread_rule, thread_detail,"
    " created_at"
)
_VALUES = "(" + ", ".join("?" for _ in _COLUMNS.split(",")) + ")"


def _text(value: str) -> str:
    """A NUL in decoded mail text (broken senders write them) becomes U+FFFD, as PostgreSQL's text
    must: so both engines keep the same words, and an agent's mail client never gets a NUL."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _values(m: NewMessage) -> tuple[Any, ...]:
    recipients = {key: [dict(a) for a in value] for key, value in m.recipients.items()}
    return (
        m.ticket_id, m.spool_id, m.direction, m.message_id, m.content_key, m.in_reply_to,
        _text(m.from_name), m.from_address, json.dumps(recipients, ensure_ascii=False), _text(m.subject), m.sent_at,
        _text(m.text), None if m.html is None else _text(m.html), _text(m.reply_text), m.kind, m.bounce_of,
        json.dumps(list(m.defects)), int(m.imported), m.thread_rule, m.thread_detail, m.created_at,
    )


async def insert_sent(tx: Txn, sent: Sequence[NewMessage]) -> dict[str, int]:
    """Several of our sent mails (no files, their Message-IDs indexed when queued) in one statement.

    Their message rows by Message-ID, which is unique among our own mail.
    """
    if not sent:
        return {}
    assert all(not m.attachments and not m.thread_by_id for m in sent), "insert() writes files and Message-IDs"
    rows = await tx.all(
        f"INSERT INTO messages ({_COLUMNS}) VALUES {', '.join(_VALUES for _ in sent)} RETURNING id, message_id",
        [value for m in sent for value in _values(m)],
    )
    return {str(r["message_id"]): int(r["id"]) for r in rows}


async def insert(tx: Txn, message: NewMessage) -> int:
    """Write the message, its files and (unless told not to) its Message-ID; return the message row.

    A customer's mail ('in') always threads by its Message-ID: a trigger on messages indexes it.
    """
    m = message
    assert m.thread_by_id or m.direction != "in", "a customer's mail is always indexed by its Message-ID"
    row = await tx.execute(f"INSERT INTO messages ({_COLUMNS}) VALUES {_VALUES}", _values(m))
    if m.thread_by_id and m.direction != "in":
        await index_message_id(tx, m.message_id, m.ticket_id, outbound=False)
    for attachment in m.attachments:
        await blobs.record(tx, attachment.sha256, attachment.size, m.created_at)
    if m.attachments:
        await tx.executemany(
            "INSERT INTO attachments (message_row, sha256, filename, content_type, size, inline, content_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(row, a.sha256, a.filename, a.content_type, a.size, int(a.inline), a.content_id) for a in m.attachments],
        )
    return row


@dataclass(frozen=True, slots=True)
class Message:
    """One stored message, as the operations on tickets read it."""

    id: int
    ticket_id: int
    direction: str
    message_id: str
    from_name: str
    from_address: str
    subject: str
    sent_at: str | None
    created_at: str
    text: str
    reply_text: str


def _message(row: Any) -> Message:
    return Message(
        id=int(row["id"]), ticket_id=int(row["ticket_id"]), direction=row["direction"], message_id=row["message_id"],
        from_name=row["from_name"] or "", from_address=row["from_address"] or "", subject=row["subject"] or "",
        sent_at=row["sent_at"], created_at=row["created_at"], text=row["text"] or "",
        reply_text=row["reply_text"] or "",
    )


async def latest_inbound(tx: Txn, ticket_id: int) -> Message | None:
    """The customer's newest message on the ticket (a deleted one is not shown again)."""
    row = await tx.one("SELECT * FROM messages WHERE ticket_id = ? AND direction = 'in' AND deleted_at IS NULL"
                       " ORDER BY id DESC LIMIT 1", (ticket_id,))
    return None if row is None else _message(row)


async def inbound(tx: Txn, ticket_id: int, *, row_id: int | None = None, message_id: str | None = None) -> Message | None:
    """A customer message of the ticket, by its row or by its Message-ID (the newest with it)."""
    if row_id is not None:
        row = await tx.one("SELECT * FROM messages WHERE id = ? AND ticket_id = ? AND direction = 'in'",
                           (row_id, ticket_id))
    else:
        row = await tx.one("SELECT * FROM messages WHERE ticket_id = ? AND message_id = ? AND direction = 'in'"
                           " ORDER BY id DESC LIMIT 1", (ticket_id, message_id))
    return None if row is None else _message(row)


async def count_inbound(tx: Txn, ticket_id: int, *, besides: int) -> int:
    """How many customer messages the ticket has besides this one."""
    return int(await tx.value("SELECT COUNT(*) FROM messages WHERE ticket_id = ? AND direction = 'in' AND id != ?",
                              (ticket_id, besides)) or 0)


async def of_ticket(tx: Txn, ticket_id: int, directions: Sequence[str]) -> list[Message]:
    """The ticket's messages of these directions, oldest first; deleted ones are left out of the thread."""
    marks = ", ".join("?" for _ in directions)
    rows = await tx.all(f"SELECT * FROM messages WHERE ticket_id = ? AND direction IN ({marks})"
                        " AND deleted_at IS NULL ORDER BY id",
                        (ticket_id, *directions))
    return [_message(r) for r in rows]


async def move_all(tx: Txn, from_ticket: int, to_ticket: int) -> int:
    """Every message of one ticket, and the Message-IDs that thread into it, onto another (a merge); how many."""
    moved = await tx.rowcount("UPDATE messages SET ticket_id = ? WHERE ticket_id = ?", (to_ticket, from_ticket))
    await tx.execute("UPDATE message_ids SET ticket_id = ? WHERE ticket_id = ?", (to_ticket, from_ticket))
    return moved


async def move_one(tx: Txn, message: Message, to_ticket: int) -> None:
    """One message (with its files, which hang on its row) and its Message-ID onto another ticket (a split)."""
    await tx.execute("UPDATE messages SET ticket_id = ? WHERE id = ?", (to_ticket, message.id))
    await tx.execute("UPDATE message_ids SET ticket_id = ? WHERE message_id = ? AND ticket_id = ?",
                     (to_ticket, message.message_id, message.ticket_id))


async def set_task(tx: Txn, row_id: int, task_id: int) -> None:
    """The message answers this task."""
    await tx.execute("UPDATE messages SET task_id = ? WHERE id = ?", (task_id, row_id))


async def subject_of(tx: Txn, message_id: str) -> str | None:
    """The subject of a message we received with this Message-ID (bare or in angle brackets)."""
    value = await tx.value("SELECT subject FROM messages WHERE message_id IN (?, ?) ORDER BY id DESC LIMIT 1",
                           (message_id, f"<{message_id}>"))
    return None if value is None else str(value)


async def said_since(tx: Txn, ticket_id: int, from_address: str, text: str, since: str) -> bool:
    """Whether this agent's address sent these very words to the ticket since then."""
    return bool(await tx.value(
        "SELECT 1 FROM messages WHERE ticket_id = ? AND direction = 'agent' AND from_address = ? AND reply_text = ?"
        " AND created_at > ? LIMIT 1", (ticket_id, from_address, text, since),
    ))


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" for _ in values)


async def blank(tx: Txn, trace: MessageTrace, text: str) -> None:
    """Every free-text column becomes `text`; the address columns take the trace's (already scrubbed) values."""
    await tx.execute(
        "UPDATE messages SET subject = ?, text = ?, html = NULL, reply_text = ?, from_name = '',"
        " from_address = ?, recipients = ?, in_reply_to = ?, defects = ?, thread_detail = '' WHERE id = ?",
        (text, text, text, trace.from_address, trace.recipients, trace.in_reply_to, trace.defects, trace.id),
    )


async def rename_message_id(tx: Txn, row: int, old: str, new: str) -> None:
    """A Message-ID rewritten on the message and in the threading index; a clash keeps the old row's."""
    # "A clash keeps the old" as a condition (not SQLite's UPDATE OR IGNORE), so both engines run it.
    await tx.execute(
        "UPDATE messages SET message_id = ? WHERE id = ? AND NOT EXISTS (SELECT 1 FROM messages o"
        " WHERE o.message_id = ? AND o.content_key = messages.content_key)", (new, row, new))
    await tx.execute(
        "UPDATE message_ids SET message_id = ? WHERE message_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM message_ids o WHERE o.message_id = ?)", (new, old, new))
    await tx.execute("DELETE FROM message_ids WHERE message_id = ?", (old,))


async def drop_attachments(tx: Txn, ids: Sequence[int]) -> tuple[int, list[str]]:
    """Delete the messages' attachment rows; (rows deleted, the distinct sha256s they named)."""
    marks = _marks(ids)
    hashes = [r["sha256"] for r in await tx.all(
        f"SELECT DISTINCT sha256 FROM attachments WHERE message_row IN ({marks})", ids)]
    return await tx.rowcount(f"DELETE FROM attachments WHERE message_row IN ({marks})", ids), hashes


async def spool_rows_of(tx: Txn, ids: Sequence[int]) -> list[int]:
    """The spool rows these messages were parsed from."""
    return [r["spool_id"] for r in await tx.all(
        f"SELECT spool_id FROM messages WHERE id IN ({_marks(ids)}) AND spool_id IS NOT NULL", ids)]


async def delete(tx: Txn, ids: Sequence[int]) -> None:
    """Delete message rows (their attachments, and links to them from spool and outbox, must be gone first)."""
    marks = _marks(ids)
    await tx.execute(f"UPDATE messages SET spool_id = NULL WHERE id IN ({marks})", ids)
    await tx.execute(f"DELETE FROM messages WHERE id IN ({marks})", ids)
