"""The messages table: the one place a message row is written, with its Message-ID and files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mailgate.store import Txn

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


async def insert(tx: Txn, message: NewMessage) -> int:
    """Write the message, its files and (unless told not to) its Message-ID; return the message row."""
    m = message
    recipients = {key: [dict(a) for a in value] for key, value in m.recipients.items()}
    row = await tx.execute(
        "INSERT INTO messages (ticket_id, spool_id, direction, message_id, content_key, in_reply_to,"
        " from_name, from_address, recipients, subject, sent_at, text, html, reply_text, kind, bounce_of,"
        " defects, imported, thread_rule, thread_detail, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            m.ticket_id, m.spool_id, m.direction, m.message_id, m.content_key, m.in_reply_to,
            m.from_name, m.from_address, json.dumps(recipients, ensure_ascii=False), m.subject, m.sent_at,
            m.text, m.html, m.reply_text, m.kind, m.bounce_of, json.dumps(list(m.defects)), int(m.imported),
            m.thread_rule, m.thread_detail, m.created_at,
        ),
    )
    if m.thread_by_id:
        await tx.execute(
            "INSERT OR IGNORE INTO message_ids (message_id, ticket_id, outbound) VALUES (?, ?, 0)",
            (m.message_id, m.ticket_id),
        )
    for attachment in m.attachments:
        await tx.execute(
            "INSERT OR IGNORE INTO blobs (sha256, size, created_at) VALUES (?, ?, ?)",
            (attachment.sha256, attachment.size, m.created_at),
        )
    if m.attachments:
        await tx.executemany(
            "INSERT INTO attachments (message_row, sha256, filename, content_type, size, inline, content_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(row, a.sha256, a.filename, a.content_type, a.size, int(a.inline), a.content_id) for a in m.attachments],
        )
    return row
