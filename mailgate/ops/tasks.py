"""Tasks: work one queue hands another, linked to a ticket, with a deadline, answered and closed by mail."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mailgate import commands, tokens
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.mail import identity, quotes
from mailgate.models import MailKind, ParsedMail
from mailgate.ops import delete, watchers
from mailgate.ops.base import Change, actor, add_message, ticket
from mailgate.outgoing import notices as outbound
from mailgate.spool import SpoolEntry
from mailgate.store import Txn, events, messages, timers
from mailgate.store import tasks as task_store
from mailgate.store import tickets as ticket_store
from mailgate.store.tasks import DONE, OPEN, Task

log = logging.getLogger("mailgate.tasks")

DUE = "task.due"  # the timer kind that reminds once when a task is overdue
MAX_TEXT = 20_000


@dataclass(frozen=True, slots=True)
class Answer:
    """A mail to a task's address, handled: where it was stored."""

    ticket_id: int
    number: int
    message_row: int | None
    detail: str


def _shown(config: Config, row: Task) -> dict[str, Any]:
    who = config.agent(row.created_by)
    return {"id": row.id, "queue": row.queue, "due": outbound.local_time(config, row.due_at),
            "by": who.name if who else row.created_by, "text": row.text, "status": row.status}


async def task_row(tx: Txn, task_id: int) -> Task:
    row = await task_store.get(tx, task_id)
    if row is None:
        raise Refused(f"no task {task_id}")
    return row


async def create(
    tx: Txn, config: Config, ticket_id: int, queue: str, due: datetime, text: str, agent: AgentConfig,
    *, now: datetime | None = None,
) -> Change:
    """A task for `queue` on the ticket; its members are told, the overdue reminder is a timer row (same txn)."""
    await delete.live(tx, ticket_id, f"[task:{queue}]")
    target = config.queue(queue)
    if target is None:
        known = ", ".join(q.name for q in config.queues) or "none configured"
        raise Refused(f"unknown queue {queue!r} (known: {known})")
    text = text.strip()
    if not text:
        raise Refused("a task needs its text: write it in the mail body (or --text)")
    if len(text) > MAX_TEXT:
        raise Refused(f"a task's text is at most {MAX_TEXT} characters")
    if due.tzinfo is None or due <= (now or tx.now()):
        raise Refused(f"the deadline {due.isoformat()} is in the past")
    task_id = await task_store.add(tx, ticket_id, queue, text, timers.iso(due), agent.id)
    await timers.add(tx, DUE, task_id, due)
    await events.add(tx, ticket_id, actor(agent), "task.created",
                        {"task": task_id, "queue": queue, "due": timers.iso(due)})
    row = await task_row(tx, task_id)
    members = [a for a in config.queue_members(target) if not a.away]
    await _tell(tx, config, row, "task_new", members)
    # No poke for the reminder's timer row: deadlines are hours or days away and the daemon's poll
    # loads new rows within seconds (a poke from the CLI's own event loop would reach the wrong loop).
    told = ", ".join(a.id for a in members) or "nobody (the queue has no members present)"
    return Change("task", f"task {task_id} for {queue}, due {outbound.local_time(config, due)}; told {told}")


async def _tell(tx: Txn, config: Config, row: Task, template: str, agents: list[AgentConfig]) -> None:
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, row.ticket_id)
    for agent in agents:
        await mailer.queue_mail(
            tx, info, kind="notify", template=template, to_name=agent.name, to_address=agent.addresses[0],
            language=mailer.agent_language(info, agent), auto_kind="auto-generated",
            reply_token=tokens.Token(tokens.TASK, row.id, agent.id),  # answers thread into the task
            data=mailer.data(info, agent_name=agent.name, agent_id=agent.id, task=_shown(config, row)),
        )


async def done(tx: Txn, config: Config, task_id: int, agent: AgentConfig) -> Change:
    """Close a task (its reminder timer goes with it)."""
    row = await task_row(tx, task_id)
    await delete.live(tx, row.ticket_id, "[done]")
    if row.status == DONE:
        return Change("done", f"task {task_id} was done already")
    await task_store.mark_done(tx, task_id, agent.id)
    await timers.cancel(tx, DUE, task_id)
    await events.add(tx, row.ticket_id, actor(agent), "task.done", {"task": task_id, "queue": row.queue})
    return Change("done", f"task {task_id} for {row.queue} is done")


async def of_ticket(tx: Txn, config: Config, ticket_id: int, *, only_open: bool = False) -> list[dict[str, Any]]:
    rows = await task_store.of_ticket(tx, ticket_id, only_open=only_open)
    return [{**dataclasses.asdict(r), "due_local": outbound.local_time(config, r.due_at)} for r in rows]


async def open_warning(tx: Txn, config: Config, ticket_id: int) -> str:
    """For the agent resolving a ticket: the tasks still open on it ("" when none)."""
    rows = await of_ticket(tx, config, ticket_id, only_open=True)
    if not rows:
        return ""
    listed = "; ".join(f"task {r['id']} for {r['queue']} due {r['due_local']}" for r in rows)
    return f"warning: {len(rows)} open task{'s' if len(rows) > 1 else ''} ({listed})"


# -- answers by mail ------------------------------------------------------------------------------


