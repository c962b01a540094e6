"""Questions agent mail asks of the outbox table: which of our mails it answers, and when a reply leaves."""

from __future__ import annotations

from collections.abc import Sequence

from mailgate.store import Txn


async def in_reply_to_of(tx: Txn, message_id: str, ticket_id: int) -> str | None:
    """What our mail with this Message-ID answered (a notification keeps the customer message it is about)."""
    value = await tx.value("SELECT in_reply_to FROM outbox WHERE message_id = ? AND ticket_id = ?",
                           (message_id, ticket_id))
    return str(value) if value else None


async def not_before(tx: Txn, outbox_id: int) -> str:
    """When the queued mail may leave (the undo delay of an agent's reply)."""
    return str(await tx.value("SELECT not_before FROM outbox WHERE id = ?", (outbox_id,)))


async def kind_of(tx: Txn, message_id: str) -> str | None:
    value = await tx.value("SELECT kind FROM outbox WHERE message_id = ? LIMIT 1", (message_id,))
    return None if value is None else str(value)


async def any_of_kinds(tx: Txn, message_ids: Sequence[str], kinds: Sequence[str]) -> bool:
    """Whether one of these Message-IDs is a mail of ours of one of these kinds."""
    ids = ", ".join("?" for _ in message_ids)
    marks = ", ".join("?" for _ in kinds)
    return bool(await tx.value(f"SELECT 1 FROM outbox WHERE message_id IN ({ids}) AND kind IN ({marks}) LIMIT 1",
                               (*message_ids, *kinds)))


async def subject_of(tx: Txn, message_id: str) -> str | None:
    """The subject of our mail with this Message-ID (bare or in angle brackets)."""
    value = await tx.value("SELECT subject FROM outbox WHERE message_id IN (?, ?) ORDER BY id DESC LIMIT 1",
                           (message_id, f"<{message_id}>"))
    return None if value is None else str(value)


async def count_since(tx: Txn, kind: str, rcpt_to: str, since: str) -> int:
    """How many mails of this kind went to this address since then."""
    return int(await tx.value("SELECT COUNT(*) FROM outbox WHERE kind = ? AND rcpt_to = ? AND created_at > ?",
                              (kind, rcpt_to, since)) or 0)
