"""An agent's mail: prove who sent it, run its commands all-or-nothing, pass its reply on or keep it as a note."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mailgate import commands, tokens
from mailgate.commands import TagError
from mailgate.config import AgentConfig, Config
from mailgate.mail import agent_words, identity, quotes
from mailgate.mail.identity import Identity
from mailgate.mail.subjects import subject_tags
from mailgate.models import Correlation, MailKind, ParsedMail, ThreadRule
from mailgate.ops import agent as agent_ops
from mailgate.ops import cases as case_ops
from mailgate.ops import forward as forwarding
from mailgate.ops import lifecycle, tasks, tickets, watchers
from mailgate.ops import opening as agent_tickets
from mailgate.ops.agent import OpError
from mailgate.outgoing import compose, outbox
from mailgate.outgoing import notices as outbound
from mailgate.outgoing.templates import context
from mailgate.spool import SpoolEntry
from mailgate.store import Txn
from mailgate.store.blobs import BlobStore, message_files
from mailgate.store.tickets import survivor

log = logging.getLogger("mailgate.agent_mail")


@dataclass(frozen=True, slots=True)
class Decision:
    """What process.py does next: nothing more (handled), or its usual path with this threading."""

    handled: bool
    found: Correlation
    identity: Identity | None = None
    ticket_number: int | None = None
    message_row: int | None = None

    @property
    def unproven(self) -> bool:
        return self.identity is not None and self.identity.unproven_agent


@dataclass
class _Outcome:
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    reply_at: str = ""
    note: bool = False
    already_sent: bool = False
    listing: str = ""
    tickets: list[dict[str, Any]] = field(default_factory=list)
    why: str = ""
    ticketless: bool = False


async def dispatch(tx: Txn, config: Config, mail: ParsedMail, entry: SpoolEntry, key: str, found: Correlation) -> Decision:
    """Decide inside the intake transaction; a proven agent's mail is handled here completely."""
    secret = config.secret_bytes()
    # Issue 7: an answer to a forward or to [help:…] is an internal note, whoever sends it.
    answered = await forwarding.answer(tx, config, mail, entry, key)
    if answered is not None:
        return Decision(True, Correlation(answered.ticket_id, ThreadRule.TOKEN, answered.detail), None,
                        answered.number, answered.message_row)
    # Issue 7 part 9: an answer to a task, from the agent it went to, is a note in the task (tasks.py).
    task_answer = await tasks.on_mail(tx, config, mail, entry, key)
    if task_answer is not None:
        return Decision(True, Correlation(task_answer.ticket_id, ThreadRule.TOKEN, task_answer.detail), None,
                        task_answer.number, task_answer.message_row)
    ident = identity.resolve_entry(config, mail, entry.envelope, secret)
    found = await _thread_by_agent_token(tx, mail, entry.envelope.rcpt_to, secret, found)
    if ident.agent is None:
        if ident.claimed is not None:
            found = _unproven_trace(found, ident.claimed)
            log.warning("agent_mail.unproven agent=%s ticket_id=%s thread=%s why=%s",
                        ident.claimed.id, found.ticket_id or "new", found.rule, ident.why)
        return Decision(False, found, ident)
    return await _proven(tx, config, mail, entry, key, found, ident, ident.agent)


def _unproven_trace(found: Correlation, claimed: AgentConfig) -> Correlation:
    """The threading trace of an agent's mail without proof says so: it is kept, nothing in it runs."""
    if found.ticket_id is None:
        what = "a new ticket with the agent as requester, not acknowledged, nothing run"
    else:
        what = "kept on the ticket, nothing run, nothing sent to the customer"
    return Correlation(found.ticket_id, found.rule, f"{found.detail}; From is agent {claimed.id} without proof: {what}")


