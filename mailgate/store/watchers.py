"""The ticket_watchers table: which agents follow a ticket and what each has read."""

from __future__ import annotations

from dataclasses import dataclass

from mailgate.store import Txn


@dataclass(frozen=True, slots=True)
class Watch:
    """One agent's view of a ticket; `unread` also when they never read it."""

    agent: str
    following: bool
    unread: bool
    read_at: str | None
    unfollowed: bool = False  # said [unfollow]; not following and not this: never said either


async def acted(tx: Txn, ticket_id: int, agent_id: str) -> None:
    """Read now, and followed unless the agent unfollowed it before (a ticket only marked read is followed now)."""
    now = tx.now_iso()
    await tx.execute(
        "INSERT INTO ticket_watchers (ticket_id, agent, following, unread, read_at, updated_at)"
        " VALUES (?, ?, 1, 0, ?, ?) ON CONFLICT (ticket_id, agent) DO UPDATE SET unread = 0,"
        " following = COALESCE(ticket_watchers.following, 1),"
        " read_at = excluded.read_at, updated_at = excluded.updated_at",
        (ticket_id, agent_id, now, now),
    )


async def is_following(tx: Txn, ticket_id: int, agent_id: str) -> bool | None:
    """Whether the agent follows the ticket; None when they never said (never acted, or only marked it read)."""
    value = await tx.value("SELECT following FROM ticket_watchers WHERE ticket_id = ? AND agent = ?",
                           (ticket_id, agent_id))
    return None if value is None else bool(value)


async def set_following(tx: Txn, ticket_id: int, agent_id: str, following: bool) -> None:
    now = tx.now_iso()
    await tx.execute(
        "INSERT INTO ticket_watchers (ticket_id, agent, following, unread, read_at, updated_at)"
        " VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (ticket_id, agent) DO UPDATE SET following = excluded.following,"
        " updated_at = excluded.updated_at",
        (ticket_id, agent_id, int(following), now, now),
    )


async def mark(tx: Txn, ticket_id: int, agent_id: str, *, read: bool) -> None:
    """Read or unread again, following untouched; the last read time is kept when marked unread.

    A new row leaves following NULL: 0 is an explicit [unfollow], which would silence the agent.
    """
    now = tx.now_iso()
    await tx.execute(
        "INSERT INTO ticket_watchers (ticket_id, agent, following, unread, read_at, updated_at)"
        " VALUES (?, ?, NULL, ?, ?, ?) ON CONFLICT (ticket_id, agent) DO UPDATE SET unread = excluded.unread,"
        " read_at = COALESCE(excluded.read_at, ticket_watchers.read_at), updated_at = excluded.updated_at",
        (ticket_id, agent_id, int(not read), now if read else None, now),
    )


async def customer_wrote(tx: Txn, ticket_id: int) -> None:
    """New customer mail: unread again for everyone who had read the ticket."""
    await tx.execute("UPDATE ticket_watchers SET unread = 1, updated_at = ? WHERE ticket_id = ? AND unread = 0",
                     (tx.now_iso(), ticket_id))


async def followers(tx: Txn, ticket_id: int) -> tuple[list[str], set[str]]:
    """Agent ids following the ticket (sorted), and those who said [unfollow] (NULL: neither)."""
    rows = await tx.all("SELECT agent, following FROM ticket_watchers WHERE ticket_id = ? ORDER BY agent",
                        (ticket_id,))
    return [r["agent"] for r in rows if r["following"]], {r["agent"] for r in rows if r["following"] == 0}


def _watch(agent: str, following: object, unread: object, read_at: str | None) -> Watch:
    return Watch(agent, bool(following), bool(unread) or read_at is None, read_at, following == 0)


async def watch(tx: Txn, ticket_id: int, agent_id: str) -> Watch | None:
    row = await tx.one("SELECT following, unread, read_at FROM ticket_watchers WHERE ticket_id = ? AND agent = ?",
                       (ticket_id, agent_id))
    return None if row is None else _watch(agent_id, row["following"], row["unread"], row["read_at"])


async def watches(tx: Txn, ticket_id: int) -> list[Watch]:
    """Every agent's view of the ticket, by agent id."""
    rows = await tx.all("SELECT agent, following, unread, read_at FROM ticket_watchers WHERE ticket_id = ?"
                        " ORDER BY agent", (ticket_id,))
    return [_watch(r["agent"], r["following"], r["unread"], r["read_at"]) for r in rows]


def unread_sql(agent_param: str = "?") -> str:
    """A SQL expression (for a ticket aliased t): 1 when the agent has not read it since the customer wrote."""
    return (f"COALESCE((SELECT CASE WHEN w.unread = 1 OR w.read_at IS NULL THEN 1 ELSE 0 END"
            f" FROM ticket_watchers w WHERE w.ticket_id = t.id AND w.agent = {agent_param}), 1)")