async def on_mail(tx: Txn, config: Config, mail: ParsedMail, entry: SpoolEntry, key: str) -> Answer | None:
    """A mail to a task's signed address from the agent it was sent to: a note in the task; [done] closes it.

    Anything else (no task token, a sender without proof) goes the usual way, like any mail.
    """
    secret = config.secret_bytes()
    recipients = " ".join([*entry.envelope.rcpt_to, *(a.address for a in (*mail.to, *mail.cc))])
    token = next((t for t in tokens.find(secret, recipients) if t.purpose == tokens.TASK), None)
    if token is None or not mail.from_:
        return None
    task = await task_store.get(tx, token.ticket)
    agent = identity.agent_by_address(config, mail.from_[0].address)
    if task is None or agent is None or not mail.from_is_clean:
        return None
    proven = token.agent == agent.id or identity.auth_proof(
        identity.trusted_results(mail, config.gateway.authserv_id, identity.trusted_received(config, entry.envelope)),
        mail.from_[0].address) is not None
    if not proven:
        return None
    ticket_id = task.ticket_id
    number = await ticket_store.number_of(tx, ticket_id) or 0
    parsed = commands.parse(mail.subject, quotes.new_text(mail.text, mail.html_as_sent or mail.html), now=tx.now(),
                            tz=config.gateway.timezone)
    text = parsed.body.strip()
    row = await add_message(
        tx, ticket_id, agent, direction="note", subject=parsed.subject, text=commands.strip_body(mail.text),
        reply_text=text, message_id=mail.message_id, spool_id=entry.id, content_key=key,
        attachments=mail.attachments, sent_at=mail.date.isoformat() if mail.date else None,
    )
    await messages.set_task(tx, row, task.id)
    detail = f"answer to task {task.id}"
    if mail.kind is not MailKind.MESSAGE:
        await events.add(tx, ticket_id, actor(agent), "task.ignored", {"task": task.id, "kind": str(mail.kind)})
        return Answer(ticket_id, number, row, detail)  # an out-of-office: kept, nobody told (it would loop)
    errors = [str(e) for e in parsed.errors]
    errors += [f"{c.raw}: not for a task (only [done]; write to the ticket for the rest)"
               for c in parsed.commands if c.name not in ("done", "note")]
    gone = delete.deleted(await ticket(tx, ticket_id), "done", "[done]") if parsed.has("done") else None
    if gone is not None:
        errors.append(str(gone))
    if errors:
        await events.add(tx, ticket_id, actor(agent), "task.refused", {"task": task.id, "errors": errors})
        await _refuse(tx, config, agent, ticket_id, errors)
        return Answer(ticket_id, number, row, detail)
    await events.add(tx, ticket_id, actor(agent), "task.answered", {"task": task.id, "message": row})
    closed = parsed.has("done")
    if closed:
        await done(tx, config, task.id, agent)
    await watchers.acted(tx, ticket_id, agent.id)
    mailer = outbound.mailer_for(tx, config)
    said = f"Task {task.id} for {task.queue}{' (done)' if closed else ''}:\n\n{text}" if text else (
        f"Task {task.id} for {task.queue} is done." if closed else "")
    if said:
        await mailer.notify_note(tx, await mailer.ticket(tx, ticket_id), agent, said)
    return Answer(ticket_id, number, row, detail)


async def _refuse(tx: Txn, config: Config, agent: AgentConfig, ticket_id: int, errors: list[str]) -> None:
    mailer = outbound.mailer_for(tx, config)
    info = await mailer.ticket(tx, ticket_id)
    await mailer.queue_mail(
        tx, info, kind="agent", template="agent_refused", to_name=agent.name, to_address=agent.addresses[0],
        language=mailer.agent_language(info, agent), auto_kind="auto-generated",
        reply_token=tokens.Token(tokens.AGENT_NOTE, info.number, agent.id),
        data=mailer.data(info, agent_name=agent.name, agent_id=agent.id, outcome={"errors": errors, "note": True}),
    )


# -- the overdue reminder -------------------------------------------------------------------------


async def on_due_timer(tx: Txn, config: Config, timer: timers.Timer, *, now: datetime | None = None) -> None:
    """The deadline passed: remind the task's queue and the asker, once."""
    row = await task_store.get(tx, timer.ref)
    if row is None or row.status != OPEN or row.reminded_at:
        return
    moment = (now or tx.now()).astimezone(UTC)
    due = datetime.fromisoformat(row.due_at)
    if due > moment + timedelta(seconds=1):
        await timers.add(tx, DUE, row.id, due)  # the deadline moved meanwhile
        return
    await task_store.mark_reminded(tx, row.id, timers.iso(moment))
    queue = config.queue(row.queue)
    people = {a.id: a for a in (config.queue_members(queue) if queue else []) if not a.away}
    asker = config.agent(row.created_by)
    if asker is not None and not asker.away:
        people.setdefault(asker.id, asker)
    await events.add(tx, row.ticket_id, "system", "task.overdue", {"task": row.id, "told": sorted(people)})
    await _tell(tx, config, row, "task_overdue", list(people.values()))


def register_timers(registry: timers.Registry, current_config: Callable[[], Config]) -> None:
    """The overdue reminder, under the config in force when it fires."""

    async def on_due(tx: Txn, timer: timers.Timer) -> None:
        await on_due_timer(tx, current_config(), timer)

    registry.register(DUE, on_due)
