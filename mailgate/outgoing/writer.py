"""Render one mail from a template and queue it in the outbox, inside the caller's transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mailgate import tokens
from mailgate.config import LANGUAGES, AgentConfig, Config, QueueConfig, bounce_address
from mailgate.mail import identity
from mailgate.outgoing import compose
from mailgate.outgoing import guard as loops
from mailgate.outgoing.templates import Templates, choose_language, context, for_config
from mailgate.store import Txn
from mailgate.store import outbox as rows
from mailgate.store.outbox_ids import reserve_id
from mailgate.store.ticket_facts import facts

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
    references: tuple[str, ...]  # the ticket's first Message-ID and its newest ones, oldest first
    last_inbound: str | None  # the Message-ID an answer replies to
    following: tuple[str, ...] = ()  # agent ids following the ticket, sorted
    unfollowed: frozenset[str] = frozenset()  # agent ids who said [unfollow]


class Writer:
    """What every notice needs: templates, the loop guard, addresses and tokens of one config."""

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
        # Reply-To addresses and body markers depend only on the secret, the address and the token:
        # a new ticket's acknowledgement and notifications carry the same marker, and every later
        # mail of the ticket the same addresses again. Each is an HMAC and a base32 encoding.
        self._signed: dict[tuple[str, tokens.Token], str] = {}

    async def ticket(self, tx: Txn, ticket_id: int) -> TicketInfo:
        found = await facts(tx, ticket_id)
        if found is None:
            raise LookupError(f"no ticket with id {ticket_id}")
        queue = self.config.queue(found.queue) if found.queue else None
        written_to = self._support_address(found.written_to)
        if queue is None and written_to is not None:
            queue = self.config.queue_for_address(written_to)
        from_address = (
            (queue.addresses[0] if queue and queue.addresses else None) or written_to or self.config.gateway.addresses[0]
        )
        return TicketInfo(
            id=ticket_id, number=found.number, subject=found.subject, status=found.status, priority=found.priority,
            assignee=found.assignee, queue=queue, from_address=from_address, customer_name=found.customer_name,
            customer_address=found.customer_address, contact_language=found.contact_language,
            ack_suppressed=found.ack_suppressed, quarantined=found.quarantined,
            detected_language=found.detected_language, references=found.references,
            last_inbound=found.last_inbound, following=found.following, unfollowed=found.unfollowed,
        )

    def _support_address(self, written_to: tuple[tuple[str, ...], ...]) -> str | None:
        for rcpts in written_to:
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
        """Who hears of a ticket's mail and notes: agents_to_tell and its followers.

        An agent who said [unfollow] is left out unless they are the assignee: the ticket is theirs.
        The watchers came with the ticket's facts (info is read right before its notices).
        """
        dropped = info.unfollowed
        following = [a for a in (self.config.agent(i) for i in info.following) if a is not None and not a.away]
        chosen: dict[str, AgentConfig] = {}
        for agent in [*self.agents_to_tell(info), *following]:
            if agent.id in dropped and agent.id != info.assignee:
                continue
            chosen.setdefault(agent.id, agent)
        return list(chosen.values())

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
        """Render, compose with the VERP return path of the row id it reserves, insert and schedule; returns the id.

        reply_token: the Reply-To (default: the customer's 'r' address); mail to an agent carries that
        agent's 'a' (answers the customer) or 'n' (adds a note) address instead.
        """
        rendered = self.templates.render(template, language if language in LANGUAGES else "en", data)
        token = tokens.Token("r", info.number)
        shown_name = from_name or self.config.gateway.name
        message_id = tokens.message_id(self.secret, self.domain, token)
        subject = compose.tagged_subject(rendered.subject, self.config.gateway.ticket_tag, info.number)
        when = not_before or tx.now()
        outbox_id = await reserve_id(tx)
        mail_from = tokens.reply_address(self.secret, self.bounce_base, tokens.Token("b", outbox_id))
        raw = compose.wire(compose.Outgoing(
            from_name=shown_name, from_address=info.from_address, to_name=to_name,
            to_address=to_address, reply_to=self._sign(info.from_address, reply_token or token),
            subject=subject, message_id=message_id, text=rendered.text, html=rendered.html,
            marker=self._sign("", token), in_reply_to=info.last_inbound,
            references=info.references, automatic=automatic, auto_kind=auto_kind, language=language, cc=cc,
            files=files, date=tx.now(),
        ))
        await rows.insert(tx, rows.NewMail(
            ticket_id=info.id, kind=kind, automatic=automatic, agent=agent, message_id=message_id,
            from_name=shown_name, from_address=info.from_address, in_reply_to=info.last_inbound,
            rcpt_to=envelope_to or to_address, subject=subject, text=rendered.text, not_before=when,
        ), outbox_id=outbox_id, mail_from=mail_from, raw=raw)
        return outbox_id

    def _sign(self, address: str, token: tokens.Token) -> str:
        """The reply address at `address` for the token, or (address "") its body marker; remembered."""
        found = self._signed.get((address, token))
        if found is None:
            if len(self._signed) >= 4096:
                self._signed.clear()
            found = self._signed[(address, token)] = (
                tokens.reply_address(self.secret, address, token) if address else tokens.body_marker(self.secret, token))
        return found

    async def copy_to(self, tx: Txn, info: TicketInfo, row: rows.OutboxRow, address: str) -> int:
        """The same mail for one more envelope recipient: its own row, Message-ID and VERP path, not a new build."""
        message_id = tokens.message_id(self.secret, self.domain, tokens.Token("r", info.number))
        when = datetime.fromisoformat(row.not_before)
        copy_id = await reserve_id(tx)
        raw = row.raw
        head, blank, body = raw.partition(b"\r\n\r\n")
        ours = f"\r\nMessage-ID: <{row.message_id}>\r\n".encode()
        if ours in head:
            raw = head.replace(ours, f"\r\nMessage-ID: <{message_id}>\r\n".encode(), 1) + blank + body
        else:  # compose always writes it so; were it folded, the copy keeps the first one's (threads the same)
            log.warning("outbound.copy_message_id_kept outbox=%s copy=%s", row.id, copy_id)
        mail_from = tokens.reply_address(self.secret, self.bounce_base, tokens.Token("b", copy_id))
        await rows.insert(tx, rows.NewMail(
            ticket_id=info.id, kind=row.kind, automatic=row.automatic, agent=row.agent,
            message_id=message_id, from_name=row.from_name, from_address=row.from_address,
            in_reply_to=row.in_reply_to, rcpt_to=address, subject=row.subject, text=row.text, not_before=when,
        ), outbox_id=copy_id, mail_from=mail_from, raw=raw)
        return copy_id


def local_time(config: Config, stored: str | datetime) -> str:
    """A stored UTC time as agents read it (gateway.timezone), minutes only."""
    try:
        moment = stored if isinstance(stored, datetime) else datetime.fromisoformat(stored)
    except (TypeError, ValueError):
        return str(stored or "")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(config.gateway.timezone)).strftime("%Y-%m-%d %H:%M %Z")
