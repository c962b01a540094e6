"""Who takes part in a ticket: the requester, Cc parties (capped), and senders an agent must confirm first."""

from __future__ import annotations

import logging
import re

from mailgate.config import Config
from mailgate.errors import Refused
from mailgate.mail import identity
from mailgate.models import ParsedMail
from mailgate.outgoing import guard as loops
from mailgate.store import Txn, events, watchers
from mailgate.store import parties as store
from mailgate.store.parties import SAMPLE as SAMPLE
from mailgate.store.parties import Joined as Joined

log = logging.getLogger("mailgate.parties")

# Roles in ticket_parties. 'requester' and 'cc' receive agents' replies; 'pending' is someone who
# wrote on the ticket without being asked in: their mail is kept, they receive nothing until an
# agent answers with [cc:add …]. Knowing a Message-ID of the thread proves nothing: the
# acknowledgement's travels in every reply the customer sends, to whoever they forward it to.
RECEIVING = ("requester", "cc")
PENDING = "pending"
# A bare addr-spec; anything else in a Cc header (groups, garbage) never becomes a party.
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]{1,64}@[a-z0-9](?:[a-z0-9.\-]{0,251}[a-z0-9])?\.[a-z0-9\-]{2,63}")


def may_be_party(config: Config, address: str) -> bool:
    """People only: never mailgate's own addresses, an agent, or a null/noreply/daemon sender."""
    address = address.strip().lower()
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        return False
    if loops.base(address) in {a.lower() for a in config.gateway.addresses}:
        return False
    if any(address == a.lower() for agent in config.agents for a in agent.addresses):
        return False
    return not loops.is_machine_address(address)


async def agent_part(tx: Txn, config: Config, ticket_id: int, address: str) -> str | None:
    """How a configured agent's address takes part in a ticket (its assignee, an agent of its queue
    or any agent when it has none, a follower), or None: a ticket's own agents name it by "[#N]" from any mail client, as its
    customer does; another queue's agent who never touched it is a stranger to it like anyone."""
    agent = identity.agent_by_address(config, address)
    if agent is None:
        return None
    row = await store.placement(tx, ticket_id)
    if row is None:
        return None
    if row.assignee == agent.id:
        return f"agent {agent.id}, the assignee"
    queue = config.queue(row.queue) if row.queue else None
    if queue is not None and agent in config.queue_members(queue):
        return f"agent {agent.id} of queue {queue.name}"
    if queue is None:
        return f"agent {agent.id} (the ticket is in no queue: every agent works it)"
    if await watchers.is_following(tx, ticket_id, agent.id):
        return f"agent {agent.id}, who follows it"
    return None


async def roles(tx: Txn, ticket_id: int) -> dict[str, str]:
    return await store.roles(tx, ticket_id)


async def speaks_for(tx: Txn, ticket_id: int, address: str) -> bool:
    """Whether a sender may change the ticket's life (wake, reopen, follow up): a party, or the contact's own address."""
    address = address.strip().lower()
    if not address:
        return False
    if (await roles(tx, ticket_id)).get(address) in RECEIVING:
        return True
    return await store.is_contact_address(tx, ticket_id, address)


async def join(
    tx: Txn, config: Config, ticket_id: int, mail: ParsedMail, *, new_ticket: bool,
    known: dict[str, str] | None = None,
) -> Joined:
    """The parties an inbound mail brings: its Cc people when a party wrote it, itself pending when a stranger did.

    known: the ticket's parties (address: role) when the caller knows them (it opened the ticket).
    """
    known = dict(known) if known is not None else await roles(tx, ticket_id)
    sender = mail.from_[0].address.strip().lower() if mail.from_ else ""
    trusted = new_ticket or known.get(sender) in RECEIVING
    pending: tuple[str, ...] = ()
    if not trusted and sender and may_be_party(config, sender):
        if await store.is_contact_address(tx, ticket_id, sender):
            await store.put(tx, ticket_id, sender, "cc")
            known[sender] = "cc"
            trusted = True
        else:
            await store.put(tx, ticket_id, sender, PENDING)
            pending = (sender,)
            await events.add(tx, ticket_id, f"customer:{sender}", "party.pending",
                                {"address": sender, "message_id": mail.message_id})
            log.info("parties.pending ticket=%s address=%s reason=not a party of the ticket", ticket_id, sender)
    cap = config.tickets.max_cc_parties
    wanted = [a for a in dict.fromkeys(c.address.strip().lower() for c in mail.cc)
              if a != sender and known.get(a) not in RECEIVING and may_be_party(config, a)]
    if not trusted:
        if wanted:
            await events.add(tx, ticket_id, "system", "party.cc_ignored",
                                {"from": sender, "count": len(wanted), "addresses": wanted[:SAMPLE]})
        return Joined(pending=pending, ignored_cc=len(wanted), cap=cap)
    room = max(cap - sum(1 for role in known.values() if role == "cc"), 0)
    added, left_out = tuple(wanted[:room]), tuple(wanted[room:])
    for address in added:
        await store.put(tx, ticket_id, address, "cc")
    if left_out:
        await events.add(tx, ticket_id, "system", "party.cc_capped",
                            {"cap": cap, "left_out": len(left_out), "addresses": list(left_out[:SAMPLE])})
        log.warning("parties.cc_capped ticket=%s cap=%s added=%s left_out=%s", ticket_id, cap, len(added), len(left_out))
    return Joined(added=added, left_out=left_out, cap=cap)


async def change(tx: Txn, config: Config, ticket_id: int, add: tuple[str, ...], remove: tuple[str, ...],
                 actor: str) -> str:
    """An agent's [cc:add …] / [cc:remove …]: confirm a pending sender or anyone else; take a Cc party off."""
    known = await roles(tx, ticket_id)
    done: list[str] = []
    for address in add:
        if not may_be_party(config, address):
            raise Refused(f"{address} cannot be a party (ours, an agent's, or a no-reply address)")
        if known.get(address) in RECEIVING:
            done.append(f"{address} already receives replies")
            continue
        await store.put(tx, ticket_id, address, "cc")
        await events.add(tx, ticket_id, actor, "party.confirmed", {"address": address, "was": known.get(address)})
        log.info("parties.confirmed ticket=%s address=%s by=%s", ticket_id, address, actor)
        done.append(f"{address} receives replies from now on")
    for address in remove:
        role = known.get(address)
        if role == "requester":
            raise Refused(f"{address} is the requester; move the ticket to another contact instead")
        if role is None:
            done.append(f"{address} was not a party")
            continue
        await store.remove(tx, ticket_id, address)
        await events.add(tx, ticket_id, actor, "party.removed", {"address": address, "was": role})
        done.append(f"{address} no longer receives replies")
    return ", ".join(done)