async def _thread_by_agent_token(
    tx: Txn, mail: ParsedMail, rcpt_to: tuple[str, ...], secret: bytes, found: Correlation
) -> Correlation:
    """Mail to an agent's reply or note address belongs to that ticket, whoever sent it."""
    if found.ticket_id is not None:
        return found
    recipients = " ".join([*rcpt_to, *(a.address for a in (*mail.to, *mail.cc))])
    for token in tokens.find(secret, recipients):
        if token.purpose in (tokens.AGENT_REPLY, tokens.AGENT_NOTE) and token.ticket:
            ticket_id = await tx.value("SELECT id FROM tickets WHERE number = ?", (token.ticket,))
            if ticket_id is not None:
                return Correlation(ticket_id, ThreadRule.TOKEN, f"agent token for #{token.ticket} in recipient")
    return found


async def _ticket_of(tx: Txn, config: Config, mail: ParsedMail, found: Correlation, ident: Identity) -> int | None:
    if ident.ticket:
        found_id = await tx.value("SELECT id FROM tickets WHERE number = ?", (ident.ticket,))
        return await survivor(tx, int(found_id)) if found_id is not None else None  # merged (issue 7)
    if ident.ticket == 0:
        return None  # the agent's command address
    if found.ticket_id is not None:
        return found.ticket_id
    # A proven agent may name any ticket by its subject tag (customers only their own).
    for number in subject_tags(mail.subject, config.gateway.ticket_tag):
        ticket_id = await tx.value("SELECT id FROM tickets WHERE number = ?", (number,))
        if ticket_id is not None:
            return await survivor(tx, int(ticket_id))  # merged (issue 7)
    return None


