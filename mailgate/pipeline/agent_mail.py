"""An agent's mail: prove who sent it, run its commands all-or-nothing, pass its reply on or keep it as a note."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailgate import commands, tokens
from mailgate.commands import TagError
from mailgate.commands.registry import NOTE_COMMANDS, SPECS, Words, in_order
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.mail import agent_words, identity, quotes
from mailgate.mail.identity import Identity
from mailgate.mail.subjects import subject_tags
from mailgate.models import Correlation, MailKind, ParsedMail, ThreadRule, TicketStatus
from mailgate.ops import apply as ops
from mailgate.ops import confirm, export, inbox, lifecycle, notes, opening, report_weekly, search, tasks
from mailgate.ops import forward as forwarding
from mailgate.ops.base import actor, add_message
from mailgate.outgoing import compose, outbox, saved_replies
from mailgate.outgoing import notices as outbound
from mailgate.spool import SpoolEntry
from mailgate.store import Txn, events, messages, savepoints, sent
from mailgate.store import outbox as outbox_rows
from mailgate.store import tickets as ticket_store
from mailgate.store.blobs import BlobStore, message_files

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


def with_words(parsed: commands.Parsed, mail: ParsedMail) -> commands.Parsed:
    """Give the commands what they take of the mail: its words ([forward], [help], [task]), the messages it answers ([split])."""
    parents = " ".join(m for m in (mail.in_reply_to, *reversed(mail.references)) if m)
    words = parsed.body.strip()
    given = {Words.BODY: words, Words.PARENTS: parents}

    def fill(command: commands.Command) -> commands.Command:
        takes = SPECS[command.name].words
        return dataclasses.replace(command, text=given[takes]) if takes is not Words.NONE else command

    return dataclasses.replace(parsed, commands=tuple(fill(c) for c in parsed.commands))


async def dispatch(tx: Txn, config: Config, mail: ParsedMail, entry: SpoolEntry, key: str, found: Correlation) -> Decision:
    """Decide inside the intake transaction; a proven agent's mail is handled here completely."""
    secret = config.secret_bytes()
    # An answer to a forward or to [help:…] is an internal note, whoever sends it.
    answered = await forwarding.answer(tx, config, mail, entry, key)
    if answered is not None:
        return Decision(True, Correlation(answered.ticket_id, ThreadRule.TOKEN, answered.detail), None,
                        answered.number, answered.message_row)
    # An answer to a task, from the agent it went to, is a note in the task.
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
            ticket_id = await ticket_store.id_of(tx, token.ticket)
            if ticket_id is not None:
                return Correlation(ticket_id, ThreadRule.TOKEN, f"agent token for #{token.ticket} in recipient")
    return found


async def _ticket_of(tx: Txn, config: Config, mail: ParsedMail, found: Correlation, ident: Identity) -> int | None:
    if ident.ticket:
        found_id = await ticket_store.id_of(tx, ident.ticket)
        return await ticket_store.survivor(tx, found_id) if found_id is not None else None  # a merged one's survivor
    if ident.ticket == 0:
        return None  # the agent's command address
    if found.ticket_id is not None:
        return found.ticket_id
    # A proven agent may name any ticket by its subject tag (customers only their own).
    for number in subject_tags(mail.subject, config.gateway.ticket_tag):
        ticket_id = await ticket_store.id_of(tx, number)
        if ticket_id is not None:
            return await ticket_store.survivor(tx, ticket_id)  # a merged one's survivor
    return None


