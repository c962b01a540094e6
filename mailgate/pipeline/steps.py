"""The steps one stored mail goes through, in order: the list at the bottom is the whole flow."""

from __future__ import annotations

from mailgate.pipeline import agent_mail
from mailgate.pipeline.context import MailContext, Outcome, Step
from mailgate.pipeline.customer import join_parties, open_or_append, reopen, store_message, storm_fuse
from mailgate.pipeline.notify import notify
from mailgate.pipeline.thread import find as find_ticket
from mailgate.store import spool as spooled
from mailgate.store import threads
from mailgate.store import tickets as ticket_store


async def claim(m: MailContext) -> Outcome | None:
    """Another process (or an earlier round) may have handled the row since it was read.

    The same statement looks for the message this mail repeats, for dedupe.
    """
    state, m.duplicate = await threads.claim(m.tx, m.entry.id, m.mail.message_id, m.key)
    if state != "received":
        return Outcome(m.entry.id, "skipped")
    return None


async def dedupe(m: MailContext) -> Outcome | None:
    """The same Message-ID and body is stored already: a resend, or one mail by two routes."""
    found = m.duplicate
    if found is None:
        return None
    await spooled.mark_duplicate(m.tx, m.entry.id, found.message_row)
    return Outcome(m.entry.id, "duplicate", found.ticket_number, found.message_row)


async def thread(m: MailContext) -> Outcome | None:
    """Which ticket the mail answers: token, references, or a subject tag its sender may use."""
    m.found = await find_ticket(
        m.tx, m.mail, m.entry.envelope.rcpt_to, secret=m.secret, tag_prefix=m.config.gateway.ticket_tag,
        config=m.config,
    )
    return None


async def bounce(m: MailContext) -> Outcome | None:
    """A bounce of mailgate's own mail goes to the ticket that mail came from."""
    m.found = await m.mailer.rethread_bounce(m.tx, m.mail, m.entry.envelope.rcpt_to, m.found)
    return None


async def agent(m: MailContext) -> Outcome | None:
    """Answers to forwards, help requests and tasks, then a proven agent's mail: handled completely there."""
    decision = await agent_mail.dispatch(m.tx, m.config, m.mail, m.entry, m.key, m.found)
    m.agent = decision
    if not decision.handled:
        m.found = decision.found  # mail to an agent's token address threads by it, whoever sent it
        return None
    await spooled.mark_done(m.tx, m.entry.id, decision.message_row)
    queue = await ticket_store.queue_by_number(m.tx, decision.ticket_number)
    return Outcome(m.entry.id, "done", decision.ticket_number, decision.message_row, decision.found.rule,
                   queue=queue, by="agent")


async def finish(m: MailContext) -> Outcome | None:
    """The spool row points at the message it became; processing it again would change nothing."""
    assert m.ticket_id is not None
    await spooled.mark_done(m.tx, m.entry.id, m.message_row)
    return Outcome(m.entry.id, "done", m.number, m.message_row, m.found.rule, m.new_ticket, queue=m.queue)


STEPS: tuple[Step, ...] = (
    claim,
    dedupe,
    thread,
    bounce,
    agent,
    # From here on the mail is a customer's (or an unproven agent's, kept as an outside party's).
    reopen,
    storm_fuse,
    open_or_append,
    join_parties,
    store_message,
    notify,
    finish,
)
