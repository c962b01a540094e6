"""What mailgate says and to whom: acknowledgements, notifications, resolution notices, bounces, held replies."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailgate import tokens
from mailgate.config import LANGUAGES, AgentConfig, Config, QueueConfig, bounce_address
from mailgate.mail import identity
from mailgate.models import Envelope, MailKind, ParsedMail, ThreadRule
from mailgate.ops import tickets, watchers
from mailgate.ops.parties import Joined
from mailgate.outgoing import compose, outbox
from mailgate.outgoing import guard as loops
from mailgate.outgoing.relay import mailbox
from mailgate.outgoing.templates import Templates, choose_language, context, for_config
from mailgate.pipeline.thread import Correlation
from mailgate.store import Row, Txn

log = logging.getLogger("mailgate.outbound")


@dataclass(frozen=True, slots=True)
class TicketInfo:
    """A ticket as outgoing mail needs it: who writes, to whom, in which language, continuing what."""

    id: int
    number: int
    subject: str
    status: str
    priority: str
    assignee: str | None
    queue: QueueConfig | None
    from_address: str  # the queue's (or the written-to) support address
    customer_name: str
    customer_address: str
    contact_language: str | None
    ack_suppressed: bool
    quarantined: bool
    detected_language: str | None
    references: tuple[str, ...]  # the ticket's Message-IDs, oldest first
    last_inbound: str | None  # the Message-ID an answer replies to


class Mailer:
    """Renders and queues mailgate's mail inside the caller's transaction."""

    def __init__(self, config: Config, templates: Templates | None = None) -> None:
        self.config = config
        self.templates = templates or for_config(config)
        self.secret = config.secret_bytes()
        self.bounce_base = bounce_address(config)
        self.domain = config.message_id_domain
        self.guard = loops.Guard(
            own_addresses=frozenset(config.gateway.addresses) | {self.bounce_base},
            bounce_address=self.bounce_base,
            agent_addresses=frozenset(a.lower() for agent in config.agents for a in agent.addresses),
            human_senders=tuple(p.lower() for p in config.outbox.human_senders),
            secret=self.secret,
        )

    # -- what a ticket looks like to outgoing mail ---------------------------------------------

    async def ticket(self, tx: Txn, ticket_id: int) -> TicketInfo:
        row = await tx.one("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        if row is None:
            raise LookupError(f"no ticket with id {ticket_id}")
        contact = await tx.one("SELECT * FROM contacts WHERE id = ?", (row["contact_id"],)) if row["contact_id"] else None
        customer = await tx.value(
            "SELECT address FROM ticket_parties WHERE ticket_id = ? AND role = 'requester' ORDER BY address LIMIT 1",
            (ticket_id,),
        ) or (await tx.value(
            "SELECT address FROM contact_addresses WHERE contact_id = ? ORDER BY created_at LIMIT 1", (row["contact_id"],)
        ) if row["contact_id"] else None)
        messages = await tx.all(
            "SELECT m.message_id, m.direction, s.rcpt_to FROM messages m LEFT JOIN spool s ON s.id = m.spool_id"
            " WHERE m.ticket_id = ? AND m.direction IN ('in', 'out') ORDER BY m.id", (ticket_id,)
        )
        queue = self.config.queue(row["queue"]) if row["queue"] else None
        written_to = self._support_address(messages)
        if queue is None and written_to is not None:
            queue = self.config.queue_for_address(written_to)
        from_address = (queue.addresses[0] if queue and queue.addresses else None) or written_to or self.config.gateway.addresses[0]
        keys = row.keys()
        inbound = [m["message_id"] for m in messages if m["direction"] == "in"]
        return TicketInfo(
            id=ticket_id, number=row["number"], subject=row["subject"], status=row["status"],
            priority=row["priority"], assignee=row["assignee"], queue=queue, from_address=from_address,
            customer_name=(contact["name"] if contact else "") or "", customer_address=customer or "",
            contact_language=contact["language"] if contact is not None and "language" in contact.keys() else None,  # noqa: SIM118 - Row "in" looks at values
            # Routing (migration 0004) adds these columns; without them nothing is suppressed.
            ack_suppressed=bool(row["ack_suppressed"]) if "ack_suppressed" in keys else False,
            quarantined=bool(row["quarantined"]) if "quarantined" in keys else False,
            detected_language=row["detected_language"] if "detected_language" in keys else None,
            references=tuple(m["message_id"] for m in messages), last_inbound=inbound[-1] if inbound else None,
        )

    def _support_address(self, messages: list[Row]) -> str | None:
        for m in messages:
            try:
                rcpts = json.loads(m["rcpt_to"]) if m["rcpt_to"] else []
            except ValueError:
                continue
            for rcpt in rcpts:
                if loops.base(rcpt) in self.config.gateway.addresses:
                    return loops.base(rcpt)
        return None

    def customer_language(self, info: TicketInfo) -> str:
        return choose_language(info.queue.language if info.queue else None, info.contact_language,
                               self.config.gateway.default_language)

    def agent_language(self, info: TicketInfo, agent: AgentConfig) -> str:
        return choose_language(agent.language, info.queue.language if info.queue else None,
                               self.config.gateway.default_language)

    def agents_to_tell(self, info: TicketInfo) -> list[AgentConfig]:
        """The assignee, else the queue's agents; away agents are left out."""
        if info.assignee:
            agent = self.config.agent(info.assignee)
            if agent is not None and not agent.away:
                return [agent]
        if info.queue is None:
            return []
        return [a for a in self.config.queue_members(info.queue) if not a.away]

    async def recipients(self, tx: Txn, info: TicketInfo) -> list[AgentConfig]:
        """Who hears of a ticket's mail and notes: agents_to_tell and its followers, less who unfollowed (issue 7)."""
        return await watchers.recipients(tx, self.config, info.id, info.assignee, self.agents_to_tell(info))

    def data(self, info: TicketInfo, **extra: Any) -> dict[str, Any]:
        name, _, address = str(extra.get("message_from") or "").rpartition(" <")
        posing = identity.sender_warning(name, address.removesuffix(">")) if name else ""
        if posing:
            # '"anna@example.test" <evil@…>' reads as Anna in most clients: show the real address, and warn.
            extra["message_from"] = address.removesuffix(">")
            extra["outcome"] = {**(extra.get("outcome") or {}), "sender_warning": posing}
        return context(
            gateway=self.config.gateway.name, number=info.number, tag=self.config.gateway.ticket_tag,
            subject=info.subject, status=info.status, priority=info.priority,
            queue=info.queue.name if info.queue else None, customer_name=info.customer_name,
            customer_address=info.customer_address, assignee=info.assignee or "", **extra,
        )

    # -- one mail -------------------------------------------------------------------------------

    async def queue_mail(
        self,
        tx: Txn,
        info: TicketInfo,
        *,
        kind: str,
        template: str,
        to_name: str,
        to_address: str,
        language: str,
        data: dict[str, Any],
        automatic: bool = True,
        auto_kind: str = "auto-replied",
        agent: str | None = None,
        not_before: datetime | None = None,
        reply_token: tokens.Token | None = None,
        from_name: str | None = None,
        cc: tuple[tuple[str, str], ...] = (),
        envelope_to: str | None = None,
        files: tuple[compose.File, ...] = (),
    ) -> int:
        """Render, insert, compose with the VERP return path, and schedule; returns the outbox id.

        reply_token: the Reply-To (default: the customer's 'r' address); mail to an agent carries that
        agent's 'a' (answers the customer) or 'n' (adds a note) address instead.
        """
        rendered = self.templates.render(template, language if language in LANGUAGES else "en", data)
        token = tokens.Token("r", info.number)
        shown_name = from_name or self.config.gateway.name
        message_id = tokens.message_id(self.secret, self.domain, token)
        subject = compose.tagged_subject(rendered.subject, self.config.gateway.ticket_tag, info.number)
        when = not_before or datetime.now(UTC)
        outbox_id = await outbox.insert(tx, outbox.NewMail(
            ticket_id=info.id, kind=kind, automatic=automatic, agent=agent, message_id=message_id,
            from_name=shown_name, from_address=info.from_address, in_reply_to=info.last_inbound,
            rcpt_to=envelope_to or to_address, subject=subject, text=rendered.text, not_before=when,
        ))
        mail_from = tokens.reply_address(self.secret, self.bounce_base, tokens.Token("b", outbox_id))
        message = compose.compose(compose.Outgoing(
            from_name=shown_name, from_address=info.from_address, to_name=to_name,
            to_address=to_address, reply_to=tokens.reply_address(self.secret, info.from_address, reply_token or token),
            subject=subject, message_id=message_id, text=rendered.text, html=rendered.html,
            marker=tokens.body_marker(self.secret, token), in_reply_to=info.last_inbound,
            references=info.references, automatic=automatic, auto_kind=auto_kind, language=language, cc=cc,
            files=files,
        ))
        await outbox.set_wire(tx, outbox_id, mail_from, compose.to_bytes(message), when)
        # Before commit is fine: the store's single writer makes the sender's claim wait for ours.
        for listener in _LISTENERS:
            listener.wake_sender()
            if when > datetime.now(UTC):
                listener.poke_timers()
        return outbox_id

    # -- the occasions --------------------------------------------------------------------------

    async def acknowledge(self, tx: Txn, info: TicketInfo) -> int:
        return await self.queue_mail(
            tx, info, kind="ack", template="ack", to_name=info.customer_name, to_address=info.customer_address,
            language=self.customer_language(info), data=self.data(info),
        )

    async def notify_agents(
        self, tx: Txn, info: TicketInfo, template: str, mail: ParsedMail, parties: dict[str, Any] | None = None
    ) -> list[int]:
        sender = mail.from_[0] if mail.from_ else None
        shown = f"{sender.name} <{sender.address}>" if sender and sender.name else (sender.address if sender else "")
        posing = identity.sender_warning(sender.name, sender.address) if sender else ""
        if sender and posing:
            log.info("outbound.sender_name_warning ticket=%s shown=%s address=%s", info.number, posing, sender.address)
        agents = await self.recipients(tx, info)
        files, listing = await self._files_of(tx, info, mail) if agents else ((), None)
        ids = []
        for agent in agents:
            ids.append(await self.queue_mail(
                tx, info, kind="notify", template=template, to_name=agent.name, to_address=agent.addresses[0],
                language=self.agent_language(info, agent), auto_kind="auto-generated",
                reply_token=tokens.Token(tokens.AGENT_REPLY, info.number, agent.id),
                data=self.data(info, agent_name=agent.name, agent_id=agent.id, message_text=mail.reply_text or mail.text,
                               message_from=shown, parties=parties, files=listing),
                files=files,
            ))
        return ids

    async def _files_of(
        self, tx: Txn, info: TicketInfo, mail: ParsedMail
    ) -> tuple[tuple[compose.File, ...], dict[str, Any] | None]:
        """The files of the inbound mail just stored, for its notification: attached up to the cap, else listed."""
        if not mail.attachments:
            return (), None
        from mailgate.ops import files as agent_files  # builds on agent_ops, which imports this module

        # after_inbound runs in the transaction that stored the mail: its row is the ticket's newest inbound one.
        row = await tx.value("SELECT id FROM messages WHERE ticket_id = ? AND direction = 'in' ORDER BY id DESC LIMIT 1",
                             (info.id,))
        if row is None:
            return (), None
        files, listing = await agent_files.of_message(tx, self.config, info.id, int(row))
        if listing["entries"]:
            log.info("outbound.notify_files ticket=%s attached=%s listed=%s", info.number, len(files), listing["left"])
        return files, listing

    async def notify_note(self, tx: Txn, info: TicketInfo, author: AgentConfig, text: str) -> list[int]:
        """An internal note, to the agents of the ticket but its author; Reply-To adds a note, never a reply."""
        ids = []
        for agent in await self.recipients(tx, info):
            if agent.id == author.id:
                continue
            ids.append(await self.queue_mail(
                tx, info, kind="notify", template="notify_note", to_name=agent.name, to_address=agent.addresses[0],
                language=self.agent_language(info, agent), auto_kind="auto-generated",
                reply_token=tokens.Token(tokens.AGENT_NOTE, info.number, agent.id),
                data=self.data(info, agent_name=agent.name, agent_id=agent.id, message_text=text,
                               message_from=author.name),
            ))
        return ids

    async def agent_reply(
        self, tx: Txn, ticket_id: int, agent_id: str, text: str, *, not_before: datetime,
        files: tuple[compose.File, ...] = (),
    ) -> int:
        info = await self.ticket(tx, ticket_id)
        if not info.customer_address:
            raise ValueError(f"ticket #{info.number} has no customer address to answer")
        agent = self.config.agent(agent_id)
        cc, left_out = await self.reply_recipients(tx, info)
        shown = f"{agent.name if agent else agent_id} ({self.config.gateway.name})"
        data = self.data(info, agent_name=agent.name if agent else agent_id, agent_id=agent_id, reply_text=text)
        outbox_id = await self.queue_mail(
            tx, info, kind="reply", template="reply", to_name=info.customer_name, to_address=info.customer_address,
            language=self.customer_language(info), automatic=False, agent=agent_id, not_before=not_before,
            data=data, from_name=shown, cc=tuple(("", a) for a in cc), files=files,
        )
        # One row per envelope recipient (the outbox's unit), all of one composition: a reply with
        # many Cc parties once cost a full render and MIME build per copy on the event loop.
        if cc:
            first = await tx.one("SELECT * FROM outbox WHERE id = ?", (outbox_id,))
            if first is None:
                raise LookupError(f"outbox row {outbox_id} is gone within its own transaction")
            for address in cc:
                await self._copy(tx, info, first, address)
            wake(later=not_before > datetime.now(UTC))
        if left_out:
            await tickets.event(tx, ticket_id, f"agent:{agent_id}", "reply.recipients_capped",
                                {"outbox": outbox_id, "cap": self.config.tickets.max_reply_recipients,
                                 "left_out": len(left_out), "addresses": left_out[:10]})
            log.warning("outbound.reply_recipients_capped ticket=%s cap=%s left_out=%s", info.number,
                        self.config.tickets.max_reply_recipients, len(left_out))
        await tickets.event(tx, ticket_id, f"agent:{agent_id}", "reply.queued",
                            {"outbox": outbox_id, "not_before": not_before.isoformat(), "cc": cc,
                             "attachments": [f.name for f in files]})
        return outbox_id

    async def _copy(self, tx: Txn, info: TicketInfo, row: Row, address: str) -> int:
        """The same mail for one more envelope recipient: its own row, Message-ID and VERP path, not a new build."""
        message_id = tokens.message_id(self.secret, self.domain, tokens.Token("r", info.number))
        when = datetime.fromisoformat(row["not_before"])
        copy_id = await outbox.insert(tx, outbox.NewMail(
            ticket_id=info.id, kind=row["kind"], automatic=bool(row["automatic"]), agent=row["agent"],
            message_id=message_id, from_name=row["from_name"], from_address=row["from_address"],
            in_reply_to=row["in_reply_to"], rcpt_to=address, subject=row["subject"], text=row["text"], not_before=when,
        ))
        raw = bytes(row["raw"])
        head, blank, body = raw.partition(b"\r\n\r\n")
        ours = f"\r\nMessage-ID: <{row['message_id']}>\r\n".encode()
        if ours in head:
            raw = head.replace(ours, f"\r\nMessage-ID: <{message_id}>\r\n".encode(), 1) + blank + body
        else:  # compose always writes it so; were it folded, the copy keeps the first one's (threads the same)
            log.warning("outbound.copy_message_id_kept outbox=%s copy=%s", row["id"], copy_id)
        mail_from = tokens.reply_address(self.secret, self.bounce_base, tokens.Token("b", copy_id))
        await outbox.set_wire(tx, copy_id, mail_from, raw, when)
        return copy_id

    async def reply_recipients(self, tx: Txn, info: TicketInfo) -> tuple[list[str], list[str]]:
        """The Cc parties an answer goes to, and those past tickets.max_reply_recipients (the customer counts one)."""
        cc = await self.reply_cc(tx, info)
        room = max(self.config.tickets.max_reply_recipients - 1, 0)
        return cc[:room], cc[room:]

    async def reply_cc(self, tx: Txn, info: TicketInfo) -> list[str]:
        """The ticket's Cc parties an answer goes to: people only, never an agent or mailgate itself."""
        rows = await tx.all("SELECT address FROM ticket_parties WHERE ticket_id = ? AND role = 'cc' ORDER BY address",
                            (info.id,))
        out = []
        for row in rows:
            address = row["address"].lower()
            if (address == info.customer_address.lower() or address in self.guard.agent_addresses
                    or loops.base(address) in self.guard.own_addresses or loops.is_machine_address(address)):
                continue
            out.append(address)
        return out

    async def delivery_failed(self, tx: Txn, row: Row, reason: str) -> None:
        """A mail could not be delivered: an event on the ticket, and a notice to the agent or queue."""
        if row["ticket_id"] is None:
            return
        await tickets.event(tx, row["ticket_id"], "system", "delivery.failed",
                            {"outbox": row["id"], "kind": row["kind"], "to": row["rcpt_to"], "reason": reason})
        if row["kind"] not in outbox.CUSTOMER_KINDS:
            return  # a notice to an agent failed: telling agents by mail again would fail the same way
        info = await self.ticket(tx, row["ticket_id"])
        author = self.config.agent(row["agent"]) if row["agent"] else None
        agents = [author] if author else self.agents_to_tell(info)
        written = local_time(self.config, row["created_at"])
        for agent in agents:
            await self.queue_mail(
                tx, info, kind="failed", template="delivery_failed", to_name=agent.name,
                to_address=agent.addresses[0], language=self.agent_language(info, agent), auto_kind="auto-generated",
                data=self.data(info, agent_name=agent.name, agent_id=agent.id, error_recipient=row["rcpt_to"],
                               error_kind=row["kind"], error_reason=_reason_text(reason), error_written=written,
                               error_author=(author.name if author else row["agent"] or ""),
                               error_yours=author is not None and author.id == agent.id),
            )

    async def resolved(self, tx: Txn, ticket_id: int) -> int | None:
        info = await self.ticket(tx, ticket_id)
        if info.queue is not None and not info.queue.resolution_notice:
            return None
        if not info.customer_address or loops.is_machine_address(info.customer_address):
            await tickets.event(tx, ticket_id, "system", "resolution_notice.suppressed", {"reason": "no-customer-address"})
            return None
        return await self.queue_mail(
            tx, info, kind="resolved", template="resolved", to_name=info.customer_name,
            to_address=info.customer_address, language=self.customer_language(info), data=self.data(info),
            auto_kind="auto-generated",
        )

    # -- hooks for process.py -------------------------------------------------------------------

    async def rethread_bounce(self, tx: Txn, mail: ParsedMail, rcpt_to: tuple[str, ...], found: Correlation) -> Correlation:
        """A bounce of our own mail belongs to the ticket that mail came from."""
        if mail.kind is not MailKind.BOUNCE:
            return found
        row = await self._bounced_row(tx, mail, rcpt_to)
        if row is None or row["ticket_id"] is None:
            return found
        return Correlation(row["ticket_id"], ThreadRule.TOKEN, f"bounce of outgoing mail #{row['id']} to {row['rcpt_to']}")

    async def _bounced_row(self, tx: Txn, mail: ParsedMail, rcpt_to: tuple[str, ...]) -> Row | None:
        for rcpt in rcpt_to:
            if loops.base(rcpt) != self.bounce_base:
                continue
            for token in tokens.find(self.secret, rcpt):
                if token.purpose == "b":
                    row = await tx.one("SELECT * FROM outbox WHERE id = ?", (token.ticket,))
                    if row is not None:
                        return row
        if mail.bounce_of:
            # Without VERP (a DSN to the header From, say), the returned Message-ID still names it.
            return await tx.one("SELECT * FROM outbox WHERE message_id = ?", (compose.clean_message_id(mail.bounce_of) or "",))
        return None

    async def after_inbound(
        self, tx: Txn, *, ticket_id: int, mail: ParsedMail, envelope: Envelope, new_ticket: bool,
        joined: Joined | None = None,
    ) -> None:
        """Everything a stored inbound mail makes mailgate send, in the same transaction."""
        if mail.kind is MailKind.BOUNCE:
            await self._bounce(tx, ticket_id, mail, envelope)
            return
        await watchers.customer_wrote(tx, ticket_id)  # issue 7 part 10: unread again for every agent
        info = await self.ticket(tx, ticket_id)
        if new_ticket:
            await self._learn_language(tx, info, mail)
            info = await self.ticket(tx, ticket_id)
            await self._maybe_acknowledge(tx, info, mail, envelope)
        notify = loops.may_notify(self.guard, mail, imported=envelope.imported) or (
            new_ticket and self._opened_by_agent(mail, envelope))
        # Someone who is not a party yet does not stop the agent's reply to those who are: anyone
        # holding a Message-ID of the thread could otherwise hold every answer until [send].
        if notify and not new_ticket and not (joined and joined.pending):
            for row in await outbox.hold_pending(tx, ticket_id):
                await self._held_notice(tx, info, row, mail)
        if notify and not info.quarantined and (info.queue is None or info.queue.notify):
            await self.notify_agents(tx, info, "notify_new" if new_ticket else "notify_reply", mail,
                                     joined.for_template() if joined else None)

    def _opened_by_agent(self, mail: ParsedMail, envelope: Envelope) -> bool:
        """An agent's own mail opened the ticket (one naming no ticket of hers): its agents must hear of it.

        Mail from agents' addresses tells nobody elsewhere, so that an out-of-office answering a
        notification cannot start a loop; such an answer threads into the ticket it answers and
        never opens one, so the assignee of a ticket a colleague opened by mail is still told.
        """
        sender = mail.from_[0].address.lower() if mail.from_ else ""
        return (sender in self.guard.agent_addresses and mail.kind is MailKind.MESSAGE
                and not envelope.imported)

    async def _maybe_acknowledge(self, tx: Txn, info: TicketInfo, mail: ParsedMail, envelope: Envelope) -> None:
        verdict = loops.may_answer(
            self.guard, mail, envelope_from=envelope.mail_from, rcpt_to=envelope.rcpt_to, imported=envelope.imported
        )
        reason = verdict.reason
        if info.queue is not None and not info.queue.acknowledge:
            reason, allowed = "queue.acknowledge = false", False
        elif info.ack_suppressed:
            reason, allowed = "suppressed by routing", False
        elif identity.agent_by_address(self.config, info.customer_address) is not None:
            # An agent's own mail to support (a colleague's request, or her From forged) opened it:
            # "we received your request" is for customers, and an agent is told otherwise.
            reason, allowed = "the requester is an agent", False
        elif not info.customer_address:
            reason, allowed = "no customer address", False
        elif mailbox(info.customer_address) is None:
            # A garbled From ("000", "x@[", spaces): the relay client would only fail it, and tell the agents.
            reason, allowed = "the customer's address is not a deliverable mailbox", False
        else:
            allowed = verdict.allowed
        if allowed:  # storms and backscatter: spam flag, forged sender, per-recipient and global caps
            refusal = await loops.ack_refusal(
                tx, self.config.storms, mail, info.customer_address,
                per_recipient=self.config.outbox.auto_replies_per_hour, authserv_ids=self.config.gateway.authserv_id,
                # Only the results the trusted hop in front added: a sender can write any verdict.
                received=identity.trusted_received(self.config, envelope),
            )
            reason, allowed = (refusal, False) if refusal else (reason, True)
        if allowed:
            await self.acknowledge(tx, info)
        else:
            await tickets.event(tx, info.id, "system", "ack.suppressed", {"reason": reason})

    async def _learn_language(self, tx: Txn, info: TicketInfo, mail: ParsedMail) -> None:
        """A new contact's language: Content-Language (e.g. "fi", "pl-PL"), else the guess from the text."""
        value = (mail.header("Content-Language") or "").split(",")[0].strip().lower()[:2]
        if value not in LANGUAGES:
            value = info.detected_language or ""
        if value in LANGUAGES:
            ticket_id = info.id
            await tx.execute(
                "UPDATE contacts SET language = ? WHERE id = (SELECT contact_id FROM tickets WHERE id = ?)"
                " AND language IS NULL", (value, ticket_id),
            )

    async def _held_notice(self, tx: Txn, info: TicketInfo, row: Row, mail: ParsedMail) -> None:
        agent = self.config.agent(row["agent"]) if row["agent"] else None
        if agent is None:
            log.warning("outbound.held_without_agent outbox=%s agent=%s", row["id"], row["agent"])
            return
        await self.queue_mail(
            tx, info, kind="held", template="held", to_name=agent.name, to_address=agent.addresses[0],
            language=self.agent_language(info, agent), auto_kind="auto-generated",
            reply_token=tokens.Token(tokens.AGENT_REPLY, info.number, agent.id),  # "#send" / "#cancel" work
            data=self.data(info, agent_name=agent.name, agent_id=agent.id, reply_text=_body(row["text"]),
                           message_text=mail.reply_text or mail.text),
        )

    async def _bounce(self, tx: Txn, ticket_id: int, mail: ParsedMail, envelope: Envelope) -> None:
        row = await self._bounced_row(tx, mail, envelope.rcpt_to)
        if row is None:
            await tickets.event(tx, ticket_id, "system", "bounce.unmatched", {"bounce_of": mail.bounce_of})
            return
        # The delivery-status part is not in the parsed text: read the report from the wire bytes.
        raw = await tx.value(
            "SELECT s.raw FROM messages m JOIN spool s ON s.id = m.spool_id WHERE m.message_id = ?"
            " ORDER BY m.id DESC LIMIT 1", (mail.message_id,),
        )
        reason = "bounced: " + _bounce_reason(mail, bytes(raw or b"")[:200_000].decode("latin-1"))
        await tx.execute(
            "UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?", (reason, row["id"])
        )
        await tickets.event(tx, row["ticket_id"] or ticket_id, "system", "delivery.bounced",
                            {"outbox": row["id"], "to": row["rcpt_to"], "kind": row["kind"]})
        await self.delivery_failed(tx, row, reason)