async def _proven(
    tx: Txn, config: Config, mail: ParsedMail, entry: SpoolEntry, key: str, found: Correlation,
    ident: Identity, agent: AgentConfig,
) -> Decision:
    mailer = outbound.mailer_for(tx, config)
    ticket_id = await _ticket_of(tx, config, mail, found, ident)
    answered = await answered_subject(tx, mail, ticket_id)
    words = await agent_words.for_customer(
        tx, mail, ticket_id, new_text(mail.text, mail.html, keep_signature=agent.keep_signature), config.secret_bytes())
    parsed = commands.parse(mail.subject, words.text, now=datetime.now(UTC), tz=config.gateway.timezone,
                            inherited=answered)
    if parsed.quoted:
        # Most often a customer's "[…]" coming back in the agent's Re:, or her own mail she answers.
        log.info("agent_mail.tags_not_hers agent=%s ticket_id=%s tags=%s", agent.id, ticket_id, " ".join(parsed.quoted))
    parsed = case_ops.prepare(parsed, mail)  # issue 7: words for [forward]/[help], the message [split] answers
    parsed = agent_tickets.prepare(parsed)  # issue 7: the words of a [task:…]
    if (parsed.has("new") or parsed.has("behalf")) and mail.kind is MailKind.MESSAGE:
        # Issue 7 part 7: a ticket the agent opens (agent_tickets.py), all or nothing.
        return await agent_tickets.open_by_mail(tx, config, mail, entry, key, found, ident, agent, parsed, ticket_id)
    text = parsed.body.strip()
    is_note = ident.note or parsed.has("note")
    is_note = is_note or any(parsed.has(n) for n in case_ops.NOTE_COMMANDS)  # issue 7: never a reply
    is_note = is_note or parsed.has("task")  # issue 7 part 9: the words are the task's, never a reply
    ticketless = ticket_id is None
    if ticketless and ident.ticket is None and not parsed.commands and not parsed.errors:
        return Decision(False, found, ident)  # an agent writing to support like anyone: a ticket as usual
    if mail.kind is not MailKind.MESSAGE:
        # An agent's out-of-office answering a notification must never reach the customer.
        row = await _store(tx, ticket_id, agent, mail, entry, key, parsed, "agent") if ticket_id else None
        if ticket_id:
            await tickets.event(tx, ticket_id, agent_ops.actor(agent), "agent_mail.ignored", {"kind": str(mail.kind)})
        return Decision(True, found, ident, await _number(tx, ticket_id), row)
    answers_ours = await _answers_our_automatic_mail(tx, mail)
    if answers_ours and ticket_id and text and not parsed.commands and await _said_already(tx, ticket_id, agent, text):
        # The same words again, in answer to a confirmation or notice: an auto-responder that ignores
        # Auto-Submitted answers every mail it gets. Passed on once; from here on kept, not answered.
        row = await _store(tx, ticket_id, agent, mail, entry, key, parsed, "agent")
        await tickets.event(tx, ticket_id, agent_ops.actor(agent), "agent_mail.ignored",
                            {"reason": "the same text again, in answer to an automatic mail"})
        log.info("agent_mail.ignored agent=%s ticket_id=%s reason=repeat_to_automatic_mail", agent.id, ticket_id)
        return Decision(True, found, ident, await _number(tx, ticket_id), row)
    outcome = _Outcome(note=is_note, ticketless=ticketless)
    ticket = await tx.one("SELECT * FROM tickets WHERE id = ?", (ticket_id,)) if ticket_id else None
    errors = [*parsed.errors, *agent_ops.check(config, agent, ticket, parsed.commands)]
    errors += agent_tickets.check(config, ticket, parsed.commands)  # issue 7: new-ticket, task, follow tags
    if ident.ticket and ticket is None:
        errors.append(TagError(f"#{ident.ticket}", "no such ticket"))
    if ticketless and not parsed.commands and not parsed.errors:
        errors.append(TagError("(mail)", "nothing to do: no command, and no ticket to answer"))
    elif not ticketless and not text and words.pasted and not parsed.commands:
        errors.append(TagError("(reply)", "your words follow a copy of mailgate's mail that is not marked as a"
                                          " quote; nothing was sent: answer above the quoted mail, or mark it with \"> \""))
    elif not ticketless and not text and not parsed.commands and not parsed.errors:
        # An empty answer (sent too soon, or words the cut took for quoted history): the agent hears
        # of it, rather than a confirmation of nothing.
        errors.append(TagError("(mail)", "no words of yours above, below or between the quoted lines, and no"
                                         " command: nothing was done"))
    elif not ticketless and text and not is_note and not parsed.commands \
            and (notice := await _answers_a_notice(tx, mail)) is not None:
        # Only confirmations ("Done", "Not done") promise "Reply = answer the customer" in their
        # footer; a reply to a delivery failure, a held reply or a warning about a forged mail
        # without a command is no answer to the customer, so the agent is told, not ignored.
        errors.append(TagError("(reply)", f"this mail answers {notice}, whose replies do not reach the customer;"
                                          " nothing was sent: answer the ticket's notification or a Done mail"))
    if ticket is not None and text and not is_note:
        info = await mailer.ticket(tx, ticket["id"])
        if not info.customer_address:
            errors.append(TagError("(reply)", "the ticket has no customer address to answer"))
        elif tokens.find(config.secret_bytes(), text):
            # Our own reference is still in it: quoted history the cut missed (quoted without ">" and
            # without an attribution line); never send that on.
            errors.append(TagError("(reply)", "the words for the customer still hold mailgate's own mail"
                                              " (its [ref:…] line), quoted in a way not recognised; nothing was"
                                              " sent: answer above or below the quoted mail, or mark it with \"> \""))
        elif await _said_already(tx, ticket["id"], agent, text):
            # The same words again within a day: an automatic answer caught in a loop, not a person.
            errors.append(TagError("(reply)", "the same text went to this ticket in the last 24 hours; not sent again"))
    message_row = None
    if not errors:
        await tx.execute("SAVEPOINT agent_mail")
        try:
            message_row = await _apply(tx, config, mailer, mail, entry, key, parsed, ticket_id, agent, outcome)
        except (OpError, ValueError) as exc:
            # Checks come first, so this is a race or a bug; either way nothing of the mail stays applied.
            await tx.execute("ROLLBACK TO agent_mail")
            errors.append(TagError("(mail)", str(exc)))
        await tx.execute("RELEASE agent_mail")
    if errors:
        outcome = _Outcome(errors=[str(e) for e in errors], note=is_note, ticketless=ticketless)
        if ticket_id is not None:
            # Kept (not lost), but nothing of it applied and nothing sent on.
            message_row = await _store(tx, ticket_id, agent, mail, entry, key, parsed, "agent")
            await tickets.event(tx, ticket_id, agent_ops.actor(agent), "agent_mail.refused", {"errors": outcome.errors})
        log.info("agent_mail.refused agent=%s ticket_id=%s errors=%s", agent.id, ticket_id, "; ".join(outcome.errors))
        if answers_ours and ticket_id is not None and await _refusals_lately(tx, ticket_id, agent) > REFUSALS_PER_HOUR:
            # Refusal answered by refusal: a machine on the other side; the agent has been told.
            log.warning("agent_mail.refusal_muted agent=%s ticket_id=%s", agent.id, ticket_id)
        else:
            await _tell(tx, config, agent, ticket_id, "agent_refused", outcome, is_note)
        return Decision(True, found, ident, await _number(tx, ticket_id), message_row)
    await _tell(tx, config, agent, ticket_id, "agent_done", outcome, is_note,
                excerpt=(agent.name, text) if text and ticket_id else None)
    return Decision(True, found, ident, await _number(tx, ticket_id), message_row)


