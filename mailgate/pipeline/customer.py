"""The steps of a customer's mail: wake or reopen its ticket, the storm fuse, open or append, parties, store."""

from __future__ import annotations

from mailgate import rules
from mailgate.mail.subjects import clean_subject
from mailgate.models import Correlation, MailKind, Source, ThreadRule
from mailgate.ops import assign, lifecycle, parties, tickets
from mailgate.outgoing import guard
from mailgate.outgoing.acknowledge import language_of
from mailgate.pipeline.context import MailContext, Outcome
from mailgate.store import events, message_marks
from mailgate.store import tickets as ticket_store


async def reopen(m: MailContext) -> Outcome | None:
    """A reply wakes a waiting ticket, reopens a resolved one, or (closed, or resolved long ago) opens a follow-up."""
    sender = m.sender
    if m.found.ticket_id is not None and not await parties.speaks_for(
        m.tx, m.found.ticket_id, sender.address if sender else ""
    ):
        # A stranger threaded in by a Message-ID anyone in the thread holds: the mail is kept on
        # the ticket (and the agents told), but it wakes, reopens or follows up nothing.
        m.follows = None
        return None
    m.found, m.follows = await lifecycle.customer_reply(
        m.tx, m.config, m.found, m.mail, actor=m.actor, imported=m.entry.envelope.imported
    )
    return None


async def storm_fuse(m: MailContext) -> Outcome | None:
    """Past the per-sender hourly cap the mail is kept on the sender's latest ticket, and nobody is told.

    So a flood cannot become a flood of tickets, notifications and acknowledgements (one summary
    goes to the agents, once an hour). Imported archives are old mail that tells nobody anyway:
    one customer's mbox is not a storm. Bounces tell nobody either, and each must still mark its
    outgoing mail failed.
    """
    if m.entry.envelope.imported or m.mail.kind is MailKind.BOUNCE:
        return None
    m.admission = await guard.admit(m.tx, m.storm_key, m.config.storms.sender_mails_per_hour)
    if not m.held or m.found.ticket_id is not None:
        return None
    sender = m.sender
    latest = await tickets.latest_requested_by(m.tx, sender.address) if sender and sender.address else None
    latest = latest or m.admission.ticket_id  # no From: where this hour's held mail already went
    if latest is not None:
        m.found = Correlation(latest, ThreadRule.NEW, "held: over the sender's hourly mail cap")
    return None


async def open_or_append(m: MailContext) -> Outcome | None:
    """A new ticket (contact, requester, routing, SLA, follow-up link), or the number of the one it joins."""
    m.new_ticket = m.found.ticket_id is None
    if m.found.ticket_id is not None:
        m.ticket_id = m.found.ticket_id
        found = await ticket_store.number_and_queue(m.tx, m.ticket_id)
        assert found is not None  # threading found it in this transaction
        m.number, m.queue = found
        return None
    sender = m.sender
    # Rules decide queue, priority, tags and assignee; the trace is kept for `explain`.
    routing = rules.route(m.ruleset, m.mail, m.entry.envelope.rcpt_to)
    # A new contact is written with the language the acknowledgement would teach it (the notify
    # step learns it for a ticket that is not held and not a bounce), instead of an UPDATE after.
    language = None if m.held or m.mail.kind is MailKind.BOUNCE else language_of(m.mail, routing.language)
    contact_id = await tickets.contact_for(m.tx, sender, language) if sender and sender.address else None
    created: list[events.Event] = []  # written with the routing's events, in one statement
    # The assignee is chosen first, so the ticket is written routed in one INSERT.
    assignment = await assign.decide(m.tx, m.ruleset.config, routing)
    ref = await tickets.open_ticket(
        m.tx,
        subject=clean_subject(m.mail.subject, m.config.gateway.ticket_tag),
        contact_id=contact_id,
        first_number=m.config.gateway.first_ticket_number,
        actor=m.actor,
        # A web form's ticket is kept apart in views and statistics; a mail reply later stays on it.
        channel="web" if m.entry.envelope.source is Source.WEB else "email",
        later=created,
        placed=assign.placement(routing, assignment),
    )
    m.ticket_id, m.number = ref.id, ref.number
    if sender and sender.address:
        await tickets.add_party(m.tx, ref.id, sender.address, "requester")
    placed = await assign.record(m.tx, ref.id, routing, assignment, (ref.status, ref.created_at), earlier=created)
    m.queue = routing.queue
    await lifecycle.opened(m.tx, m.ruleset.config, ref.id, follows=m.follows, actor=m.actor, placed=placed.placed)
    if m.held:  # a first mail of this sender already over the cap: hidden like a quarantined one
        await ticket_store.hide(m.tx, ref.id)
    return None


async def join_parties(m: MailContext) -> Outcome | None:
    """Its Cc people (capped) join when a party wrote it; a sender who is none yet waits for an agent's [cc:add]."""
    assert m.ticket_id is not None
    known: dict[str, str] | None = None
    if m.new_ticket:  # open_or_append made it a moment ago, with only its sender as the requester
        sender = m.sender
        known = {sender.address.lower(): "requester"} if sender and sender.address else {}
    m.joined = await parties.join(m.tx, m.config, m.ticket_id, m.mail, new_ticket=m.new_ticket, known=known)
    return None


async def store_message(m: MailContext) -> Outcome | None:
    """The message row, with how it was threaded and who it came from."""
    assert m.ticket_id is not None
    m.message_row = await tickets.add_inbound_message(
        m.tx,
        m.ticket_id,
        m.mail,
        spool_id=m.entry.id,
        content_key=m.key,
        imported=m.entry.envelope.imported,
        rule=m.found.rule,
        detail=m.found.detail,
        actor=m.actor,
        opened=m.new_ticket,
    )
    if m.agent is not None and m.agent.identity is not None and m.agent.identity.unproven_agent:
        claimed = m.agent.identity.claimed
        assert claimed is not None
        await message_marks.mark_unproven(m.tx, m.message_row, claimed.id)
    return None
