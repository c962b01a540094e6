"""What a ticket's customer side has seen, and the mailgate mails an agent answers: the texts an agent's words are checked against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailgate.store import Txn

SEEN_MESSAGES = 50  # the latest ones: an inline answer quotes the recent mails of a ticket
SEEN_CHARS = 100_000  # of each: a pasted 30 MB log is not what an answer quotes


@dataclass(frozen=True, slots=True)
class SentMail:
    """One mail mailgate wrote (a notification, an acknowledgement …), as the agent's client quotes it."""

    text: str
    subject: str
    from_address: str


@dataclass(frozen=True, slots=True)
class ThreadTexts:
    """The texts of one ticket that an agent's answer may quote."""

    seen: tuple[str, ...]  # the customer's mails (text, then reply text) and the replies that went out, newest first
    answered: tuple[SentMail, ...]  # mailgate's own mails, not replies, among the ones the agent answers


async def thread_texts(
    tx: Txn, ticket_id: int | None, answered_ids: Sequence[str], *,
    messages: int = SEEN_MESSAGES, chars: int = SEEN_CHARS,
) -> ThreadTexts | None:
    """The ticket's texts (each cut to `chars`, the latest `messages` of a kind), or None without a ticket."""
    if ticket_id is None:
        return None
    received = await tx.all(
        "SELECT substr(text, 1, ?) AS text, substr(reply_text, 1, ?) AS reply_text FROM messages"
        " WHERE ticket_id = ? AND direction = 'in' ORDER BY id DESC LIMIT ?",
        (chars, chars, ticket_id, messages))
    replies = await tx.all(
        "SELECT substr(text, 1, ?) AS text FROM outbox WHERE ticket_id = ? AND kind = 'reply' AND state != 'cancelled'"
        " ORDER BY id DESC LIMIT ?", (chars, ticket_id, messages))
    seen = [str(r[k] or "") for r in received for k in ("text", "reply_text")] + [str(r["text"] or "") for r in replies]
    answered = []
    if answered_ids:
        marks = ", ".join("?" for _ in answered_ids)
        answered = await tx.all(f"SELECT text, subject, from_address FROM outbox WHERE message_id IN ({marks})"
                                " AND kind != 'reply'", list(answered_ids))
    return ThreadTexts(
        tuple(seen),
        tuple(SentMail(str(r["text"] or ""), str(r["subject"] or ""), str(r["from_address"] or "")) for r in answered),
    )
