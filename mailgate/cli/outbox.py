"""`mailgate outbox` (like mailq, postsuper): what waits, what failed and why; requeue after a fix, or cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from mailgate.cli.spool import age, field_line, header_block, shorten, until, write_raw
from mailgate.cli.support import LIMIT, ROW_ID, TICKET, emit_json, out, run_txn
from mailgate.config import Config
from mailgate.errors import Refused
from mailgate.outgoing import outbox
from mailgate.store import Txn, outbox_view, stats, timers
from mailgate.store import outbox as rows

OUTBOX_STATES = rows.STATES
ACTOR = "cli"


@click.group("outbox")
def outbox_group() -> None:
    """Outgoing mail: list and inspect it, requeue after a fix, cancel what must not go."""


@outbox_group.command("status")
@click.pass_context
def outbox_status(ctx: click.Context) -> None:
    """How many outgoing mails are in each state, and how many timers were given up on (dead)."""

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        return {"outbox": await stats.outbox_by_state(tx), "dead_timers": await timers.dead_count(tx)}

    emit_json(run_txn(ctx, True, work, write=False))


def _list(ctx: click.Context, as_json: bool, limit: int, state: str | None = None, ticket: int | None = None,
          kind: str | None = None) -> None:
    async def work(config: Config, tx: Txn) -> tuple[datetime, list[dict[str, Any]]]:
        listed = await outbox_view.listing(tx, state=state, ticket=ticket, kind=kind, limit=limit)
        return tx.now(), [r.to_json() for r in listed]

    now, found = run_txn(ctx, as_json, work, write=False)
    if as_json:
        emit_json(found)
        return
    click.echo(f"{'id':>6} {'state':<9} {'kind':<8} {'ticket':>7} {'tries':>5} {'age':>5} {'next':>6} {'node':<16}"
               "  rcpt / last error")
    for row in found:
        ticket_text = f"#{row['number']}" if row["number"] is not None else "-"
        next_try = until(row["not_before"], now) if row["state"] == "queued" else "-"
        click.echo(
            f"{row['id']:>6} {row['state']:<9} {row['kind']:<8} {ticket_text:>7} {row['attempts']:>5}"
            f" {age(row['created_at'], now):>5} {next_try:>6} {shorten(row['claimed_by'], 16):<16}"
            f"  {shorten(row['rcpt_to'], 40)} {shorten(row['last_error'])}"
        )


@outbox_group.command("list")
@click.option("--state", type=click.Choice(OUTBOX_STATES), default=None, help="Only mail in this state.")
@click.option("--ticket", type=TICKET, default=None, help="Only mail of this ticket (its number).")
@click.option("--kind", default=None, help="Only this kind: ack, notify, resolved, reply, failed ...")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_list(ctx: click.Context, state: str | None, ticket: int | None, kind: str | None, limit: int,
                as_json: bool) -> None:
    """Outgoing mail, newest first (like mailq): state, kind, ticket, recipient, tries, age, next try, last error."""
    _list(ctx, as_json, limit, state, ticket, kind)


@outbox_group.command("failed")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_failed(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The latest failed mails with the reason: `list --state failed`."""
    _list(ctx, as_json, limit, "failed")


@outbox_group.command("show")
@click.argument("outbox_id", type=ROW_ID)
@click.option("--raw", is_flag=True, help="Only the bytes handed to the relay.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_show(ctx: click.Context, outbox_id: int, raw: bool, as_json: bool) -> None:
    """One outgoing mail: every field, and the headers of the bytes handed to the relay."""

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        row = await outbox_view.shown(tx, outbox_id)
        if row is None:
            raise Refused(f"no outbox row {outbox_id}")
        return row.to_json()

    row = run_txn(ctx, as_json, work, write=False)
    data = bytes(row.pop("raw"))
    if raw:
        write_raw(data)
        return
    row["automatic"] = bool(row["automatic"])
    row["size"] = len(data)
    row["headers"] = header_block(data)
    text = row.pop("text")
    if as_json:
        emit_json({**row, "text": text})
        return
    for key, value in row.items():
        if key in ("headers", "ticket_id"):
            continue
        if key == "ticket" and value is not None:
            value = f"#{value}"
        click.echo(field_line(key, value, 13))
    click.echo("")
    click.echo(row["headers"])


@outbox_group.command("retry")
@click.argument("ids", nargs=-1, type=ROW_ID, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_retry(ctx: click.Context, ids: tuple[int, ...], as_json: bool) -> None:
    """Send these mails now: failed ones again (e.g. after switching to a relay that offers SMTPUTF8),
    queued ones waiting for a retry or a delayed send without further wait."""

    async def work(config: Config, tx: Txn) -> tuple[list[int], dict[int, str]]:
        done = [r.id for r in await outbox.requeue(tx, list(ids), ACTOR)]
        return done, await _left(tx, ids, done)

    done, left = run_txn(ctx, as_json, work)
    out(as_json, {"requeued": len(done), "ids": done, "left": left}, f"requeued {len(done)}{_left_text(left)}")


@outbox_group.command("cancel")
@click.argument("ids", nargs=-1, type=ROW_ID, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_cancel(ctx: click.Context, ids: tuple[int, ...], as_json: bool) -> None:
    """Never send these mails (queued or held); the ticket records it. Mail being sent cannot be called back."""

    async def work(config: Config, tx: Txn) -> tuple[list[int], dict[int, str]]:
        done = [r.id for r in await outbox.cancel(tx, list(ids), ACTOR)]
        return done, await _left(tx, ids, done)

    done, left = run_txn(ctx, as_json, work)
    out(as_json, {"cancelled": len(done), "ids": done, "left": left}, f"cancelled {len(done)}{_left_text(left)}")


async def _left(tx: Txn, ids: tuple[int, ...], done: list[int]) -> dict[int, str]:
    """The ids not acted on, with their state ('missing' for no such row): the operator sees why."""
    rest = sorted(set(ids) - set(done))
    states = await rows.states(tx, rest)
    return {i: states.get(i, "missing") for i in rest}


def _left_text(left: dict[int, str]) -> str:
    return "; left: " + ", ".join(f"{i} ({state})" for i, state in left.items()) if left else ""


def attach(main: click.Group) -> None:
    main.add_command(outbox_group)
