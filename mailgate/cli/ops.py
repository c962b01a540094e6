"""CLI for agents' operations: `mailgate tickets status|priority|assign|queue|tag|note|new|task|follow|read …`."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from mailgate import commands
from mailgate.cli.support import ROW_ID, TICKET, emit_json, run_txn
from mailgate.commands.life_tags import CHANNELS, due_at
from mailgate.config import AgentConfig, Config
from mailgate.ops import agent as agent_ops
from mailgate.ops import opening as agent_tickets
from mailgate.ops import tasks, watchers
from mailgate.ops.agent import Change, OpError
from mailgate.outgoing import notices as outbound
from mailgate.store import Txn

T = TypeVar("T")
Work = Callable[[Config, AgentConfig | None, Txn], Awaitable[T]]


def _run(ctx: click.Context, as_json: bool, agent_id: str | None, work: Work[T], *, write: bool = True) -> T:
    """One transaction as agent `agent_id`; a refusal rolls everything back, prints why and exits 1."""

    async def as_agent(config: Config, tx: Txn) -> T:
        agent = None
        if agent_id is not None:
            agent = config.agent(agent_id)
            if agent is None:
                raise OpError(f"unknown agent {agent_id!r} (--as)")
        return await work(config, agent, tx)

    return run_txn(ctx, as_json, as_agent, write=write)


def _done(as_json: bool, number: int | None, changes: list[Change], **extra: Any) -> None:
    if as_json:
        emit_json({"ok": True, "ticket": number, **extra,
               "changes": [{"command": c.command, "summary": c.summary} for c in changes]})
        return
    for change in changes:
        click.echo(f"{'#' + str(number) + ' ' if number else ''}[{change.command}] {change.summary}")


async def _ticket(tx: Txn, number: int) -> int:
    ticket_id = await tx.value("SELECT id FROM tickets WHERE number = ?", (number,))
    if ticket_id is None:
        raise OpError(f"no ticket #{number}")
    return int(ticket_id)


def _command(config: Config, name: str, value: str) -> commands.Command:
    """The CLI value read exactly as the same tag in a mail would be."""
    tag = f"[{name}:{value}]" if value else f"[{name}]"
    parsed = commands.parse(tag, "", now=datetime.now(UTC), tz=config.gateway.timezone)
    if parsed.errors:
        raise OpError("; ".join(str(e) for e in parsed.errors))
    if len(parsed.commands) != 1:
        raise OpError(f"cannot read {value!r} as a {name}")
    return parsed.commands[0]


async def _apply(tx: Txn, config: Config, agent: AgentConfig, number: int, command: commands.Command) -> list[Change]:
    """One command through the checks and the domain function the mail path uses; the agent acted."""
    ticket_id = await _ticket(tx, number)
    ticket = await agent_ops.ticket_row(tx, ticket_id)
    problems = [*agent_ops.check(config, agent, ticket, [command]), *agent_tickets.check(config, ticket, [command])]
    if problems:
        raise OpError("; ".join(str(p) for p in problems))
    changes = await agent_ops.apply(tx, config, ticket_id, [command], agent)
    await watchers.acted(tx, ticket_id, agent.id)
    return changes


def _tag_command(name: str, help_text: str) -> click.Command:
    @click.command(name, help=help_text)
    @click.argument("number", type=TICKET)
    @click.argument("value", nargs=-1, required=True)
    @click.option("--as", "agent_id", required=True, help="The acting agent's id.")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def command(ctx: click.Context, number: int, value: tuple[str, ...], agent_id: str, as_json: bool) -> None:
        async def work(config: Config, agent: AgentConfig | None, tx: Txn) -> list[Change]:
            assert agent is not None
            return await _apply(tx, config, agent, number, _command(config, name, " ".join(value)))

        _done(as_json, number, _run(ctx, as_json, agent_id, work))

    return command


tickets_status = _tag_command("status", "Set ticket NUMBER's status (open, pending, resolved, closed).")
tickets_priority = _tag_command("priority", "Set ticket NUMBER's priority (low, normal, high, urgent).")
tickets_assign = _tag_command("assign", "Assign ticket NUMBER to an agent id, me or none.")
tickets_queue = _tag_command("queue", "Move ticket NUMBER to a queue.")
tickets_tag = _tag_command("tag", "Add and remove tags on ticket NUMBER: +vip -spam (a bare word adds; put -- before a -tag).")


def _text(text: str | None) -> str:
    """--text, or the standard input for "-"."""
    if text == "-":
        return sys.stdin.read()
    return text or ""


@click.command("note")
@click.argument("number", type=TICKET)
@click.argument("text")
@click.option("--as", "agent_id", required=True, help="The writing agent's id.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_note(ctx: click.Context, number: int, text: str, agent_id: str, as_json: bool) -> None:
    """Add an internal note (TEXT, or - for stdin) to ticket NUMBER; the ticket's other agents are told."""
    words = _text(text).strip()

    async def work(config: Config, agent: AgentConfig | None, tx: Txn) -> int:
        assert agent is not None
        if not words:
            raise OpError("the note is empty")
        ticket_id = await _ticket(tx, number)
        row = await agent_ops.add_message(
            tx, ticket_id, agent, direction="note", subject="", text=words, reply_text=words,
            message_id=f"mg.cli.{datetime.now(UTC).timestamp():.6f}.{agent.id}@{config.message_id_domain}",
        )
        mailer = outbound.mailer_for(tx, config)
        await mailer.notify_note(tx, await mailer.ticket(tx, ticket_id), agent, words)
        await watchers.acted(tx, ticket_id, agent.id)
        return row

    row = _run(ctx, as_json, agent_id, work)
    _done(as_json, number, [Change("note", f"note stored (message {row})")], message=row)