async def _apply(
    tx: Txn, config: Config, mailer: outbound.Mailer, mail: ParsedMail, entry: SpoolEntry, key: str,
    parsed: commands.Parsed, ticket_id: int | None, agent: AgentConfig, outcome: _Outcome,
) -> int | None:
    """Every command, then the note or the reply; raises on the first failure (the caller rolls back)."""
    changes = await agent_ops.apply(tx, config, ticket_id, parsed.commands, agent)
    if ticket_id is not None:
        await forwarding.seen(tx, ticket_id, agent)  # issue 7: they acted, so an answer's flag is cleared
        await watchers.acted(tx, ticket_id, agent.id)  # issue 7 part 10: acting follows and reads the ticket
    for command, change in zip(_applied_order(parsed.commands), changes, strict=False):
        outcome.changes.append(f"{command.render()} {change.summary}")
    listing = parsed.get("list")
    if listing is not None:
        outcome.listing = listing.value
        outcome.tickets = await agent_ops.list_tickets(tx, config, agent, listing.value)
    picked = next((c.ticket for c in changes if c.ticket), None)
    if picked is not None:
        await _send_ticket(tx, config, agent, picked)
    if ticket_id is None:
        return None
    text = parsed.body.strip()
    if outcome.note:
        row = await _store(tx, ticket_id, agent, mail, entry, key, parsed, "note")
        if text:
            await mailer.notify_note(tx, await mailer.ticket(tx, ticket_id), agent, text)
        return row
    row = await _store(tx, ticket_id, agent, mail, entry, key, parsed, "agent")
    if not text:
        return row
    # An answer takes the ticket out of "new"; a status the agent's tags set is kept.
    await lifecycle.answered(tx, config, ticket_id, actor=agent_ops.actor(agent))
    info = await mailer.ticket(tx, ticket_id)
    cc, left_out = await mailer.reply_recipients(tx, info)
    people = {info.customer_address.lower(), *cc}
    if (people | set(left_out)) & {a.address.lower() for a in (*mail.to, *mail.cc)}:
        # The agent wrote to the customer directly too: sending it again would double it.
        outcome.already_sent = True
        await tickets.event(tx, ticket_id, agent_ops.actor(agent), "reply.already_sent", {"message": row})
        return row
    # What the agent attached goes with the words; images their HTML shows inline (signatures) do not.
    files, names = await message_files(tx, BlobStore(config.attachments_path), row, forwarding.MAX_ATTACHED,
                                       embedded=False)
    outcome.changes += [f"(reply) {name}" for name in names if "(not attached:" in name]
    outbox_id = await outbox.queue_agent_reply(tx, mailer, ticket_id, agent.id, text, files=tuple(files))
    due = await tx.value("SELECT not_before FROM outbox WHERE id = ?", (outbox_id,))
    outcome.reply_to = sorted(people)
    if left_out:
        outcome.changes.append(f"(reply) not sent to {len(left_out)} more Cc parties (at most"
                               f" {config.tickets.max_reply_recipients} recipients): {', '.join(left_out[:10])}")
    outcome.reply_at = _local_time(config, datetime.fromisoformat(due))
    return row


