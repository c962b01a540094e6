"""Counts for health checks, metrics and `mailgate outbox status`: read-only, one snapshot each."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.store import Txn


@dataclass(frozen=True, slots=True)
class Waiting:
    """What systemctl status shows: mail waiting in the spool and outbox, and what failed."""

    spooled: int
    queued: int
    failed: int


async def waiting(tx: Txn) -> Waiting:
    row = await tx.one(
        "SELECT (SELECT COUNT(*) FROM spool WHERE state = 'received') AS spooled,"
        " (SELECT COUNT(*) FROM outbox WHERE state = 'queued') AS queued,"
        " (SELECT COUNT(*) FROM outbox WHERE state = 'failed') AS failed"
    )
    assert row is not None
    return Waiting(int(row["spooled"]), int(row["queued"]), int(row["failed"]))


async def spool_count(tx: Txn, state: str) -> int:
    return int(await tx.value("SELECT COUNT(*) FROM spool WHERE state = ?", (state,)) or 0)


async def outbox_by_state(tx: Txn) -> dict[str, int]:
    rows = await tx.all("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY state")
    return {r["state"]: int(r["n"]) for r in rows}


async def oldest_queued(tx: Txn) -> str | None:
    """created_at of the oldest queued outbox row."""
    value = await tx.value("SELECT MIN(created_at) FROM outbox WHERE state = 'queued'")
    return str(value) if value else None


async def imap_by_state(tx: Txn) -> dict[str, int]:
    rows = await tx.all("SELECT state, COUNT(*) AS n FROM imap_accounts GROUP BY state")
    return {r["state"]: int(r["n"]) for r in rows}


async def sla_breached(tx: Txn) -> dict[str, int]:
    row = await tx.one(
        "SELECT COUNT(first_response_breached) AS first_response, COUNT(resolution_breached) AS resolution"
        " FROM ticket_sla"
    )
    return {k: int(row[k]) if row else 0 for k in ("first_response", "resolution")}


# Tables counted by growing id, and the column each is labelled by: only these two are tallied.
_TALLIES = {("spool", "source"), ("tickets", "queue")}


async def added_since(tx: Txn, table: str, column: str, last_id: int) -> tuple[dict[str, int], int]:
    """Rows added after `last_id`, counted per label (NULL as ''), and the highest id seen.

    The spool holds every raw mail; counting it whole on each scrape would read every blob's
    pages (SQLite walks a row's overflow chain to reach columns after the blob).
    """
    if (table, column) not in _TALLIES:
        raise ValueError(f"not a tallied table: {table}.{column}")
    rows = await tx.all(
        f"SELECT COALESCE({column}, '') AS label, COUNT(*) AS n, MAX(id) AS top"
        f" FROM {table} WHERE id > ? GROUP BY label",
        (last_id,),
    )
    counts = {r["label"]: int(r["n"]) for r in rows}
    top = max([last_id, *(int(r["top"]) for r in rows)])
    return counts, top


async def data_version(tx: Txn) -> int:
    """SQLite's counter that changes when another connection commits (a CLI process queued mail).

    PostgreSQL has none; there every commit that queues work sends NOTIFY (store/pg.py), which wakes
    the daemon's runners, so the watch that polls this has nothing to find: a constant.
    """
    if tx.engine == "postgresql":
        return 0
    return int(await tx.value("PRAGMA data_version"))