# RFC 3464 2.3.6: Diagnostic-Code is a header field, so a long one is folded over lines that
# start with white space (Gmail's and Exchange's are); the first line alone cut the reason short.
_DIAGNOSTIC = re.compile(r"^[ \t]*Diagnostic-Code:[ \t]*(?:smtp;[ \t]*)?(.+(?:\r?\n[ \t]+.+)*)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(r"^\s*Status:\s*([245]\.\d{1,3}\.\d{1,3})", re.IGNORECASE | re.MULTILINE)
# A reason is a remote server's words (a relay's multi-line reply, a DSN): kept whole for the
# agent, but bounded, since a forged bounce can say anything at any length.
REASON_LIMIT = 4000  # characters
_REASON_NOISE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _bounce_reason(mail: ParsedMail, report: str) -> str:
    """The DSN's Diagnostic-Code (RFC 3464 2.3.6, unfolded), else its Status, else the first words of its text."""
    for pattern in (_DIAGNOSTIC, _STATUS):
        match = pattern.search(report) or pattern.search(mail.text)
        if match:
            return " ".join(match.group(1).split())[:REASON_LIMIT]
    first = next((line.strip() for line in mail.text.splitlines() if line.strip()), "")
    return (first or mail.subject)[:REASON_LIMIT]


def _reason_text(reason: str) -> str:
    """A failure reason as the notice shows it: every line of it, no control characters, bounded."""
    lines = (_REASON_NOISE.sub("", line).rstrip() for line in reason.replace("\r\n", "\n").split("\n"))
    text = "\n".join(line for line in lines if line.strip())
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT] + " [...]"


