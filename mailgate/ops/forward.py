"""Forward a ticket or ask a colleague: the history goes out, answers come back as internal notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailgate import tokens
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.models import MailKind, ParsedMail
from mailgate.ops import delete
from mailgate.ops.base import Change, actor
from mailgate.outgoing import compose, outbox
from mailgate.outgoing import guard as loops
from mailgate.outgoing import notices as outbound
from mailgate.spool import SpoolEntry
from mailgate.store import Txn, events, forwards, messages
from mailgate.store import tickets as ticket_store
from mailgate.store.blobs import BlobStore, message_files
from mailgate.store.outbox_ids import reserve_id

FORWARD, HELP = "forward", "help"
_PURPOSE = {FORWARD: tokens.FORWARD, HELP: tokens.HELP}
_KIND = {v: k for k, v in _PURPOSE.items()}
MAX_ATTACHED = 20 << 20  # bytes of attachments in one forward; past that they are listed, not attached
THREAD_TEXT = 20_000  # characters of one message shown in a forward


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to a forward or a question, stored as an internal note."""

    ticket_id: int
    number: int
    message_row: int
    detail: str


async def forward(
    tx: Txn, config: Config, ticket_id: int, addresses: Sequence[str], agent: AgentConfig, *,
    notes: bool = False, text: str = "",
) -> Change:
    """The ticket with its whole correspondence (and attachments) to each address; notes only if asked."""
    await delete.live(tx, ticket_id, "[forward]")
    own = {a.lower() for a in config.gateway.addresses} | {outbound.mailer_for(tx, config).bounce_base}
    for address in addresses:
        if loops.base(address.lower()) in own:
            raise Refused(f"[forward:{address}]: that is mailgate's own address")
    for address in addresses:
        await _send(tx, config, ticket_id, FORWARD, address, None, agent, notes=notes, text=text)
    what = "with internal notes" if notes else "without internal notes"
    return Change("forward+notes" if notes else "forward", f"sent to {', '.join(addresses)} ({what})")


async def ask_help(
    tx: Txn, config: Config, ticket_id: int, colleagues: Sequence[str], agent: AgentConfig, *, text: str = ""
) -> Change:
    """Each colleague (an agent id) gets the question with the ticket's context, notes included."""
    await delete.live(tx, ticket_id, "[help]")
    known = ", ".join(a.id for a in config.agents)
    found: list[AgentConfig] = []
    for colleague_id in colleagues:
        colleague = config.agent(colleague_id)
        if colleague is None:
            raise Refused(f"[help:{colleague_id}]: unknown colleague {colleague_id!r} (known: {known})")
        if colleague.id == agent.id:
            raise Refused(f"[help:{colleague_id}]: that is you")
        found.append(colleague)
    for colleague in found:
        await _send(tx, config, ticket_id, HELP, colleague.addresses[0], colleague, agent, notes=True, text=text)
    return Change("help", f"asked {', '.join(c.id for c in found)}")


async def _send(
    tx: Txn, config: Config, ticket_id: int, kind: str, address: str, colleague: AgentConfig | None,
    agent: AgentConfig, *, notes: bool, text: str,
) -> None:
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, ticket_id)
    now = tx.now()
    forward_id = await forwards.add(tx, ticket_id, kind, agent.id, address, colleague.id if colleague else None, notes)
    token = tokens.Token(_PURPOSE[kind], info.number, str(forward_id))
    thread, files = await _thread(tx, config, ticket_id, notes)
    language = mailer.agent_language(info, colleague) if colleague else mailer.agent_language(info, agent)
    rendered = mailer.templates.render("forward" if kind == FORWARD else "help_request", language, mailer.data(
        info, agent_name=colleague.name if colleague else "", agent_id=colleague.id if colleague else "",
        outcome={"by": agent.name, "question": text, "thread": thread, "notes": notes},
    ))
    subject = compose.tagged_subject(rendered.subject, config.gateway.ticket_tag, info.number)
    message_id = tokens.message_id(mailer.secret, mailer.domain, token)
    sender = f"{agent.name} ({config.gateway.name})"
    outbox_id = await reserve_id(tx)
    raw = compose.wire(compose.Outgoing(
        from_name=sender, from_address=info.from_address, to_name=colleague.name if colleague else "",
        to_address=address, reply_to=tokens.reply_address(mailer.secret, info.from_address, token), subject=subject,
        message_id=message_id, text=rendered.text, html=rendered.html, marker=tokens.body_marker(mailer.secret, token),
        automatic=False, language=language, files=tuple(files),
    ))
    mail_from = tokens.reply_address(mailer.secret, mailer.bounce_base, tokens.Token(tokens.BOUNCE, outbox_id))
    await outbox.insert(tx, outbox.NewMail(
        ticket_id=ticket_id, kind=kind, automatic=False, agent=agent.id, message_id=message_id, from_name=sender,
        from_address=info.from_address, in_reply_to=None, rcpt_to=address, subject=subject, text=rendered.text,
        not_before=now,
    ), outbox_id=outbox_id, mail_from=mail_from, raw=raw)
    await forwards.set_outbox(tx, forward_id, outbox_id)
    await events.add(tx, ticket_id, actor(agent), f"ticket.{kind}",
                     {"to": address, "colleague": colleague.id if colleague else None, "notes": notes,
                      "forward": forward_id, "outbox": outbox_id, "attachments": len(files)})