@click.command("new")
@click.option("--to", "to", help="Open a ticket by mailing this customer (the text is the mail).")
@click.option("--behalf", help="Record a case for this customer (phone by default), without mailing them.")
@click.option("--subject", required=True)
@click.option("--queue", default=None, help="Default: the agent's only queue.")
@click.option("--channel", type=click.Choice(CHANNELS), default=None)
@click.option("--text", default=None, help="The mail (or the case's notes); - reads stdin.")
@click.option("--as", "agent_id", required=True, help="The agent opening it (it is assigned to them).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_new(ctx: click.Context, to: str | None, behalf: str | None, subject: str, queue: str | None,
                channel: str | None, text: str | None, agent_id: str, as_json: bool) -> None:
    """Open a ticket as an agent: --to mails the customer, --behalf records a phone (web, sms, chat) case."""
    words = _text(text)

    async def work(config: Config, agent: AgentConfig | None, tx: Txn) -> agent_tickets.Opened:
        assert agent is not None
        if (to is None) == (behalf is None):
            raise OpError("give either --to (mail the customer) or --behalf (record a case)")
        return await agent_tickets.open_ticket(
            tx, config, agent, customer=to or behalf or "", subject=subject, text=words, queue=queue,
            send=to is not None, channel=channel,
        )

    opened = _run(ctx, as_json, agent_id, work)
    _done(as_json, opened.number, opened.changes, outbox=opened.outbox_id)


