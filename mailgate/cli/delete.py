"""`mailgate tickets delete|restore` and `mailgate messages delete`: the same operations as [delete]/[confirm]/[restore]."""

from __future__ import annotations

from typing import Any

import click

from mailgate import commands
from mailgate.cli.support import ROW_ID, TICKET, acting_agent, out, run_txn
from mailgate.config import Config
from mailgate.ops import apply as ops
from mailgate.ops import delete
from mailgate.ops.base import ticket, ticket_id_for
from mailgate.store import Txn


@click.command("delete")
@click.argument("number", type=TICKET)
@click.option("--as", "agent_id", required=True, help="The agent deleting it (an agent of the ticket's queue).")
@click.option("--yes", is_flag=True, help="Do not ask first (scripts).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_delete(ctx: click.Context, number: int, agent_id: str, yes: bool, as_json: bool) -> None:
    """Delete ticket NUMBER: hidden from every list, restorable (tickets restore) until retention purges it."""
    if not yes:
        # By mail the question is a confirmation mail ([delete], then [confirm]); here it is a prompt.
        click.confirm(f"Delete ticket #{number}? It stays restorable until retention purges it", abort=True,
                      err=True)

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        agent = acting_agent(config, agent_id, needed=True)
        assert agent is not None
        ticket_id = await ticket_id_for(tx, number)
        change = await delete.delete(tx, config, ticket_id, agent)
        await ops.agent_acted(tx, ticket_id, agent)
        return {"ticket": number, "status": delete.DELETED, "summary": change.summary}

    result = run_txn(ctx, as_json, work)
    out(as_json, result, result["summary"])


@click.command("restore")
@click.argument("number", type=TICKET)
@click.option("--as", "agent_id", required=True, help="The agent restoring it (an agent of the ticket's queue).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_restore(ctx: click.Context, number: int, agent_id: str, as_json: bool) -> None:
    """Bring deleted ticket NUMBER back, in the status it had (a waiting one comes back open)."""

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        agent = acting_agent(config, agent_id, needed=True)
        ticket_id = await ticket_id_for(tx, number)
        [change] = await ops.run(tx, config, ticket_id, [commands.Command("restore")], agent)
        row = await ticket(tx, ticket_id)
        return {"ticket": number, "status": row.status, "summary": change.summary}

    result = run_txn(ctx, as_json, work)
    out(as_json, result, result["summary"])


@click.group("messages")
def messages() -> None:
    """One message of a ticket, by the id `tickets show` prints (#id)."""


@messages.command("delete")
@click.argument("message", type=ROW_ID)
@click.option("--as", "agent_id", required=True, help="The agent deleting it (an agent of the ticket's queue).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def messages_delete(ctx: click.Context, message: int, agent_id: str, as_json: bool) -> None:
    """Delete message MESSAGE from its thread: hidden from tickets show, forwards and files, kept until retention."""

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        agent = acting_agent(config, agent_id, needed=True)
        assert agent is not None
        change = await delete.delete_message(tx, config, message, agent)
        return {"message": message, "summary": change.summary}

    result = run_txn(ctx, as_json, work)
    out(as_json, result, result["summary"])


def attach(main: click.Group, tickets: click.Group) -> None:
    """Hang `tickets delete|restore` on the tickets group and `messages` on the program."""
    tickets.add_command(tickets_delete)
    tickets.add_command(tickets_restore)
    main.add_command(messages)