def local_time(config: Config, stored: str | datetime) -> str:
    """A stored UTC time as agents read it (gateway.timezone), minutes only."""
    try:
        moment = stored if isinstance(stored, datetime) else datetime.fromisoformat(stored)
    except (TypeError, ValueError):
        return str(stored or "")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(config.gateway.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _body(text: str) -> str:
    return text.strip()


@dataclass(frozen=True, slots=True, eq=False)  # removed by identity
class Listener:
    """A running daemon's sender and timers: told when a mail or a timer row was queued."""

    wake_sender: Callable[[], None]
    poke_timers: Callable[[], None]


# Module-level, so a Mailer made for a reloaded config (mailer_for) reaches the same sender.
_LISTENERS: list[Listener] = []


def wake(later: bool = False) -> None:
    """Mail or a timer row was queued outside queue_mail: wake the sender (and the timers, when later)."""
    for listener in _LISTENERS:
        listener.wake_sender()
        if later:
            listener.poke_timers()


def add_listener(listener: Listener) -> None:
    _LISTENERS.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)


_MAILERS: dict[int, Mailer] = {}


def mailer_for(config: Config) -> Mailer:
    """One Mailer per config object (templates compiled once), shared by the daemon and domain calls."""
    mailer = _MAILERS.get(id(config))
    if mailer is None or mailer.config is not config:
        if len(_MAILERS) > 16:
            _MAILERS.clear()  # old configs after reloads (and tests); a new Mailer is cheap
        mailer = _MAILERS[id(config)] = Mailer(config)
    return mailer


async def notify_resolved(tx: Txn, config: Config, ticket_id: int) -> int | None:
    """The ticket became resolved: queue the customer's resolution notice (unless the queue turned it off)."""
    return await mailer_for(config).resolved(tx, ticket_id)