async def _proven(
    tx: Txn, config: Config, mail: ParsedMail, entry: SpoolEntry, key: str, found: Correlation,
    ident: Identity, agent: AgentConfig,
) -> Decision:
    mailer = outbound.mailer_for(tx, config)
    ticket_id = await _ticket_of(tx, config, mail, found, ident)
    answered = await answered_subject(tx, mail, ticket_id)
    # The HTML as sent: the stored copy is sanitized, and with the class and id attributes go the
    # containers Gmail ("gmail_quote") and Outlook on the web ("divRplyFwdMsg") put the quote in.
    words = agent_words.for_customer(
        new_text(mail.text, mail.html_as_sent or mail.html, keep_signature=agent.keep_signature),
        await sent.thread_texts(tx, ticket_id, agent_words.answered_ids(mail)), config.secret_bytes())
    parsed = commands.parse(mail.subject, words.text, now=tx.now(), tz=config.gateway.timezone, inherited=answered)
    if parsed.quoted:
        # Most often a customer's "[…]" coming back in the agent's Re:, or her own mail she answers.
        log.info("agent_mail.tags_not_hers agent=%s ticket_id=%s tags=%s", agent.id, ticket_id, " ".join(parsed.quoted))
    parsed = with_words(parsed, mail)
    if (parsed.has("new") or parsed.has("behalf")) and mail.kind is MailKind.MESSAGE:
        opened = await opening.open_by_mail(tx, config, agent, parsed, mail, spool_id=entry.id, key=key,
                                            ticket_id=ticket_id, to_note_address=ident.note)
        if opened is None:
            return Decision(True, found, ident, None, None)
        return Decision(True, found, ident, opened.number, opened.message_row)
    text = parsed.body.strip()
    # With these the mail's words are for the recipients, the task or the notes: never a reply.
    is_note = ident.note or any(c.name in NOTE_COMMANDS for c in parsed.commands)
    ticketless = ticket_id is None
    if ticketless and ident.ticket is None and not parsed.commands and not parsed.errors:
        return Decision(False, found, ident)  # an agent writing to support like anyone: a ticket as usual
    if mail.kind is not MailKind.MESSAGE:
        # An agent's out-of-office answering a notification must never reach the customer.
        row = await _store(tx, ticket_id, agent, mail, entry, key, parsed, "agent") if ticket_id else None
        if ticket_id:
            await events.add(tx, ticket_id, actor(agent), "agent_mail.ignored", {"kind": str(mail.kind)})
        return Decision(True, found, ident, await _number(tx, ticket_id), row)
    answers_ours = await _answers_our_automatic_mail(tx, mail)
    if answers_ours and ticket_id and text and not parsed.commands and await _said_already(tx, ticket_id, agent, text):
        # The same words again, in answer to a confirmation or notice: an auto-responder that ignores
        # Auto-Submitted answers every mail it gets. Passed on once; from here on kept, not answered.
        row = await _store(tx, ticket_id, agent, mail, entry, key, parsed, "agent")
        await events.add(tx, ticket_id, actor(agent), "agent_mail.ignored",
                         {"reason": "the same text again, in answer to an automatic mail"})
        log.info("agent_mail.ignored agent=%s ticket_id=%s reason=repeat_to_automatic_mail", agent.id, ticket_id)
        return Decision(True, found, ident, await _number(tx, ticket_id), row)
    outcome = confirm.Outcome(note=is_note, ticketless=ticketless)
    ticket = await ticket_store.get(tx, ticket_id) if ticket_id else None
    errors = [*parsed.errors, *ops.check(config, agent, ticket, parsed.commands)]
    if not errors:
        parsed, refused = await saved_replies.with_saved(tx, config, parsed, ticket_id, agent, is_note=is_note)
        errors += [refused] if refused is not None else []
        text = parsed.body.strip()
    if ticket is not None and ticket.status is TicketStatus.DELETED and text and not is_note:
        errors.append(TagError("(reply)", f"#{ticket.number} is deleted: nothing was sent; [restore] it first"))
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
        info = await mailer.ticket(tx, ticket.id)
        if not info.customer_address:
            errors.append(TagError("(reply)", "the ticket has no customer address to answer"))
        elif tokens.find(config.secret_bytes(), text):
            # Our own reference is still in it: quoted history the cut missed (quoted without ">" and
            # without an attribution line); never send that on.
            errors.append(TagError("(reply)", "the words for the customer still hold mailgate's own mail"
                                              " (its [ref:…] line), quoted in a way not recognised; nothing was"
                                              " sent: answer above or below the quoted mail, or mark it with \"> \""))
        elif await _said_already(tx, ticket.id, agent, text):
            # The same words again within a day: an automatic answer caught in a loop, not a person.
            errors.append(TagError("(reply)", "the same text went to this ticket in the last 24 hours; not sent again"))
    message_row = None
    if not errors:
        await savepoints.begin(tx, "agent_mail")
        try:
            message_row = await _apply(tx, config, mailer, mail, entry, key, parsed, ticket_id, agent, outcome)
        except (Refused, ValueError) as exc:
            # Checks come first, so this is a race or a bug; either way nothing of the mail stays applied.
            await savepoints.rollback(tx, "agent_mail")
            errors.append(TagError("(mail)", str(exc)))
        await savepoints.release(tx, "agent_mail")
    if errors:
        outcome = confirm.Outcome(errors=[str(e) for e in errors], note=is_note, ticketless=ticketless)
        if ticket_id is not None:
            # Kept (not lost), but nothing of it applied and nothing sent on.
            message_row = await _store(tx, ticket_id, agent, mail, entry, key, parsed, "agent")
            await events.add(tx, ticket_id, actor(agent), "agent_mail.refused", {"errors": outcome.errors})
        log.info("agent_mail.refused agent=%s ticket_id=%s errors=%s", agent.id, ticket_id, "; ".join(outcome.errors))
        if answers_ours and ticket_id is not None and await _refusals_lately(tx, ticket_id, agent) > REFUSALS_PER_HOUR:
            # Refusal answered by refusal: a machine on the other side; the agent has been told.
            log.warning("agent_mail.refusal_muted agent=%s ticket_id=%s", agent.id, ticket_id)
        else:
            await confirm.tell(tx, config, agent, ticket_id, "agent_refused", outcome, is_note)
        return Decision(True, found, ident, await _number(tx, ticket_id), message_row)
    if ticketless and {c.name for c in parsed.commands} == {"search"}:
        return Decision(True, found, ident, None, message_row)  # the results are the answer
    await confirm.tell(tx, config, agent, ticket_id, "agent_done", outcome, is_note,
                excerpt=(agent.name, text) if text and ticket_id else None)
    return Decision(True, found, ident, await _number(tx, ticket_id), message_row)


