"""`mailgate outbox`: what waits, what failed and why, dead timers; failed mail requeued after a fix."""

from __future__ import annotations

from typing import Any

import click

from mailgate.cli_support import LIMIT, ROW_ID, emit_json, out, run_txn
from mailgate.config import Config
from mailgate.store import Txn, now_iso


@click.group("outbox")
def outbox_group() -> None:
    """Outgoing mail: counts by state, failed mail with its reason, requeue after a fix."""


@outbox_group.command("status")
@click.pass_context
def outbox_status(ctx: click.Context) -> None:
    """How many outgoing mails are in each state, and how many timers were given up on (dead)."""

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        rows = await tx.all("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY state")
        dead = await tx.value("SELECT COUNT(*) FROM timers WHERE dead_at IS NOT NULL")
        return {"outbox": {r["state"]: r["n"] for r in rows}, "dead_timers": dead}

    emit_json(run_txn(ctx, True, work, write=False))


@outbox_group.command("failed")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_failed(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The latest failed mails: ticket, kind, recipient, tries and the reason."""

    async def work(config: Config, tx: Txn) -> list[dict[str, Any]]:
        rows = await tx.all(
            "SELECT o.id, t.number, o.kind, o.rcpt_to, o.attempts, o.last_error FROM outbox o"
            " LEFT JOIN tickets t ON t.id = o.ticket_id WHERE o.state = 'failed' ORDER BY o.id DESC LIMIT ?",
            (limit,),
        )
        return [dict(r) for r in rows]

    failed = run_txn(ctx, as_json, work, write=False)
    if as_json:
        emit_json(failed)
        return
    for row in failed:
        ticket = f"#{row['number']}" if row["number"] is not None else "-"
        click.echo(f"{row['id']} {ticket} {row['kind']} to={row['rcpt_to']!r} tries={row['attempts']} {row['last_error']}")


@outbox_group.command("retry")
@click.argument("ids", nargs=-1, type=ROW_ID, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def outbox_retry(ctx: click.Context, ids: tuple[int, ...], as_json: bool) -> None:
    """Send failed mails (by id) again, e.g. after switching to a relay that offers SMTPUTF8."""

    async def work(config: Config, tx: Txn) -> int:
        marks = ",".join("?" * len(ids))
        # A running daemon sees this commit within a second and sends them. created_at starts
        # again too: outbox.max_age counts from it, and the old age would fail a retry at once.
        return await tx.rowcount(
            f"UPDATE outbox SET state = 'queued', attempts = 0, not_before = ?, created_at = ?"
            f" WHERE state = 'failed' AND id IN ({marks})",
            (now_iso(), now_iso(), *ids),
        )

    count = run_txn(ctx, as_json, work)
    out(as_json, {"requeued": count}, f"requeued {count}")


def attach(main: click.Group) -> None:
    main.add_command(outbox_group)
