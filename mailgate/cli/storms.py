"""CLI: `mailgate storms list|release` (--json): what the storm fuse held, and lifting it for a sender."""

from __future__ import annotations

from typing import Any

import click

from mailgate.cli.support import emit_json, out, run_txn
from mailgate.config import Config
from mailgate.outgoing import guard as loops
from mailgate.store import Txn


@click.group("storms")
def storms_group() -> None:
    """Mail storms: senders over storms.sender_mails_per_hour, and acknowledgements over the global caps."""


@storms_group.command("list")
@click.option("--hours", default=24, show_default=True, type=click.IntRange(1, 24 * 366), help="How far back.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def storms_list(ctx: click.Context, hours: int, as_json: bool) -> None:
    """Held mail per sender and clock hour (UTC): how many went through, how many were held, and where."""

    async def work(config: Config, tx: Txn) -> list[dict[str, Any]]:
        return await loops.held_senders(tx, hours)

    rows = run_txn(ctx, as_json, work, write=False)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("nothing held")
    for r in rows:
        where = f" on #{r['ticket']}" if r["ticket"] else ""
        released = " (released)" if r["released"] else ""
        click.echo(f"{r['hour']}  {r['sender'] or '(all senders)'}  {r['what']}: {r['held']} held{where},"
                   f" {r['passed']} passed{released}")


@storms_group.command("release")
@click.argument("sender")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def storms_release(ctx: click.Context, sender: str, as_json: bool) -> None:
    """Let SENDER's mail open tickets and notify again for the rest of this hour (held mail stays where it is)."""
    if "@" not in sender or any(c.isspace() for c in sender):
        raise click.BadParameter(f"{sender!r} is not a mail address", param_hint="SENDER")

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        return await loops.release(tx, sender)

    data = run_txn(ctx, as_json, work)
    out(as_json, data, f"released {data['sender']} for {data['hour']} ({data['held']} held so far)")


def attach(main: click.Group) -> None:
    main.add_command(storms_group)