async def _apply(
    tx: Txn, config: Config, mailer: outbound.Mailer, mail: ParsedMail, entry: SpoolEntry, key: str,
    parsed: commands.Parsed, ticket_id: int | None, agent: AgentConfig, outcome: confirm.Outcome,
) -> int | None:
    """Every command, then the note or the reply; raises on the first failure (the caller rolls back)."""
    changes = await ops.apply(tx, config, ticket_id, parsed.commands, agent)
    if ticket_id is not None:
        await ops.agent_acted(tx, ticket_id, agent)
    for command, change in zip(in_order(parsed.commands), changes, strict=True):
        outcome.changes.append(f"{command.render()} {change.summary}")
    listing = parsed.get("list")
    if listing is not None and listing.value == "replies":
        outcome.listing = listing.value
        outcome.replies = saved_replies.listing(config)
    elif listing is not None:
        outcome.listing = listing.value
        outcome.tickets = await inbox.list_tickets(tx, config, agent, listing.value)
    searched = parsed.get("search")
    if searched is not None:
        outcome.changes.append(await search.by_mail(tx, config, agent, searched.value))
    for name, answer in (("report", report_weekly.by_mail), ("print", export.by_mail)):
        asked = parsed.get(name)  # answered by a mail of their own; the confirmation says so
        if asked is not None:
            outcome.changes.append(f"{asked.render()} {await answer(tx, config, agent, ticket_id, asked.value)}")
    picked = next((c.ticket for c in changes if c.ticket), None)
    if picked is not None:
        await _send_ticket(tx, config, agent, picked)
    if ticket_id is None:
        return None
    text = parsed.body.strip()
    if outcome.note:
        return await notes.add_note(tx, config, ticket_id, agent, text, subject=parsed.subject,
                                    full_text=commands.strip_body(mail.text), message_id=mail.message_id,
                                    spool_id=entry.id, content_key=key, attachments=mail.attachments,
                                    sent_at=mail.date.isoformat() if mail.date else None)
    row = await _store(tx, ticket_id, agent, mail, entry, key, parsed, "agent")
    if not text:
        return row
    # An answer takes the ticket out of "new"; a status the agent's tags set is kept.
    await lifecycle.answered(tx, config, ticket_id, actor=actor(agent))
    info = await mailer.ticket(tx, ticket_id)
    cc, left_out = await mailer.reply_recipients(tx, info)
    people = {info.customer_address.lower(), *cc}
    if (people | set(left_out)) & {a.address.lower() for a in (*mail.to, *mail.cc)}:
        # The agent wrote to the customer directly too: sending it again would double it.
        outcome.already_sent = True
        await events.add(tx, ticket_id, actor(agent), "reply.already_sent", {"message": row})
        return row
    # What the agent attached goes with the words; images their HTML shows inline (signatures) do not.
    files, names = await message_files(tx, BlobStore(config.attachments_path), row, forwarding.MAX_ATTACHED,
                                       embedded=False)
    outcome.changes += [f"(reply) {name}" for name in names if "(not attached:" in name]
    outbox_id = await outbox.queue_agent_reply(tx, mailer, ticket_id, agent.id, text, files=tuple(files))
    due = await outbox_rows.not_before(tx, outbox_id)
    outcome.reply_to = sorted(people)
    if left_out:
        outcome.changes.append(f"(reply) not sent to {len(left_out)} more Cc parties (at most"
                               f" {config.tickets.max_reply_recipients} recipients): {', '.join(left_out[:10])}")
    outcome.reply_at = confirm.local_time(config, datetime.fromisoformat(due))
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
        subject = await outbox_rows.subject_of(tx, key)
        if subject is None:
            subject = await messages.subject_of(tx, key)
        if subject is not None:
            return subject
    ticket = await ticket_store.get(tx, ticket_id) if ticket_id is not None else None
    return ticket.subject if ticket is not None else ""


