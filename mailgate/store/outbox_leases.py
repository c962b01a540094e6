"""The sender's claims on outbox rows: leased to one daemon (node), taken over once a lease runs out.

Several daemons may share one database. A row being sent names its node (claimed_by) and the time
its claim ends (lease_until); a start takes back only its own node's rows, and another daemon
takes a row over only when the lease ran out (its holder died mid-batch). Portable SQL; only the
row locks PostgreSQL's concurrent claimers skip need the engine's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mailgate.clock import iso
from mailgate.store import Txn
from mailgate.store.outbox import OutboxRow, from_row

# Another node's claim whose lease ran out, or one made before leases existed (no lease, no node).
# This node's own claims are its live workers' (its dead life's went back at start): a clock
# stepped forward past their lease must not send them twice.
_EXPIRED = "state = 'sending' AND (lease_until IS NULL OR lease_until <= ?) AND (claimed_by IS NULL OR claimed_by != ?)"


def _skip_locked(tx: Txn) -> str:
    """PostgreSQL: rows another daemon's open claim holds are passed over, not waited for."""
    return " FOR UPDATE SKIP LOCKED" if tx.engine == "postgresql" else ""


def _locked(tx: Txn) -> str:
    """PostgreSQL: the rows stay ours until COMMIT (no lease may be taken over between read and write)."""
    return " FOR UPDATE" if tx.engine == "postgresql" else ""


async def any_due(tx: Txn, node: str, now: datetime) -> bool:
    """Mail due to go, or a dead daemon's claim to take over."""
    stamp = iso(now)
    return bool(await tx.value(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'queued' AND not_before <= ?)"
        f" OR EXISTS (SELECT 1 FROM outbox WHERE {_EXPIRED})", (stamp, stamp, node),
    ))


async def mine_in_flight(tx: Txn, node: str) -> bool:
    return bool(await tx.value("SELECT 1 FROM outbox WHERE state = 'sending' AND claimed_by = ? LIMIT 1", (node,)))


async def take_back(tx: Txn, node: str) -> int:
    """This node's rows left 'sending' by its previous life (killed): queued again at once.

    They may or may not have reached the relay: sent again, the relay may see one twice, never
    zero times. Another node's claims are left alone, however old: a live daemon is sending them.
    """
    return await tx.rowcount(
        "UPDATE outbox SET state = 'queued', lease_until = NULL WHERE state = 'sending' AND claimed_by = ?", (node,)
    )


async def expire(tx: Txn, node: str, now: datetime) -> dict[int, str | None]:
    """Other nodes' claims whose lease ran out (their daemon died mid-batch) queued again; row id → the node
    that held it.

    claim_batch's transaction runs this first, so such a row goes with the next batch, its
    attempt counted again (the dead daemon may or may not have handed it to the relay).
    """
    rows = await tx.all(
        f"UPDATE outbox SET state = 'queued', lease_until = NULL WHERE {_EXPIRED} RETURNING id, claimed_by",
        (iso(now), node),
    )
    return {int(r["id"]): r["claimed_by"] for r in rows}


async def claim_batch(tx: Txn, node: str, now: datetime, lease_until: datetime, limit: int) -> list[OutboxRow]:
    """Up to `limit` due rows, oldest due first, marked 'sending' by `node` with one more attempt counted.

    With expire first in the same transaction, a row whose lease ran out is taken like any due
    row. One claim statement: a row is claimed by one UPDATE or not at all, so two
    workers or daemons never take the same row. A recipient with mail in another batch (any
    node's) waits for it: one person's mail arrives in the order it was written (an agent's
    "Done" confirmations, a customer's acknowledgement before the reply).
    """
    found = await tx.all(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_by = ?, lease_until = ?"
        " WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' AND not_before <= ?"
        " AND rcpt_to NOT IN (SELECT rcpt_to FROM outbox WHERE state = 'sending')"
        f" ORDER BY not_before, id LIMIT ?{_skip_locked(tx)})"
        " RETURNING *, (SELECT number FROM tickets WHERE tickets.id = outbox.ticket_id) AS ticket_number",
        (node, iso(lease_until), iso(now), limit),
    )
    # RETURNING gives no order: send in the order they fell due.
    return sorted((from_row(r) for r in found), key=lambda row: (row.not_before, row.id))


async def held(tx: Txn, node: str, batch: Sequence[OutboxRow]) -> set[int]:
    """Which rows of the batch this claim still holds: 'sending', by this node, at the attempt it counted.

    A row whose lease ran out may have been taken over (and counted again) by another daemon:
    its outcome is that claim's to record, not ours.
    """
    if not batch:
        return set()
    marks = ", ".join("?" for _ in batch)
    rows = await tx.all(
        f"SELECT id, attempts FROM outbox WHERE id IN ({marks}) AND state = 'sending' AND claimed_by = ?{_locked(tx)}",
        (*(row.id for row in batch), node),
    )
    counted = {int(r["id"]): int(r["attempts"]) for r in rows}
    return {row.id for row in batch if counted.get(row.id) == row.attempts}


async def unclaim(tx: Txn, node: str, batch: Sequence[OutboxRow]) -> None:
    """Rows this claim holds never handed to the relay (the sender is stopping): queued again, the attempt not
    counted."""
    ids = await held(tx, node, batch)
    if ids:
        await tx.execute(
            "UPDATE outbox SET state = 'queued', attempts = attempts - 1, lease_until = NULL"
            f" WHERE id IN ({', '.join('?' for _ in ids)})", list(ids),
        )
        tx.touch("outbox")
