"""Who follows a ticket and what each agent has read: acting follows and reads, customer mail makes it unread."""

from __future__ import annotations

from typing import Any

from mailgate.store import Txn, events
from mailgate.store import watchers as store
from mailgate.store.watchers import customer_wrote as customer_wrote
from mailgate.store.watchers import unread_sql as unread_sql


async def acted(tx: Txn, ticket_id: int, agent_id: str) -> None:
    """The agent did something on the ticket: it is read, and followed unless they said [unfollow]."""
    await store.acted(tx, ticket_id, agent_id)


async def set_following(tx: Txn, ticket_id: int, agent_id: str, following: bool) -> bool:
    """[follow] / [unfollow]; returns whether it changed anything."""
    before = await store.is_following(tx, ticket_id, agent_id)
    await store.set_following(tx, ticket_id, agent_id, following)
    if before is None or before != following:
        await events.add(tx, ticket_id, f"agent:{agent_id}", "ticket.followed" if following else "ticket.unfollowed",
                            {"agent": agent_id})
        return True
    return False


async def mark(tx: Txn, ticket_id: int, agent_id: str, *, read: bool) -> None:
    """Mark read (as acting would, without following) or unread again; following stays as it was."""
    await store.mark(tx, ticket_id, agent_id, read=read)


async def state(tx: Txn, ticket_id: int, agent_id: str) -> dict[str, Any]:
    """This agent's view of the ticket: following, unread (never read counts as unread), read_at."""
    found = await store.watch(tx, ticket_id, agent_id)
    if found is None:
        return {"following": False, "unread": True, "read_at": None}
    return {"following": found.following, "unread": found.unread, "read_at": found.read_at}


async def watchers_of(tx: Txn, ticket_id: int) -> list[dict[str, Any]]:
    return [{"agent": w.agent, "following": w.following, "unfollowed": w.unfollowed, "unread": w.unread,
             "read_at": w.read_at}
            for w in await store.watches(tx, ticket_id)]