def new_text(text: str, html: str | None = None, *, keep_signature: bool = False) -> str:
    """What the agent wrote above, below or between the quoted lines: empty when only tags and quotes are there."""
    return quotes.new_text(text, html, keep_signature=keep_signature)


async def _answers_our_automatic_mail(tx: Txn, mail: ParsedMail) -> bool:
    """Whether the mail answers a confirmation, refusal or notice mailgate sent to an agent."""
    parents = [m for m in (mail.in_reply_to, *mail.references[-3:]) if m]
    if not parents:
        return False
    return await outbox_rows.any_of_kinds(tx, parents, ("agent", "unproven", "held", "failed"))


REFUSALS_PER_HOUR = 3  # per agent and ticket, for mails that answer mailgate's own; then kept without a reply


async def _refusals_lately(tx: Txn, ticket_id: int, agent: AgentConfig) -> int:
    since = (tx.now() - timedelta(hours=1)).isoformat(timespec="microseconds")
    return await events.count_since(tx, ticket_id, actor(agent), "agent_mail.refused", since)


# Notices whose answer is not an answer to the customer (their text says what to do instead).
_NOTICES = {"unproven": "the warning about a mail in your name", "held": "the notice of your held reply",
            "failed": "a delivery failure notice"}


async def _answers_a_notice(tx: Txn, mail: ParsedMail) -> str | None:
    """Which notice (not a confirmation) mailgate sent to an agent the mail answers, in words."""
    parent = mail.in_reply_to or (mail.references[-1] if mail.references else None)
    if not parent:
        return None
    kind = await outbox_rows.kind_of(tx, parent)
    return _NOTICES.get(kind) if kind is not None else None


async def _said_already(tx: Txn, ticket_id: int, agent: AgentConfig, text: str) -> bool:
    since = (tx.now() - timedelta(days=1)).isoformat(timespec="microseconds")
    return await messages.said_since(tx, ticket_id, agent.addresses[0], text, since)


async def _number(tx: Txn, ticket_id: int | None) -> int | None:
    if ticket_id is None:
        return None
    return await ticket_store.number_of(tx, ticket_id)


async def _store(
    tx: Txn, ticket_id: int, agent: AgentConfig, mail: ParsedMail, entry: SpoolEntry, key: str,
    parsed: commands.Parsed, direction: str,
) -> int:
    """The agent's mail on the ticket, tags removed; the raw bytes stay in the spool."""
    return await add_message(
        tx, ticket_id, agent, direction=direction, subject=parsed.subject,
        text=commands.strip_body(mail.text), reply_text=parsed.body.strip(), message_id=mail.message_id,
        spool_id=entry.id, content_key=key, attachments=mail.attachments,
        sent_at=mail.date.isoformat() if mail.date else None,
    )


async def _send_ticket(tx: Txn, config: Config, agent: AgentConfig, ticket_id: int) -> None:
    """[next]: the picked ticket, with the customer's latest words, Reply-To answering it."""
    number = await ticket_store.number_of(tx, ticket_id)
    await inbox.mail_ticket_to(
        tx, config, ticket_id, agent, kind="agent", template="agent_done",
        outcome={"changes": [f"[next] #{number}"]},
    )


async def tell_unproven(
    tx: Txn, config: Config, decision: Decision, ticket_id: int, mail: ParsedMail, *, imported: bool,
    opened: bool = False,
) -> None:
    """The real agent hears that a mail in their name was not taken as theirs (see ops.confirm.unproven)."""
    await confirm.unproven(tx, config, decision.identity, ticket_id, mail, imported=imported, opened=opened)