@click.command("task")
@click.argument("number", type=TICKET)
@click.argument("queue")
@click.option("--due", required=True, help="2026-12-05 (end of that day), 2026-12-05 14:00, 3d, monday …")
@click.option("--text", required=True, help="What is to be done; - reads stdin.")
@click.option("--as", "agent_id", required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_task(ctx: click.Context, number: int, queue: str, due: str, text: str, agent_id: str,
                 as_json: bool) -> None:
    """Give QUEUE a task on ticket NUMBER with a deadline; its members are told by mail."""
    words = _text(text)

    async def work(config: Config, agent: AgentConfig | None, tx: Txn) -> list[Change]:
        assert agent is not None
        moment = due_at(due, datetime.now(UTC), ZoneInfo(config.gateway.timezone))
        if isinstance(moment, str):
            raise OpError(moment)
        ticket_id = await _ticket(tx, number)
        change = await tasks.create(tx, config, ticket_id, queue.strip().lower(), moment, words, agent)
        await watchers.acted(tx, ticket_id, agent.id)
        return [change]

    _done(as_json, number, _run(ctx, as_json, agent_id, work))


@click.command("task-done")
@click.argument("task_id", type=ROW_ID)
@click.option("--as", "agent_id", required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_task_done(ctx: click.Context, task_id: int, agent_id: str, as_json: bool) -> None:
    """Close task TASK_ID."""

    async def work(config: Config, agent: AgentConfig | None, tx: Txn) -> list[Change]:
        assert agent is not None
        return [await tasks.done(tx, config, task_id, agent)]

    _done(as_json, None, _run(ctx, as_json, agent_id, work), task=task_id)


@click.command("tasks")
@click.argument("number", type=TICKET)
@click.option("--open", "only_open", is_flag=True, help="Only the open ones.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_tasks(ctx: click.Context, number: int, only_open: bool, as_json: bool) -> None:
    """The tasks of ticket NUMBER."""

    async def work(config: Config, agent: AgentConfig | None, tx: Txn) -> list[dict[str, Any]]:
        return await tasks.of_ticket(tx, config, await _ticket(tx, number), only_open=only_open)

    found = _run(ctx, as_json, None, work, write=False)
    if as_json:
        emit_json({"ok": True, "ticket": number, "tasks": found})
        return
    for t in found:
        click.echo(f"task {t['id']} {t['status']} for {t['queue']} due {t['due_local']} by {t['created_by']}: "
                   f"{t['text'].splitlines()[0] if t['text'] else ''}")


def _follow_command(name: str, following: bool) -> click.Command:
    @click.command(name, help=f"{'Follow' if following else 'Stop following'} ticket NUMBER (its notifications).")
    @click.argument("number", type=TICKET)
    @click.option("--as", "agent_id", required=True)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    def command(ctx: click.Context, number: int, agent_id: str, as_json: bool) -> None:
        async def work(config: Config, agent: AgentConfig | None, tx: Txn) -> list[Change]:
            assert agent is not None
            return [await agent_tickets.apply(tx, config, await _ticket(tx, number), commands.Command(name), agent)]

        _done(as_json, number, _run(ctx, as_json, agent_id, work))

    return command


tickets_follow = _follow_command("follow", True)
tickets_unfollow = _follow_command("unfollow", False)


@click.command("read")
@click.argument("number", type=TICKET)
@click.option("--unread", is_flag=True, help="Mark it unread again instead.")
@click.option("--show", is_flag=True, help="Only show the read state and who follows the ticket.")
@click.option("--as", "agent_id", required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_read(ctx: click.Context, number: int, unread: bool, show: bool, agent_id: str, as_json: bool) -> None:
    """Mark ticket NUMBER read (or --unread) for an agent; --show prints the state."""

    async def work(config: Config, agent: AgentConfig | None, tx: Txn) -> dict[str, Any]:
        assert agent is not None
        ticket_id = await _ticket(tx, number)
        if not show:
            await watchers.mark(tx, ticket_id, agent.id, read=not unread)
        return {**await watchers.state(tx, ticket_id, agent.id), "watchers": await watchers.watchers_of(tx, ticket_id)}

    state = _run(ctx, as_json, agent_id, work, write=not show)
    if as_json:
        emit_json({"ok": True, "ticket": number, "agent": agent_id, **state})
        return
    click.echo(f"#{number} for {agent_id}: {'unread' if state['unread'] else 'read'},"
               f" {'following' if state['following'] else 'not following'}")
    for w in state["watchers"]:
        click.echo(f"  {w['agent']}: {'following' if w['following'] else 'unfollowed'},"
                   f" {'unread' if w['unread'] else 'read ' + str(w['read_at'])}")


def attach(tickets: click.Group) -> None:
    """Hang these commands on `mailgate tickets`."""
    for command in (tickets_status, tickets_priority, tickets_assign, tickets_queue, tickets_tag, tickets_note,
                    tickets_new, tickets_task, tickets_task_done, tickets_tasks, tickets_follow, tickets_unfollow,
                    tickets_read):
        tickets.add_command(command)
