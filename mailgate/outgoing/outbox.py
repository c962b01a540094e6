"""Outbox rows as the domain changes them: agents' replies queued, held, released or cancelled; operators' requeues."""

from __future__ import annotations

import logging

from mailgate.config import OutboxConfig
from mailgate.outgoing.reply import queue_agent_reply
from mailgate.store import Txn, events
from mailgate.store import outbox as _rows
from mailgate.store.outbox import CUSTOMER_KINDS, Acted, NewMail, id_chunks, insert

log = logging.getLogger("mailgate.outbox")


async def cancel_pending(tx: Txn, ticket_id: int, agent: str | None) -> int:
    """Cancel the agent's replies that have not gone yet (queued or held); None = any agent's."""
    ids = await _rows.cancel_pending(tx, ticket_id, agent)
    if ids:
        await events.add(tx, ticket_id, f"agent:{agent}" if agent else "system", "reply.cancelled", {"outbox": ids})
    return len(ids)


async def release_held(tx: Txn, ticket_id: int, agent: str | None) -> int:
    """The agent confirmed: held replies go now."""
    count = await _rows.release_held(tx, ticket_id, agent)
    if count:
        await events.add(tx, ticket_id, f"agent:{agent}" if agent else "system", "reply.released", {"count": count})
    return count


async def requeue(tx: Txn, ids: list[int], actor: str) -> list[Acted]:
    """Send these rows now: failed ones again (e.g. after a relay fix), queued ones without their wait.

    last_error stays: the operator must still see why a row failed if it fails again. created_at
    starts again for a failed row, since outbox.max_age counts from it and the old age would fail
    the retry at once.
    """
    found = await _rows.requeue(tx, ids)
    for row in found:
        if row.ticket_id is not None:
            await events.add(tx, row.ticket_id, actor, "mail.requeued",
                             {"outbox": row.id, "kind": row.kind, "to": row.rcpt_to, "last_error": row.last_error})
        log.info("outbox.requeued id=%s rcpt=%r actor=%s last_error=%s", row.id, row.rcpt_to, actor, row.last_error)
    return found


async def cancel(tx: Txn, ids: list[int], actor: str) -> list[Acted]:
    """Never send these rows (queued or held; one being sent cannot be called back): kept as 'cancelled'."""
    found = await _rows.cancel(tx, ids)
    for row in found:
        if row.ticket_id is not None:
            await events.add(tx, row.ticket_id, actor, "mail.cancelled",
                             {"outbox": row.id, "kind": row.kind, "to": row.rcpt_to})
        log.info("outbox.cancelled id=%s rcpt=%r actor=%s", row.id, row.rcpt_to, actor)
    return found


def backoff(config: OutboxConfig, attempts: int) -> float:
    """Seconds before try number attempts+1: base, 2×base, 4×base ... at most retry_max."""
    return float(min(config.retry_base * (2 ** max(attempts - 1, 0)), config.retry_max))

__all__ = [
    "CUSTOMER_KINDS", "NewMail", "backoff", "cancel", "cancel_pending", "id_chunks", "insert", "queue_agent_reply",
    "release_held", "requeue",
]