async def answered_subject(tx: Txn, mail: ParsedMail, ticket_id: int | None) -> str:
    """The subject of the mail an agent answers: ours (outbox) or one we received, else the ticket's.

    Tags already in it were not written by the agent (a customer's subject copied into a
    notification, or a customer's mail the agent was copied on); parse() gives them no power.
    """
    for parent in [mail.in_reply_to, *reversed(mail.references)]:
        key = compose.clean_message_id(parent or "")
        if not key:
            continue
        for sql in ("SELECT subject FROM outbox WHERE message_id IN (?, ?) ORDER BY id DESC LIMIT 1",
                    "SELECT subject FROM messages WHERE message_id IN (?, ?) ORDER BY id DESC LIMIT 1"):
            subject = await tx.value(sql, (key, f"<{key}>"))
            if subject is not None:
                return str(subject)
    if ticket_id is None:
        return ""
    return str(await tx.value("SELECT subject FROM tickets WHERE id = ?", (ticket_id,)) or "")


def new_text(text: str, html: str | None = None, *, keep_signature: bool = False) -> str:
    """What the agent wrote above, below or between the quoted lines: empty when only tags and quotes are there."""
    return quotes.new_text(text, html, keep_signature=keep_signature)


async def _answers_our_automatic_mail(tx: Txn, mail: ParsedMail) -> bool:
    """Whether the mail answers a confirmation, refusal or notice mailgate sent to an agent."""
    parents = [m for m in (mail.in_reply_to, *mail.references[-3:]) if m]
    if not parents:
        return False
    marks = ", ".join("?" for _ in parents)
    return bool(await tx.value(
        f"SELECT 1 FROM outbox WHERE message_id IN ({marks}) AND kind IN ('agent', 'unproven', 'held', 'failed') LIMIT 1", parents,
    ))


REFUSALS_PER_HOUR = 3  # per agent and ticket, for mails that answer mailgate's own; then kept without a reply


async def _refusals_lately(tx: Txn, ticket_id: int, agent: AgentConfig) -> int:
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="microseconds")
    return int(await tx.value(
        "SELECT COUNT(*) FROM events WHERE ticket_id = ? AND actor = ? AND kind = 'agent_mail.refused' AND at > ?",
        (ticket_id, agent_ops.actor(agent), since)) or 0)


# Notices whose answer is not an answer to the customer (their text says what to do instead).
_NOTICES = {"unproven": "the warning about a mail in your name", "held": "the notice of your held reply",
            "failed": "a delivery failure notice"}


async def _answers_a_notice(tx: Txn, mail: ParsedMail) -> str | None:
    """Which notice (not a confirmation) mailgate sent to an agent the mail answers, in words."""
    parent = mail.in_reply_to or (mail.references[-1] if mail.references else None)
    if not parent:
        return None
    kind = await tx.value("SELECT kind FROM outbox WHERE message_id = ? LIMIT 1", (parent,))
    return _NOTICES.get(str(kind)) if kind is not None else None


async def _said_already(tx: Txn, ticket_id: int, agent: AgentConfig, text: str) -> bool:
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="microseconds")
    return bool(await tx.value(
        "SELECT 1 FROM messages WHERE ticket_id = ? AND direction = 'agent' AND from_address = ? AND reply_text = ?"
        " AND created_at > ? LIMIT 1", (ticket_id, agent.addresses[0], text, since),
    ))


def _applied_order(cmds: tuple[commands.Command, ...]) -> list[commands.Command]:
    order: tuple[str, ...] = ("queue", "priority", "category", "tag", "assign", "take", "status", "snooze", "cancel", "send", "next")
    order += ("task", "follow", "unfollow")  # issue 7 parts 9-10 (agent_tickets); before merge, which ends the ticket
    order += ("cc",)
    order += ("files",)  # as agent_ops.apply orders them: one change per command, zipped below
    order += ("forward", "forward+notes", "help", "split", "merge")  # issue 7 (case_ops)
    return sorted((c for c in cmds if c.name in order), key=lambda c: order.index(c.name))


