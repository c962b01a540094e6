"""Merge one customer's duplicate tickets: messages, notes, tags and Message-IDs move to the survivor."""

from __future__ import annotations

import hashlib
import secrets

from mailgate.config import AgentConfig, Config
from mailgate.ops import agent as agent_ops
from mailgate.ops import lifecycle, sla, tickets
from mailgate.ops.agent import Change, OpError
from mailgate.outgoing import guard as loops
from mailgate.outgoing import notices as outbound
from mailgate.store import Txn, messages, now_iso

MERGED = "merged"
LINK = "merged-into"


def who(agent: AgentConfig | None) -> tuple[str, str]:
    """(event actor, name shown in notes) for an agent's mail or the CLI."""
    return (agent_ops.actor(agent), agent.name) if agent is not None else ("cli", "the command line")


async def system_note(tx: Txn, config: Config, ticket_id: int, text: str, *, actor: str) -> int:
    """An internal note written by mailgate itself (merge, split, forward): never sent to the customer."""
    now = now_iso()
    message_id = f"note.{secrets.token_hex(8)}@{config.message_id_domain}"
    row = await messages.insert(tx, messages.NewMessage(
        ticket_id=ticket_id, direction="note", message_id=message_id,
        content_key=hashlib.sha256(f"{message_id}\n{text}".encode()).hexdigest(), from_name=config.gateway.name,
        text=text, reply_text=text, thread_rule="system", thread_detail=actor, created_at=now, thread_by_id=False,
    ))
    await tickets.event(tx, ticket_id, actor, "note.added", {"message": row, "system": True})
    return row


async def merge(tx: Txn, config: Config, ticket_id: int, into_number: int, agent: AgentConfig | None) -> Change:
    """Ticket `ticket_id` joins ticket #into_number (the survivor); refused for two customers' tickets."""
    actor, name = who(agent)
    source = await agent_ops.ticket_row(tx, ticket_id)
    target = await tx.one("SELECT * FROM tickets WHERE number = ?", (into_number,))
    here, there = source["number"], into_number
    if target is None:
        raise OpError(f"[merge:#{there}]: no ticket #{there}")
    if target["id"] == source["id"]:
        raise OpError(f"[merge:#{there}]: a ticket cannot be merged into itself")
    for row in (source, target):
        if row["status"] == MERGED:
            into = await tx.value("SELECT number FROM tickets WHERE id = ?", (row["merged_into"],))
            raise OpError(f"[merge:#{there}]: #{row['number']} is already merged into #{into}")
    if source["contact_id"] is None or source["contact_id"] != target["contact_id"]:
        # Two customers' mail in one ticket would show each one the other's words: never.
        raise OpError(f"[merge:#{there}]: #{here} and #{there} belong to different customers;"
                      " only one customer's tickets can be merged")
    survivor = int(target["id"])
    moved = await tx.rowcount("UPDATE messages SET ticket_id = ? WHERE ticket_id = ?", (survivor, ticket_id))
    # Later mail answering anything of the old thread now threads into the survivor by header.
    await tx.execute("UPDATE message_ids SET ticket_id = ? WHERE ticket_id = ?", (survivor, ticket_id))
    await tx.execute("INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) SELECT ?, tag FROM ticket_tags"
                     " WHERE ticket_id = ?", (survivor, ticket_id))
    await tx.execute("DELETE FROM ticket_tags WHERE ticket_id = ?", (ticket_id,))
    # The old ticket's people take part in the survivor (copied: its subject tag keeps working for them).
    # A sender still waiting for an agent's confirmation stays waiting on the survivor too.
    await tx.execute("INSERT OR IGNORE INTO ticket_parties (ticket_id, address, role) SELECT ?, address,"
                     " CASE role WHEN 'pending' THEN 'pending' ELSE 'cc' END"
                     " FROM ticket_parties WHERE ticket_id = ?", (survivor, ticket_id))
    await tx.execute("UPDATE forwards SET ticket_id = ? WHERE ticket_id = ?", (survivor, ticket_id))
    await tx.execute("INSERT OR IGNORE INTO ticket_links (ticket_id, other_id, kind, created_at) VALUES (?, ?, ?, ?)",
                     (ticket_id, survivor, LINK, now_iso()))
    await lifecycle.set_status(tx, config, ticket_id, MERGED, actor=actor, reason=f"merged into #{there}")
    await tx.execute("UPDATE tickets SET merged_into = ?, updated_at = ? WHERE id = ?", (survivor, now_iso(), ticket_id))
    if target["status"] in sla.DONE and source["status"] not in sla.DONE:
        # The open question of the old ticket is now the survivor's: it must not stay resolved.
        await lifecycle.set_status(tx, config, survivor, lifecycle.OPEN, actor=actor, reason=f"#{here} merged in")
    await tx.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (now_iso(), survivor))
    await tickets.event(tx, ticket_id, actor, "ticket.merged", {"into": there, "messages": moved})
    await tickets.event(tx, survivor, actor, "ticket.merged_in", {"from": here, "messages": moved})
    await system_note(tx, config, ticket_id, f"{name} merged this ticket into #{there}; its messages are there now.",
                      actor=actor)
    await system_note(tx, config, survivor, f"{name} merged #{here} \"{source['subject']}\" into this ticket"
                      f" ({moved} messages).", actor=actor)
    await _tell_customer(tx, config, survivor, here, source["subject"])
    return Change("merge", f"#{here} merged into #{there} ({moved} messages moved)")


async def _tell_customer(tx: Txn, config: Config, survivor: int, old_number: int, old_subject: str) -> None:
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, survivor)
    if not info.customer_address or loops.is_machine_address(info.customer_address):
        await tickets.event(tx, survivor, "system", "merge_notice.suppressed", {"reason": "no-customer-address"})
        return
    await mailer.queue_mail(
        tx, info, kind="merged", template="merged", to_name=info.customer_name, to_address=info.customer_address,
        language=mailer.customer_language(info), auto_kind="auto-generated",
        data=mailer.data(info, outcome={"other_number": old_number, "other_subject": old_subject,
                                        "other_tag": f"[{config.gateway.ticket_tag}{old_number}]"}),
    )
