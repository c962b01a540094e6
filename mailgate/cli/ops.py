"""CLI for agents' operations: `mailgate tickets status|priority|assign|queue|tag|note|new|task|follow|read …`.

Every change goes through ops (check, apply, the effects of acting) as the same tag by mail does.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

from mailgate import commands
from mailgate.cli.support import ROW_ID, TICKET, acting_agent, emit_json, run_txn
from mailgate.commands import CHANNELS, due_at
from mailgate.config import AgentConfig, Config
from mailgate.errors import Refused
from mailgate.ops import apply as ops
from mailgate.ops import notes, opening, tasks, watchers
from mailgate.ops.base import Change, ticket_id_for
from mailgate.store import Txn

T = TypeVar("T")
Work = Callable[[Config, AgentConfig | None, Txn], Awaitable[T]]


def _run(ctx: click.Context, as_json: bool, agent_id: str | None, work: Work[T], *, write: bool = True) -> T:
    """One transaction as agent `agent_id`; a refusal rolls everything back, prints why and exits 1."""

    async def as_agent(config: Config, tx: Txn) -> T:
        return await work(config, acting_agent(config, agent_id), tx)

    return run_txn(ctx, as_json, as_agent, write=write)


def _done(as_json: bool, number: int | None, changes: list[Change], **extra: Any) -> None:
    if as_json:
        emit_json({"ok": True, "ticket": number, **extra,
               "changes": [{"command": c.command, "summary": c.summary} for c in changes]})
        return
    for change in changes:
        click.echo(f"{'#' + str(number) + ' ' if number else ''}[{change.command}] {change.summary}")


def _command(tx: Txn, config: Config, name: str, value: str) -> commands.Command:
    """The CLI value read exactly as the same tag in a mail would be."""
    tag = f"[{name}:{value}]" if value else f"[{name}]"
    parsed = commands.parse(tag, "", now=tx.now(), tz=config.gateway.timezone)
    if parsed.errors:
        raise Refused("; ".join(str(e) for e in parsed.errors))
    if len(parsed.commands) != 1:
        raise Refused(f"cannot read {value!r} as a {name}")
    return parsed.commands[0]


async def _apply(tx: Txn, config: Config, agent: AgentConfig, number: int, command: commands.Command) -> list[Change]:
    """One command through the checks, the domain function and the effects of acting the mail path has."""
    return await ops.run(tx, config, await ticket_id_for(tx, number), [command], agent)


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
            return await _apply(tx, config, agent, number, _command(tx, config, name, " ".join(value)))

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
            raise Refused("the note is empty")
        ticket_id = await ticket_id_for(tx, number)
        row = await notes.add_note(
            tx, config, ticket_id, agent, words,
            message_id=f"mg.cli.{tx.now().timestamp():.6f}.{agent.id}@{config.message_id_domain}",
        )
        await ops.agent_acted(tx, ticket_id, agent)
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

    async def work(config: Config, agent: AgentConfig | None, tx: Txn) -> opening.Opened:
        assert agent is not None
        if (to is None) == (behalf is None):
            raise Refused("give either --to (mail the customer) or --behalf (record a case)")
        return await opening.open_ticket(
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
        moment = due_at(due, tx.now(), ZoneInfo(config.gateway.timezone))
        if isinstance(moment, str):
            raise Refused(moment)
        task = commands.Command("task", queue.strip().lower(), until=moment, text=words)
        return await ops.run(tx, config, await ticket_id_for(tx, number), [task], agent)

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
        return await tasks.of_ticket(tx, config, await ticket_id_for(tx, number), only_open=only_open)

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
            return await ops.run(tx, config, await ticket_id_for(tx, number), [commands.Command(name)], agent)

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
        ticket_id = await ticket_id_for(tx, number)
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
        following = "following" if w["following"] else "unfollowed" if w["unfollowed"] else "not following"
        click.echo(f"  {w['agent']}: {following},"
                   f" {'unread' if w['unread'] else 'read ' + str(w['read_at'])}")


def attach(tickets: click.Group) -> None:
    """Hang these commands on `mailgate tickets`."""
    for command in (tickets_status, tickets_priority, tickets_assign, tickets_queue, tickets_tag, tickets_note,
                    tickets_new, tickets_task, tickets_task_done, tickets_tasks, tickets_follow, tickets_unfollow,
                    tickets_read):
        tickets.add_command(command)
