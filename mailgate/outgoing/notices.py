"""What mailgate says and to whom: one Mailer per config, with one method per occasion it writes about."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailgate.config import AgentConfig, Config
from mailgate.models import Correlation, Envelope, ParsedMail
from mailgate.outgoing import acknowledge as acks
from mailgate.outgoing import compose, failures, inbound, notify, reply
from mailgate.outgoing.writer import TicketInfo, Writer, local_time
from mailgate.store import Txn
from mailgate.store.outbox import OutboxRow


class Mailer(Writer):
    """Renders and queues mailgate's mail inside the caller's transaction; the daemon builds one per config.

    Queued mail needs no wake-up call: the store tells the daemon's sender when the transaction commits.
    """

    async def acknowledge(self, tx: Txn, info: TicketInfo) -> int:
        return await acks.acknowledge(self, tx, info)

    async def resolved(self, tx: Txn, ticket_id: int) -> int | None:
        return await acks.resolved(self, tx, ticket_id)

    async def notify_agents(
        self, tx: Txn, info: TicketInfo, template: str, mail: ParsedMail, parties: dict[str, Any] | None = None
    ) -> list[int]:
        return await notify.notify_agents(self, tx, info, template, mail, parties)

    async def notify_note(self, tx: Txn, info: TicketInfo, author: AgentConfig, text: str) -> list[int]:
        return await notify.notify_note(self, tx, info, author, text)

    async def agent_reply(
        self, tx: Txn, ticket_id: int, agent_id: str, text: str, *, not_before: datetime,
        files: tuple[compose.File, ...] = (),
    ) -> int:
        return await reply.agent_reply(self, tx, ticket_id, agent_id, text, not_before=not_before, files=files)

    async def reply_recipients(self, tx: Txn, info: TicketInfo) -> tuple[list[str], list[str]]:
        return await reply.reply_recipients(self, tx, info)

    async def delivery_failed(self, tx: Txn, row: OutboxRow, reason: str) -> None:
        await failures.delivery_failed(self, tx, row, reason)

    async def rethread_bounce(
        self, tx: Txn, mail: ParsedMail, rcpt_to: tuple[str, ...], found: Correlation
    ) -> Correlation:
        return await failures.rethread_bounce(self, tx, mail, rcpt_to, found)

    async def after_inbound(
        self, tx: Txn, *, ticket_id: int, mail: ParsedMail, envelope: Envelope, new_ticket: bool,
        joined: inbound.Parties | None = None,
    ) -> None:
        await inbound.after_inbound(self, tx, ticket_id=ticket_id, mail=mail, envelope=envelope,
                                    new_ticket=new_ticket, joined=joined)


def mailer_for(tx: Txn, config: Config) -> Mailer:
    """The daemon's Mailer when it is for this config (templates compiled once), else one made now (the CLI)."""
    mailer = tx.part(Mailer)
    if mailer is not None and mailer.config is config:
        return mailer
    return Mailer(config)


async def notify_resolved(tx: Txn, config: Config, ticket_id: int) -> int | None:
    """The ticket became resolved: queue the customer's resolution notice (unless the queue turned it off)."""
    return await mailer_for(tx, config).resolved(tx, ticket_id)


__all__ = ["Mailer", "TicketInfo", "local_time", "mailer_for", "notify_resolved"]
