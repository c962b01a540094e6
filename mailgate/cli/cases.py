"""CLI: `mailgate tickets merge|forward|help|split` (--json), the same domain functions as the mail tags."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import click

from mailgate import commands
from mailgate.cli.support import ROW_ID, TICKET, out, run_txn
from mailgate.config import AgentConfig, Config
from mailgate.ops import forward as forwarding
from mailgate.ops import lifecycle, merge, split
from mailgate.ops.agent import Change, OpError
from mailgate.store import Txn


def _agent(config: Config, agent_id: str | None, *, needed: bool) -> AgentConfig | None:
    if agent_id is None:
        if needed:
            raise OpError("--agent is needed: the agent on whose behalf this is done (answers go to them)")
        return None
    agent = config.agent(agent_id)
    if agent is None:
        raise OpError(f"unknown agent {agent_id!r}")
    return agent


def _value(name: str, items: tuple[str, ...]) -> str:
    """The same checks as the mail tag ([forward:…], [help:…]): one set of rules for both ways in."""
    command = commands.case_command(name, ", ".join(items), f"[{name}:{', '.join(items)}]")
    if isinstance(command, commands.TagError):
        raise OpError(str(command))
    return command.value


def _run(ctx: click.Context, as_json: bool, number: int, work: Callable[[Config, Txn, int], Awaitable[Change]]) -> None:
    """One write transaction: all of it or (refused, exit 1) none of it."""

    async def on_ticket(config: Config, tx: Txn) -> Change:
        return await work(config, tx, await lifecycle.ticket_id_for(tx, number))

    change = run_txn(ctx, as_json, on_ticket)
    out(
        as_json,
        {"ticket": number, "command": change.command, "summary": change.summary},
        f"#{number} {change.command}: {change.summary}",
    )


_AGENT = click.option("--agent", "agent_id", default=None, help="The agent id this is done as.")
_JSON = click.option("--json", "as_json", is_flag=True)


@click.command("merge")
@click.argument("number", type=TICKET)
@click.argument("into", type=TICKET)
@_AGENT
@_JSON
@click.pass_context
def tickets_merge(ctx: click.Context, number: int, into: int, agent_id: str | None, as_json: bool) -> None:
    """Merge ticket NUMBER into ticket INTO (same customer only); the customer is told."""

    async def work(config: Config, tx: Txn, ticket_id: int) -> Change:
        return await merge.merge(tx, config, ticket_id, into, _agent(config, agent_id, needed=False))

    _run(ctx, as_json, number, work)


@click.command("forward")
@click.argument("number", type=TICKET)
@click.argument("addresses", nargs=-1, required=True)
@click.option("--notes", is_flag=True, help="Include the internal notes.")
@click.option("--text", default="", help="A message to the recipients above the history.")
@_AGENT
@_JSON
@click.pass_context
def tickets_forward(ctx: click.Context, number: int, addresses: tuple[str, ...], notes: bool, text: str,
                    agent_id: str | None, as_json: bool) -> None:
    """Forward ticket NUMBER with its correspondence to ADDRESSES; their replies become internal notes."""

    async def work(config: Config, tx: Txn, ticket_id: int) -> Change:
        value = _value("forward+notes" if notes else "forward", addresses)
        agent = _agent(config, agent_id, needed=True)
        assert agent is not None
        return await forwarding.forward(tx, config, ticket_id, value.split(", "), agent, notes=notes, text=text)

    _run(ctx, as_json, number, work)


@click.command("help")
@click.argument("number", type=TICKET)
@click.argument("colleagues", nargs=-1, required=True)
@click.option("--text", default="", help="The question.")
@_AGENT
@_JSON
@click.pass_context
def tickets_help(ctx: click.Context, number: int, colleagues: tuple[str, ...], text: str, agent_id: str | None,
                 as_json: bool) -> None:
    """Ask COLLEAGUES (agent ids) about ticket NUMBER; their answers become notes and --agent is told."""

    async def work(config: Config, tx: Txn, ticket_id: int) -> Change:
        value = _value("help", colleagues)
        agent = _agent(config, agent_id, needed=True)
        assert agent is not None
        return await forwarding.ask_help(tx, config, ticket_id, value.split(", "), agent, text=text)

    _run(ctx, as_json, number, work)


@click.command("split")
@click.argument("number", type=TICKET)
@click.argument("message", type=ROW_ID)
@_AGENT
@_JSON
@click.pass_context
def tickets_split(ctx: click.Context, number: int, message: int, agent_id: str | None, as_json: bool) -> None:
    """Split customer message MESSAGE (its id in `tickets show --json`) off ticket NUMBER into a new ticket."""

    async def work(config: Config, tx: Txn, ticket_id: int) -> Change:
        return await split.split(tx, config, ticket_id, _agent(config, agent_id, needed=False), message_row=message)

    _run(ctx, as_json, number, work)


def attach(tickets: click.Group) -> None:
    for command in (tickets_merge, tickets_forward, tickets_help, tickets_split):
        tickets.add_command(command)
