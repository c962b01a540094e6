"""An agent's reply to the customer: to the requester with the ticket's Cc parties, after outbox.send_delay."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from mailgate.outgoing import compose
from mailgate.outgoing import guard as loops
from mailgate.outgoing.writer import TicketInfo, Writer
from mailgate.store import Txn, events
from mailgate.store import outbox as rows
from mailgate.store import ticket_facts as view

log = logging.getLogger("mailgate.outbound")


async def queue_agent_reply(
    tx: Txn, w: Writer, ticket_id: int, agent: str, text: str, *, delay: float | None = None,
    files: tuple[compose.File, ...] = (),
) -> int:
    """An agent's reply (with the files they attached), sent after outbox.send_delay unless cancelled or held."""
    wait = w.config.outbox.send_delay if delay is None else delay
    return await agent_reply(w, tx, ticket_id, agent, text, not_before=tx.now() + timedelta(seconds=wait), files=files)


async def agent_reply(
    w: Writer, tx: Txn, ticket_id: int, agent_id: str, text: str, *, not_before: datetime,
    files: tuple[compose.File, ...] = (),
) -> int:
    info = await w.ticket(tx, ticket_id)
    if not info.customer_address:
        raise ValueError(f"ticket #{info.number} has no customer address to answer")
    agent = w.config.agent(agent_id)
    cc, left_out = await reply_recipients(w, tx, info)
    shown = f"{agent.name if agent else agent_id} ({w.config.gateway.name})"
    data = w.data(info, agent_name=agent.name if agent else agent_id, agent_id=agent_id, reply_text=text)
    outbox_id = await w.queue_mail(
        tx, info, kind="reply", template="reply", to_name=info.customer_name, to_address=info.customer_address,
        language=w.customer_language(info), automatic=False, agent=agent_id, not_before=not_before,
        data=data, from_name=shown, cc=tuple(("", a) for a in cc), files=files,
    )
    # One row per envelope recipient (the outbox's unit), all of one composition: a reply with
    # many Cc parties once cost a full render and MIME build per copy on the event loop.
    if cc:
        first = await rows.get(tx, outbox_id)
        if first is None:
            raise LookupError(f"outbox row {outbox_id} is gone within its own transaction")
        for address in cc:
            await w.copy_to(tx, info, first, address)
    actor = f"agent:{agent_id}"
    if left_out:
        cap = w.config.tickets.max_reply_recipients
        await events.add(tx, ticket_id, actor, "reply.recipients_capped",
                         {"outbox": outbox_id, "cap": cap, "left_out": len(left_out), "addresses": left_out[:10]})
        log.warning("outbound.reply_recipients_capped ticket=%s cap=%s left_out=%s", info.number, cap, len(left_out))
    await events.add(tx, ticket_id, actor, "reply.queued",
                     {"outbox": outbox_id, "not_before": not_before.isoformat(), "cc": cc,
                      "attachments": [f.name for f in files]})
    return outbox_id


async def reply_recipients(w: Writer, tx: Txn, info: TicketInfo) -> tuple[list[str], list[str]]:
    """The Cc parties an answer goes to, and those past tickets.max_reply_recipients (the customer counts one)."""
    cc = await reply_cc(w, tx, info)
    room = max(w.config.tickets.max_reply_recipients - 1, 0)
    return cc[:room], cc[room:]


async def reply_cc(w: Writer, tx: Txn, info: TicketInfo) -> list[str]:
    """The ticket's Cc parties an answer goes to: people only, never an agent or mailgate itself."""
    out = []
    for stored in await view.cc_parties(tx, info.id):
        address = stored.lower()
        if (address == info.customer_address.lower() or address in w.guard.agent_addresses
                or loops.base(address) in w.guard.own_addresses or loops.is_machine_address(address)):
            continue
        out.append(address)
    return out