async def _thread(
    tx: Txn, config: Config, ticket_id: int, notes: bool
) -> tuple[list[dict[str, Any]], list[compose.File]]:
    """The correspondence oldest first, and the attachment files that fit (the rest are only named)."""
    rows = await messages.of_ticket(tx, ticket_id, ("in", "out", "note") if notes else ("in", "out"))
    blobs = BlobStore(config.attachments_path)
    thread: list[dict[str, Any]] = []
    files: list[compose.File] = []
    budget = MAX_ATTACHED
    for row in rows:
        found, names = await message_files(tx, blobs, row.id, budget)
        budget -= sum(len(f.data) for f in found)
        files += found
        words = (row.text or row.reply_text or "").strip()
        sender = f"{row.from_name} <{row.from_address}>" if row.from_name and row.from_address else (
            row.from_name or row.from_address)
        thread.append({
            "direction": row.direction, "from": compose.clean(sender, 300),
            "at": (row.sent_at or row.created_at)[:16].replace("T", " "), "subject": compose.clean(row.subject),
            "text": words[:THREAD_TEXT] + ("\n[...]" if len(words) > THREAD_TEXT else ""), "attachments": names,
        })
    return thread, files


# -- answers ---------------------------------------------------------------------------------------


async def answer(tx: Txn, config: Config, mail: ParsedMail, entry: SpoolEntry, key: str) -> Answer | None:
    """A mail answering a forward or a question: an internal note on the ticket; the asking agent is told."""
    secret = config.secret_bytes()
    recipients = " ".join([*entry.envelope.rcpt_to, *(a.address for a in (*mail.to, *mail.cc))])
    referenced = " ".join(m for m in (mail.in_reply_to, *mail.references) if m)
    for token in [*tokens.find(secret, recipients), *tokens.find(secret, referenced)]:
        if token.purpose not in _KIND or not (token.agent or "").isdigit():
            continue
        row = await forwards.get(tx, int(token.agent or 0))
        if row is not None and row.kind == _KIND[token.purpose]:
            return await _store_answer(tx, config, mail, entry, key, row)
    return None


async def _store_answer(
    tx: Txn, config: Config, mail: ParsedMail, entry: SpoolEntry, key: str, asked: forwards.Forward
) -> Answer:
    ticket_id = await ticket_store.survivor(tx, asked.ticket_id)
    number = await ticket_store.number_of(tx, ticket_id) or 0
    sender = mail.from_[0] if mail.from_ else None
    address = sender.address.lower() if sender else ""
    detail = f"answer to the {asked.kind} #{asked.id} {asked.asked_by} sent to {asked.address}"
    now = tx.now_iso()
    row = await messages.insert(tx, messages.NewMessage(
        ticket_id=ticket_id, spool_id=entry.id, direction="note", message_id=mail.message_id, content_key=key,
        in_reply_to=mail.in_reply_to, from_name=sender.name if sender else "", from_address=address,
        recipients={"to": [a.to_json() for a in mail.to], "cc": [a.to_json() for a in mail.cc], "reply_to": []},
        subject=mail.subject, sent_at=mail.date.isoformat() if mail.date else None, text=mail.text, html=mail.html,
        reply_text=mail.reply_text, kind=str(mail.kind), defects=mail.defects, thread_rule="token",
        thread_detail=detail, created_at=now, attachments=mail.attachments, thread_by_id=False,
    ))
    by = f"{asked.kind}:{address or asked.address}"
    await events.add(tx, ticket_id, by, "note.added", {
        "message": row, "message_id": mail.message_id, "forward": asked.id, "kind": str(mail.kind),
        "sender_is_recipient": address == asked.address,
    })
    if mail.kind is not MailKind.MESSAGE or entry.envelope.imported:
        return Answer(ticket_id, number, row, detail)  # an out-of-office: kept, nobody is bothered
    await forwards.answered(tx, asked.id, now)
    await ticket_store.touch(tx, ticket_id)
    await forwards.flag(tx, ticket_id, asked.asked_by, f"{asked.kind} answered by {address}", now)
    asker = config.agent(asked.asked_by)
    if asker is not None:
        mailer = outbound.mailer_for(tx, config)
        info = await mailer.ticket(tx, ticket_id)
        shown = f"{sender.name} <{address}>" if sender and sender.name else address
        await mailer.queue_mail(
            tx, info, kind="notify", template="forward_answer", to_name=asker.name, to_address=asker.addresses[0],
            language=mailer.agent_language(info, asker), auto_kind="auto-generated",
            reply_token=tokens.Token(tokens.AGENT_NOTE, info.number, asker.id),  # answering it adds a note
            data=mailer.data(info, agent_name=asker.name, agent_id=asker.id, message_from=shown,
                             message_text=mail.reply_text or mail.text, outcome={"by": asker.name}),
        )
    return Answer(ticket_id, number, row, detail)


async def seen(tx: Txn, ticket_id: int, agent: AgentConfig) -> None:
    """The agent acted on the ticket: its flag for them (an answer came in) is cleared."""
    await forwards.unflag(tx, ticket_id, agent.id)
