"""CLI: `mailgate tickets merge|forward|help|split` (--json), through ops as the same mail tags are."""

from __future__ import annotations

from collections.abc import Callable

import click

from mailgate import commands
from mailgate.cli.support import ROW_ID, TICKET, acting_agent, as_agent, out, run_txn
from mailgate.config import Config
from mailgate.ops import apply as ops
from mailgate.ops.base import Change, ticket_id_for
from mailgate.store import Txn


def _value(name: str, items: tuple[str, ...]) -> str:
    """The same checks as the mail tag ([forward:…], [help:…]): one set of rules for both ways in."""
    command = commands.case_command(name, ", ".join(items), f"[{name}:{', '.join(items)}]")
    if isinstance(command, commands.TagError):
        raise command
    return command.value


def _run(ctx: click.Context, as_json: bool, number: int, agent_id: str | None, *, needed: bool,
         command: Callable[[], commands.Command]) -> None:
    """One command on ticket NUMBER through ops, in one write transaction: all of it or (refused, exit 1) none."""

    async def on_ticket(config: Config, tx: Txn) -> Change:
        agent = acting_agent(config, agent_id, needed=needed)
        changes = await ops.run(tx, config, await ticket_id_for(tx, number), [command()], agent)
        return changes[0]

    change = run_txn(ctx, as_json, on_ticket)
    out(
        as_json,
        {"ticket": number, "command": change.command, "summary": change.summary},
        f"#{number} {change.command}: {change.summary}",
    )


_JSON = click.option("--json", "as_json", is_flag=True)


@click.command("merge")
@click.argument("number", type=TICKET)
@click.argument("into", type=TICKET)
@as_agent()
@_JSON
@click.pass_context
def tickets_merge(ctx: click.Context, number: int, into: int, agent_id: str | None, agent_alias: str | None,
                  as_json: bool) -> None:
    """Merge ticket NUMBER into ticket INTO (same customer only); the customer is told."""
    _run(ctx, as_json, number, agent_id or agent_alias, needed=False,
         command=lambda: commands.Command("merge", str(into), f"[merge:#{into}]"))


@click.command("forward")
@click.argument("number", type=TICKET)
@click.argument("addresses", nargs=-1, required=True)
@click.option("--notes", is_flag=True, help="Include the internal notes.")
@click.option("--text", default="", help="A message to the recipients above the history.")
@as_agent()
@_JSON
@click.pass_context
def tickets_forward(ctx: click.Context, number: int, addresses: tuple[str, ...], notes: bool, text: str,
                    agent_id: str | None, agent_alias: str | None, as_json: bool) -> None:
    """Forward ticket NUMBER with its correspondence to ADDRESSES; their replies become internal notes."""
    name = "forward+notes" if notes else "forward"
    _run(ctx, as_json, number, agent_id or agent_alias, needed=True,
         command=lambda: commands.Command(name, _value(name, addresses), text=text))


@click.command("help")
@click.argument("number", type=TICKET)
@click.argument("colleagues", nargs=-1, required=True)
@click.option("--text", default="", help="The question.")
@as_agent()
@_JSON
@click.pass_context
def tickets_help(ctx: click.Context, number: int, colleagues: tuple[str, ...], text: str, agent_id: str | None,
                 agent_alias: str | None, as_json: bool) -> None:
    """Ask COLLEAGUES (agent ids) about ticket NUMBER; their answers become notes and --as is told."""
    _run(ctx, as_json, number, agent_id or agent_alias, needed=True,
         command=lambda: commands.Command("help", _value("help", colleagues), text=text))


@click.command("split")
@click.argument("number", type=TICKET)
@click.argument("message", type=ROW_ID)
@as_agent()
@_JSON
@click.pass_context
def tickets_split(ctx: click.Context, number: int, message: int, agent_id: str | None, agent_alias: str | None,
                  as_json: bool) -> None:
    """Split customer message MESSAGE (its id in `tickets show --json`) off ticket NUMBER into a new ticket."""
    # The value names the message row; by mail, [split] finds it from the message the mail answers.
    _run(ctx, as_json, number, agent_id or agent_alias, needed=False,
         command=lambda: commands.Command("split", str(message), "[split]"))


def attach(tickets: click.Group) -> None:
    for command in (tickets_merge, tickets_forward, tickets_help, tickets_split):
        tickets.add_command(command)
