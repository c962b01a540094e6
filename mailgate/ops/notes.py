"""An agent's internal note on a ticket: stored, never sent to the customer; the ticket's other agents are told."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailgate.config import AgentConfig, Config
from mailgate.ops.base import add_message
from mailgate.outgoing import notices as outbound
from mailgate.store import Txn


async def add_note(
    tx: Txn, config: Config, ticket_id: int, agent: AgentConfig, text: str, *, message_id: str, subject: str = "",
    full_text: str | None = None, spool_id: int | None = None, content_key: str | None = None,
    attachments: Sequence[Any] = (), sent_at: str | None = None,
) -> int:
    """The note (text: the agent's words; full_text: the whole mail, when it came by mail); its message row."""
    row = await add_message(
        tx, ticket_id, agent, direction="note", subject=subject, text=text if full_text is None else full_text,
        reply_text=text, message_id=message_id, spool_id=spool_id, content_key=content_key,
        attachments=attachments, sent_at=sent_at,
    )
    if text:
        mailer = outbound.mailer_for(tx, config)
        await mailer.notify_note(tx, await mailer.ticket(tx, ticket_id), agent, text)
    return row
