"""What an agent hears back about their mail: one confirmation or one refusal, and warnings of mail in their name."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mailgate import tokens
from mailgate.config import AgentConfig, Config
from mailgate.mail.identity import Identity
from mailgate.models import MailKind, ParsedMail
from mailgate.outgoing import notices as outbound
from mailgate.outgoing.templates import context
from mailgate.outgoing.ticketless import queue_to_agent
from mailgate.store import Txn, events
from mailgate.store import outbox as outbox_rows

UNPROVEN_NOTICES_PER_HOUR = 5


@dataclass
class Outcome:
    """What the confirmation or refusal says (the agent_done / agent_refused templates read these names)."""

    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    reply_at: str = ""
    note: bool = False
    already_sent: bool = False
    listing: str = ""
    tickets: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)  # [list:replies]: name, language, queue, first_line
    why: str = ""
    ticketless: bool = False


def local_time(config: Config, moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(config.gateway.timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


async def tell(
    tx: Txn, config: Config, agent: AgentConfig, ticket_id: int | None, template: str, outcome: Outcome,
    is_note: bool, excerpt: tuple[str, str] | None = None,
) -> None:
    """One mail to the agent: the confirmation or the refusal; its Reply-To keeps a note a note."""
    mailer = outbound.mailer_for(tx, config)
    data = asdict(outcome)
    who, words = excerpt or ("", "")
    if ticket_id is None:
        await _tell_ticketless(tx, config, agent, template, data)
        return
    info = await mailer.ticket(tx, ticket_id)
    purpose = tokens.AGENT_NOTE if is_note else tokens.AGENT_REPLY
    await mailer.queue_mail(
        tx, info, kind="agent", template=template, to_name=agent.name, to_address=agent.addresses[0],
        language=mailer.agent_language(info, agent), auto_kind="auto-generated",
        reply_token=tokens.Token(purpose, info.number, agent.id),
        data=mailer.data(info, agent_name=agent.name, agent_id=agent.id, message_from=who, message_text=words,
                         outcome=data),
    )


async def _tell_ticketless(tx: Txn, config: Config, agent: AgentConfig, template: str, data: dict[str, Any]) -> None:
    """A mail to an agent about no ticket ([list], a refused command mail); Reply-To is the command address."""
    mailer = outbound.mailer_for(tx, config)
    language = agent.language or config.gateway.default_language
    rendered = mailer.templates.render(template, language, context(
        gateway=config.gateway.name, number=0, tag=config.gateway.ticket_tag, subject="",
        agent_name=agent.name, agent_id=agent.id, outcome=data,
    ))
    await queue_to_agent(mailer, tx, config, agent, rendered, language=language)


async def unproven(
    tx: Txn, config: Config, ident: Identity | None, ticket_id: int, mail: ParsedMail, *, imported: bool,
    opened: bool = False,
) -> None:
    """The real agent hears that a mail in their name was not taken as theirs, why, and how to act.

    Always at the agent's configured address: a From anyone can forge must never steer the notice
    (a Reply-To in it is the forger's). opened: the mail opened this ticket (nothing else named one).
    """
    if ident is None or ident.claimed is None:
        return
    agent = ident.claimed
    await events.add(tx, ticket_id, "system", "agent_mail.unproven", {"agent": agent.id, "why": ident.why, "opened": opened})
    mailer = outbound.mailer_for(tx, config)
    if mail.kind is not MailKind.MESSAGE or imported:
        return  # an out-of-office in the agent's name: a notice would be answered by the next one
    since = (tx.now() - timedelta(hours=1)).isoformat(timespec="microseconds")
    if await outbox_rows.count_since(tx, "unproven", agent.addresses[0], since) >= UNPROVEN_NOTICES_PER_HOUR:
        return  # a flood of forgeries: the agent has been told
    info = await mailer.ticket(tx, ticket_id)
    token = tokens.Token(tokens.AGENT_REPLY, info.number, agent.id)
    # Spelled out in the text as well as the Reply-To: a mail written to it proves the agent
    # whatever her mail server does (no DKIM, no SPF, a relay that rewrites the From).
    address = tokens.reply_address(mailer.secret, info.from_address, token)
    await mailer.queue_mail(
        tx, info, kind="unproven", template="agent_unproven", to_name=agent.name, to_address=agent.addresses[0],
        language=mailer.agent_language(info, agent), auto_kind="auto-generated", reply_token=token,
        data=mailer.data(info, agent_name=agent.name, agent_id=agent.id,
                         outcome={"why": ident.why, "opened": opened, "address": address}),
    )
