"""Merge one customer's duplicate tickets: messages, notes, tags and Message-IDs move to the survivor."""

from __future__ import annotations

from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.models import CLOSED_STATUSES, TicketStatus
from mailgate.ops import delete, lifecycle
from mailgate.ops.base import Change, system_note, who
from mailgate.outgoing import guard as loops
from mailgate.outgoing import notices as outbound
from mailgate.store import Txn, events, forwards, links, messages, parties, tags
from mailgate.store import tickets as ticket_store

LINK = "merged-into"


async def merge(tx: Txn, config: Config, ticket_id: int, into_number: int, agent: AgentConfig | None) -> Change:
    """Ticket `ticket_id` joins ticket #into_number (the survivor); refused for two customers' tickets."""
    actor, name = who(agent)
    there = into_number
    source = await delete.live(tx, ticket_id, f"[merge:#{there}]")  # as every operation on a deleted ticket
    target = await ticket_store.by_number(tx, into_number)
    here = source.number
    if target is None:
        raise Refused(f"[merge:#{there}]: no ticket #{there}")
    if target.id == source.id:
        raise Refused(f"[merge:#{there}]: a ticket cannot be merged into itself")
    for row in (source, target):
        if row.status is TicketStatus.MERGED:
            into = await ticket_store.number_of(tx, row.merged_into or 0)
            raise Refused(f"[merge:#{there}]: #{row.number} is already merged into #{into}")
    if target.status is TicketStatus.DELETED:  # the thread would vanish into a hidden ticket
        raise Refused(f"[merge:#{there}]: #{there} is deleted: [restore] it first")
    if source.contact_id is None or source.contact_id != target.contact_id:
        # Two customers' mail in one ticket would show each one the other's words: never.
        raise Refused(f"[merge:#{there}]: #{here} and #{there} belong to different customers;"
                      " only one customer's tickets can be merged")
    survivor = target.id
    # Later mail answering anything of the old thread now threads into the survivor by header.
    moved = await messages.move_all(tx, ticket_id, survivor)
    await tags.move_all(tx, ticket_id, survivor)
    # The old ticket's people take part in the survivor (copied: its subject tag keeps working for them).
    # A sender still waiting for an agent's confirmation stays waiting on the survivor too.
    await parties.copy(tx, ticket_id, survivor)
    await forwards.move(tx, ticket_id, survivor)
    await links.add(tx, ticket_id, survivor, LINK)
    await lifecycle.set_status(tx, config, ticket_id, TicketStatus.MERGED, actor=actor, reason=f"merged into #{there}")
    await ticket_store.update(tx, ticket_id, merged_into=survivor)
    if target.status in CLOSED_STATUSES and source.status not in CLOSED_STATUSES:
        # The open question of the old ticket is now the survivor's: it must not stay resolved.
        await lifecycle.set_status(tx, config, survivor, TicketStatus.OPEN, actor=actor, reason=f"#{here} merged in")
    await ticket_store.touch(tx, survivor)
    await events.add(tx, ticket_id, actor, "ticket.merged", {"into": there, "messages": moved})
    await events.add(tx, survivor, actor, "ticket.merged_in", {"from": here, "messages": moved})
    await system_note(tx, config, ticket_id, f"{name} merged this ticket into #{there}; its messages are there now.",
                      actor=actor)
    await system_note(tx, config, survivor, f"{name} merged #{here} \"{source.subject}\" into this ticket"
                      f" ({moved} messages).", actor=actor)
    await _tell_customer(tx, config, survivor, here, source.subject)
    return Change("merge", f"#{here} merged into #{there} ({moved} messages moved)")


async def _tell_customer(tx: Txn, config: Config, survivor: int, old_number: int, old_subject: str) -> None:
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, survivor)
    if not info.customer_address or loops.is_machine_address(info.customer_address):
        await events.add(tx, survivor, "system", "merge_notice.suppressed", {"reason": "no-customer-address"})
        return
    await mailer.queue_mail(
        tx, info, kind="merged", template="merged", to_name=info.customer_name, to_address=info.customer_address,
        language=mailer.customer_language(info), auto_kind="auto-generated",
        data=mailer.data(info, outcome={"other_number": old_number, "other_subject": old_subject,
                                        "other_tag": f"[{config.gateway.ticket_tag}{old_number}]"}),
    )
