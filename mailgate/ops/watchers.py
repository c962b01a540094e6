"""Who follows a ticket and what each agent has read: acting follows and reads, customer mail makes it unread."""

from __future__ import annotations

from typing import Any

from mailgate.config import AgentConfig, Config
from mailgate.ops import tickets
from mailgate.store import Txn, now_iso


async def acted(tx: Txn, ticket_id: int, agent_id: str) -> None:
    """The agent did something on the ticket: it is read, and followed unless they said [unfollow]."""
    now = now_iso()
    await tx.execute(
        "INSERT INTO ticket_watchers (ticket_id, agent, following, unread, read_at, updated_at)"
        " VALUES (?, ?, 1, 0, ?, ?) ON CONFLICT (ticket_id, agent) DO UPDATE SET unread = 0,"
        " read_at = excluded.read_at, updated_at = excluded.updated_at",
        (ticket_id, agent_id, now, now),
    )


async def set_following(tx: Txn, ticket_id: int, agent_id: str, following: bool) -> bool:
    """[follow] / [unfollow]; returns whether it changed anything."""
    before = await tx.value("SELECT following FROM ticket_watchers WHERE ticket_id = ? AND agent = ?",
                            (ticket_id, agent_id))
    now = now_iso()
    await tx.execute(
        "INSERT INTO ticket_watchers (ticket_id, agent, following, unread, read_at, updated_at)"
        " VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (ticket_id, agent) DO UPDATE SET following = excluded.following,"
        " updated_at = excluded.updated_at",
        (ticket_id, agent_id, int(following), now, now),
    )
    if before is None or bool(before) != following:
        await tickets.event(tx, ticket_id, f"agent:{agent_id}", "ticket.followed" if following else "ticket.unfollowed",
                            {"agent": agent_id})
        return True
    return False


async def mark(tx: Txn, ticket_id: int, agent_id: str, *, read: bool) -> None:
    """Mark read (as acting would, without following) or unread again."""
    now = now_iso()
    await tx.execute(
        "INSERT INTO ticket_watchers (ticket_id, agent, following, unread, read_at, updated_at)"
        " VALUES (?, ?, 0, ?, ?, ?) ON CONFLICT (ticket_id, agent) DO UPDATE SET unread = excluded.unread,"
        " read_at = COALESCE(excluded.read_at, ticket_watchers.read_at), updated_at = excluded.updated_at",
        (ticket_id, agent_id, int(not read), now if read else None, now),
    )


async def customer_wrote(tx: Txn, ticket_id: int) -> None:
    """New customer mail: unread again for everyone who had read the ticket."""
    await tx.execute("UPDATE ticket_watchers SET unread = 1, updated_at = ? WHERE ticket_id = ? AND unread = 0",
                     (now_iso(), ticket_id))


async def following(tx: Txn, config: Config, ticket_id: int) -> list[AgentConfig]:
    """Agents following the ticket (configured, not away), in the order they started."""
    rows = await tx.all("SELECT agent FROM ticket_watchers WHERE ticket_id = ? AND following = 1 ORDER BY agent",
                        (ticket_id,))
    agents = [config.agent(r["agent"]) for r in rows]
    return [a for a in agents if a is not None and not a.away]


async def unfollowed(tx: Txn, ticket_id: int) -> set[str]:
    rows = await tx.all("SELECT agent FROM ticket_watchers WHERE ticket_id = ? AND following = 0", (ticket_id,))
    return {r["agent"] for r in rows}


async def recipients(
    tx: Txn, config: Config, ticket_id: int, assignee: str | None, base: list[AgentConfig]
) -> list[AgentConfig]:
    """Who hears about a ticket: the usual agents (assignee, else the queue) and its followers.

    An agent who said [unfollow] is left out unless they are the assignee: the ticket is theirs.
    """
    out: dict[str, AgentConfig] = {}
    dropped = await unfollowed(tx, ticket_id)
    for agent in [*base, *await following(tx, config, ticket_id)]:
        if agent.id in dropped and agent.id != assignee:
            continue
        out.setdefault(agent.id, agent)
    return list(out.values())


async def state(tx: Txn, ticket_id: int, agent_id: str) -> dict[str, Any]:
    """This agent's view of the ticket: following, unread (never read counts as unread), read_at."""
    row = await tx.one("SELECT following, unread, read_at FROM ticket_watchers WHERE ticket_id = ? AND agent = ?",
                       (ticket_id, agent_id))
    if row is None:
        return {"following": False, "unread": True, "read_at": None}
    return {"following": bool(row["following"]), "unread": bool(row["unread"]) or row["read_at"] is None,
            "read_at": row["read_at"]}


async def watchers_of(tx: Txn, ticket_id: int) -> list[dict[str, Any]]:
    rows = await tx.all("SELECT agent, following, unread, read_at FROM ticket_watchers WHERE ticket_id = ?"
                        " ORDER BY agent", (ticket_id,))
    return [{"agent": r["agent"], "following": bool(r["following"]), "unread": bool(r["unread"]) or r["read_at"] is None,
             "read_at": r["read_at"]} for r in rows]


def unread_sql(agent_param: str = "?") -> str:
    """A SQL expression (for a ticket aliased t): 1 when the agent has not read it since the customer wrote."""
    return (f"COALESCE((SELECT CASE WHEN w.unread = 1 OR w.read_at IS NULL THEN 1 ELSE 0 END"
            f" FROM ticket_watchers w WHERE w.ticket_id = t.id AND w.agent = {agent_param}), 1)")
