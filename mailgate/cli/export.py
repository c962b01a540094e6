"""`mailgate tickets export`: a ticket's correspondence as a printable HTML page, an mbox, or .eml."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailgate.cli.support import TICKET, emit_json, run_txn
from mailgate.config import Config
from mailgate.ops import export as ops
from mailgate.store import Txn


def attach(tickets: click.Group) -> None:
    tickets.add_command(export)


@click.command()
@click.argument("number", type=TICKET)
@click.option("--format", "fmt", type=click.Choice(ops.FORMATS), default="html", show_default=True)
@click.option("--messages", default=None, help="Only these, numbered as `tickets show` lists them: 1,3,4.")
@click.option("--notes", is_flag=True, help="Include internal notes (marked as such).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write to this file (default: standard output).")
@click.option("--json", "as_json", is_flag=True, help="With --output: say what was written as JSON.")
@click.pass_context
def export(ctx: click.Context, number: int, fmt: str, messages: str | None, notes: bool, output: Path | None,
           as_json: bool) -> None:
    """Print or export a ticket: html (a clean printable page), mbox (Thunderbird/mutt keep the thread), eml."""

    async def work(config: Config, tx: Txn) -> ops.Export:
        wanted = ops.numbers(messages) if messages is not None else None
        return await ops.export(tx, config, number, fmt, wanted, notes=notes)

    found = run_txn(ctx, as_json, work, write=False)
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(found.data)
        sys.stdout.buffer.flush()
        return
    output.write_bytes(found.data)
    if as_json:
        emit_json({"ok": True, "file": str(output), "bytes": len(found.data), "messages": list(found.messages)})
    else:
        click.echo(f"#{number}: {len(found.messages)} messages, {len(found.data)} bytes written to {output}")
