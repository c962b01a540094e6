"""What one stored inbound mail makes mailgate send: an acknowledgement, agents' notices, held replies, bounce handling."""

from __future__ import annotations

from typing import Any, Protocol

from mailgate.models import Envelope, MailKind, ParsedMail
from mailgate.outgoing import guard as loops
from mailgate.outgoing.acknowledge import learn_language, maybe_acknowledge
from mailgate.outgoing.failures import bounced
from mailgate.outgoing.notify import held_notice, notify_agents
from mailgate.outgoing.writer import Writer
from mailgate.store import Txn, events
from mailgate.store import outbox as rows


class Parties(Protocol):
    """The Cc parties a mail brought to its ticket (the domain's Joined)."""

    @property
    def pending(self) -> tuple[str, ...]: ...

    def for_template(self) -> dict[str, Any]: ...


async def after_inbound(
    w: Writer, tx: Txn, *, ticket_id: int, mail: ParsedMail, envelope: Envelope, new_ticket: bool,
    joined: Parties | None = None,
) -> None:
    """Everything a stored inbound mail makes mailgate send, in the transaction that stored it."""
    if mail.kind is MailKind.BOUNCE:
        await bounced(w, tx, ticket_id, mail, envelope)
        return
    info = await w.ticket(tx, ticket_id)  # once: the acknowledgement and every notice use it
    if new_ticket:
        info = await learn_language(tx, info, mail)
        await maybe_acknowledge(w, tx, info, mail, envelope)
    notify = loops.may_notify(w.guard, mail, imported=envelope.imported) or (
        new_ticket and opened_by_agent(w, mail, envelope))
    # Someone who is not a party yet does not stop the agent's reply to those who are: anyone
    # holding a Message-ID of the thread could otherwise hold every answer until [send].
    if notify and not new_ticket and not (joined and joined.pending):
        held = await rows.hold_pending(tx, ticket_id)
        if held:
            await events.add(tx, ticket_id, "system", "reply.held", {"outbox": [r.id for r in held]})
        for row in held:
            await held_notice(w, tx, info, row, mail)
    if notify and not info.quarantined and (info.queue is None or info.queue.notify):
        await notify_agents(w, tx, info, "notify_new" if new_ticket else "notify_reply", mail,
                            joined.for_template() if joined else None)


def opened_by_agent(w: Writer, mail: ParsedMail, envelope: Envelope) -> bool:
    """An agent's own mail opened the ticket (one naming no ticket of hers): its agents must hear of it.

    Mail from agents' addresses tells nobody elsewhere, so that an out-of-office answering a
    notification cannot start a loop; such an answer threads into the ticket it answers and
    never opens one, so the assignee of a ticket a colleague opened by mail is still told.
    """
    sender = mail.from_[0].address.lower() if mail.from_ else ""
    return sender in w.guard.agent_addresses and mail.kind is MailKind.MESSAGE and not envelope.imported
