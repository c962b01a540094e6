"""`mailgate spool list|show`: what came in, what died of what, and the bytes as they arrived (like postcat)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import click

from mailgate.cli.support import LIMIT, ROW_ID, emit_json, run_txn
from mailgate.config import Config
from mailgate.errors import Refused
from mailgate.store import Txn
from mailgate.store import spool as spooled

# 'failed' is no state of its own: rows that failed at least once, dead or still being retried.
SPOOL_STATES = ("received", "done", "duplicate", "dead", "failed")
SHORT_ERROR = 60  # a listing stays one line per row; `show` has the whole reason


def age(stamp: str | None, now: datetime) -> str:
    """'42s', '7m', '3h', '2d' from an ISO time to `now` (the store's clock); '-' for none (or one a clock moved past)."""
    seconds = _seconds(stamp, now)
    return "-" if seconds is None or seconds < 0 else _span(seconds)


def until(stamp: str | None, now: datetime) -> str:
    """How long from `now` until an ISO time ('in 5m'); '-' once it is due."""
    seconds = _seconds(stamp, now)
    return "-" if seconds is None or seconds >= 0 else "in " + _span(-seconds)


def _seconds(stamp: str | None, now: datetime) -> float | None:
    if not stamp:
        return None
    try:
        return (now - datetime.fromisoformat(stamp)).total_seconds()
    except (ValueError, TypeError):
        return None


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def shorten(text: str | None, width: int = SHORT_ERROR) -> str:
    """One line: a reason may hold the relay's multi-line answer or a sender's control characters."""
    if not text:
        return "-"
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def header_block(raw: bytes) -> str:
    """The header section of stored bytes as text, exactly up to the first empty line.

    Decoded leniently: the spool holds whatever a sender wrote (8-bit headers, bare LFs), and
    showing it must never fail. Control characters other than line breaks and tabs are made
    visible, so a hostile header cannot rewrite the operator's terminal.
    """
    end = len(raw)
    for sep in (b"\r\n\r\n", b"\n\n"):
        found = raw.find(sep)
        if found != -1:
            end = min(end, found)
    return visible(raw[:end].decode("utf-8", "replace").replace("\r\n", "\n"), keep="\n\t")


def visible(text: str, keep: str = "") -> str:
    """Control characters shown as \\xNN: a sender's bytes must not move the operator's cursor."""
    return "".join(c if c.isprintable() or c in keep else f"\\x{ord(c):02x}" for c in text)


def field_line(key: str, value: object, width: int) -> str:
    """'key:   value' for `show`; a multi-line value (a relay's 550- reply) continues indented."""
    text = "-" if value is None else visible(str(value).replace("\r\n", "\n"), keep="\n")
    return f"{key + ':':<{width}} " + text.replace("\n", "\n" + " " * (width + 1))


def write_raw(raw: bytes) -> None:
    """The stored bytes to stdout unchanged (no newline added, no decoding): for `| formail` or a diff."""
    click.echo(raw, nl=False)  # bytes go to the binary stream untouched


@click.command("list")
@click.option("--state", type=click.Choice(SPOOL_STATES), default=None,
              help="Only rows in this state; failed: every row that failed at least once (dead or retrying).")
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def spool_list(ctx: click.Context, state: str | None, limit: int, as_json: bool) -> None:
    """The latest spooled mails: id, state, source, sender, size, tries and the error, newest first."""

    async def work(config: Config, tx: Txn) -> tuple[datetime, list[dict[str, Any]]]:
        return tx.now(), [asdict(row) for row in await spooled.listing(tx, state, limit)]

    now, found = run_txn(ctx, as_json, work, write=False)
    if as_json:
        emit_json(found)
        return
    click.echo(f"{'id':>6} {'state':<9} {'source':<6} {'ticket':>7} {'size':>8} {'tries':>5} {'age':>5} {'node':<16}"
               "  from / error")
    for row in found:
        ticket = f"#{row['ticket']}" if row["ticket"] is not None else "-"
        error = row["error"] or row["last_error"]
        click.echo(
            f"{row['id']:>6} {row['state']:<9} {row['source']:<6} {ticket:>7} {row['size']:>8} {row['attempts']:>5}"
            f" {age(row['received_at'], now):>5} {shorten(row['claimed_by'], 16):<16}"
            f"  {shorten(row['mail_from'] or '<>', 40)} {shorten(error)}"
        )


@click.command("show")
@click.argument("spool_id", type=ROW_ID)
@click.option("--raw", is_flag=True, help="Only the stored bytes, exactly as received.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def spool_show(ctx: click.Context, spool_id: int, raw: bool, as_json: bool) -> None:
    """One spooled mail: envelope, peer, source, size, state, tries, errors, what it became, its headers."""

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        found = await spooled.detail(tx, spool_id)
        if found is None:
            raise Refused(f"no spool row {spool_id}")
        return asdict(found)

    row = run_txn(ctx, as_json, work, write=False)
    data: bytes = row.pop("raw")
    if raw:
        write_raw(data)
        return
    row["size"] = len(data)
    row["headers"] = header_block(data)
    if as_json:
        emit_json(row)
        return
    for key in ("id", "state", "received_at", "source", "source_ref", "peer", "mail_from", "rcpt_to", "imported",
                "size", "sha256", "attempts", "error", "retries", "retried_at", "last_error", "ticket", "message_row",
                "message_id"):
        value = row.get(key)
        if key == "ticket" and value is not None:
            value = f"#{value}"
        elif key == "rcpt_to":
            value = ", ".join(value or ())
        elif key == "mail_from" and value == "":
            value = "<>"
        click.echo(field_line(key, value, 12))
    click.echo("")
    click.echo(row["headers"])


def attach(spool: click.Group) -> None:
    spool.add_command(spool_list)
    spool.add_command(spool_show)