def _local_time(config: Config, moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(config.gateway.timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


async def _number(tx: Txn, ticket_id: int | None) -> int | None:
    if ticket_id is None:
        return None
    return int(await tx.value("SELECT number FROM tickets WHERE id = ?", (ticket_id,)))


async def _store(
    tx: Txn, ticket_id: int, agent: AgentConfig, mail: ParsedMail, entry: SpoolEntry, key: str,
    parsed: commands.Parsed, direction: str,
) -> int:
    """The agent's mail on the ticket, tags removed; the raw bytes stay in the spool."""
    return await agent_ops.add_message(
        tx, ticket_id, agent, direction=direction, subject=parsed.subject,
        text=commands.strip_body(mail.text), reply_text=parsed.body.strip(), message_id=mail.message_id,
        spool_id=entry.id, content_key=key, attachments=mail.attachments,
        sent_at=mail.date.isoformat() if mail.date else None,
    )


async def _send_ticket(tx: Txn, config: Config, agent: AgentConfig, ticket_id: int) -> None:
    """[next]: the picked ticket, with the customer's latest words, Reply-To answering it."""
    number = await tx.value("SELECT number FROM tickets WHERE id = ?", (ticket_id,))
    await agent_ops.mail_ticket_to(
        tx, config, ticket_id, agent, kind="agent", template="agent_done",
        outcome={"changes": [f"[next] #{number}"]},
    )


async def _tell(
    tx: Txn, config: Config, agent: AgentConfig, ticket_id: int | None, template: str, outcome: _Outcome,
    is_note: bool, excerpt: tuple[str, str] | None = None,
) -> None:
    """One mail to the agent: the confirmation or the refusal; its Reply-To keeps a note a note."""
    mailer = outbound.mailer_for(tx, config)
    data = {k: getattr(outcome, k) for k in outcome.__dataclass_fields__}
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
    token = tokens.Token(tokens.AGENT_REPLY, 0, agent.id)
    sender = config.gateway.addresses[0]
    message_id = tokens.message_id(mailer.secret, mailer.domain, token)
    now = datetime.now(UTC)
    outbox_id = await outbox.insert(tx, outbox.NewMail(
        ticket_id=None, kind="agent", automatic=True, agent=agent.id, message_id=message_id,
        from_name=config.gateway.name, from_address=sender, in_reply_to=None, rcpt_to=agent.addresses[0],
        subject=rendered.subject, text=rendered.text, not_before=now,
    ))
    message = compose.compose(compose.Outgoing(
        from_name=config.gateway.name, from_address=sender, to_name=agent.name, to_address=agent.addresses[0],
        reply_to=tokens.reply_address(mailer.secret, sender, token), subject=rendered.subject,
        message_id=message_id, text=rendered.text, html=rendered.html, marker="", automatic=True,
        auto_kind="auto-generated", language=language,
    ))
    mail_from = tokens.reply_address(mailer.secret, mailer.bounce_base, tokens.Token(tokens.BOUNCE, outbox_id))
    await outbox.set_wire(tx, outbox_id, mail_from, compose.to_bytes(message), now)


UNPROVEN_NOTICES_PER_HOUR = 5


async def tell_unproven(
    tx: Txn, config: Config, decision: Decision, ticket_id: int, mail: ParsedMail, *, imported: bool,
    opened: bool = False,
) -> None:
    """The real agent hears that a mail in their name was not taken as theirs, why, and how to act.

    Always at the agent's configured address: a From anyone can forge must never steer the notice
    (a Reply-To in it is the forger's). opened: the mail opened this ticket (nothing else named one).
    """
    ident = decision.identity
    if ident is None or ident.claimed is None:
        return
    agent = ident.claimed
    await tickets.event(tx, ticket_id, "system", "agent_mail.unproven",
                        {"agent": agent.id, "why": ident.why, "opened": opened})
    mailer = outbound.mailer_for(tx, config)
    if mail.kind is not MailKind.MESSAGE or imported:
        return  # an out-of-office in the agent's name: a notice would be answered by the next one
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="microseconds")
    sent = await tx.value("SELECT COUNT(*) FROM outbox WHERE kind = 'unproven' AND rcpt_to = ? AND created_at > ?",
                          (agent.addresses[0], since))
    if int(sent or 0) >= UNPROVEN_NOTICES_PER_HOUR:
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
