"""`mailgate tickets list|show`: the operator's view of tickets; the group the acting commands join."""

from __future__ import annotations

from typing import Any

import click

from mailgate.cli.events import event_lines
from mailgate.cli.support import LIMIT, TICKET, emit_json, read
from mailgate.ops import ticket_view as ops


@click.group()
def tickets() -> None:
    """Tickets: see them and act on them (the same operations as the mail commands)."""


@tickets.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True, type=LIMIT)
@click.option("--status", default=None, help="Only tickets in this status (deleted ones are listed only so).")
@click.option("--quarantined", is_flag=True, help="Show the quarantined tickets (hidden otherwise).")
@click.pass_context
def tickets_list(ctx: click.Context, as_json: bool, limit: int, status: str | None, quarantined: bool) -> None:
    """Tickets, newest activity first."""
    rows = read(ctx, lambda tx: ops.list_tickets(tx, limit=limit, status=status, quarantined=quarantined))
    if as_json:
        emit_json(rows)
        return
    for t in rows:
        click.echo(
            f"#{t['number']:<6} {t['status']:<8} {t['priority']:<7} {t['messages']:>3} msg  "
            f"{t['contact_address'] or '-':<30} {t['subject']}"
        )


@tickets.command("show")
@click.argument("number", type=TICKET)
@click.option("--json", "as_json", is_flag=True)
@click.option("--events", "last_events", default=20, show_default=True, type=click.IntRange(min=0),
              help="Show this many of the latest events (0: none). --json always has them all.")
@click.pass_context
def tickets_show(ctx: click.Context, number: int, as_json: bool, last_events: int) -> None:
    """One ticket with its messages in order, then its latest events."""
    ticket = read(ctx, lambda tx: ops.show_ticket(tx, number))
    if ticket is None:
        if as_json:
            emit_json({"ok": False, "error": f"no ticket #{number}"})
        click.echo(f"no ticket #{number}", err=True)
        ctx.exit(1)
    if as_json:
        emit_json(ticket)
        return
    click.echo(f"#{ticket['number']} {ticket['subject']}")
    for key in ("status", "priority", "queue", "assignee", "channel", "contact_address", "created_at"):
        click.echo(f"  {key}: {ticket[key]}")
    _echo_routing(ticket)
    for m in ticket["messages"]:
        sender = m["from"]["address"] or "-"
        if m.get("unproven_agent"):
            sender += f" (unproven: not verified as agent {m['unproven_agent']})"
        click.echo(f"\n--- #{m['id']} {m['direction']} {m['date'] or m['received_at']} from {sender}"
                   f" [{m['kind']}, {m['thread_detail']}]")
        click.echo(f"    {m['subject']}")
        for line in (m["reply_text"] or "").splitlines():
            click.echo(f"    | {line}")
        for a in m["attachments"]:
            click.echo(f"    + {a['filename'] or '(unnamed)'} {a['content_type']} {a['size']} bytes")
    lines = event_lines(ticket["events"], last_events)
    if lines:
        # Failed deliveries and suppressed acknowledgements live only here: without them a ticket
        # looks answered when the customer never got a word.
        click.echo("")
        for line in lines:
            click.echo(line)


def _echo_routing(ticket: dict[str, Any]) -> None:
    """Why the ticket is in its queue, at its priority."""
    if ticket.get("category"):
        click.echo(f"  category: {ticket['category']}")
    if ticket.get("tags"):
        click.echo(f"  tags: {', '.join(ticket['tags'])}")
    if ticket.get("quarantined"):
        click.echo("  quarantined: yes (hidden from tickets list)")
    if ticket.get("ack_suppressed"):
        click.echo("  acknowledgement: suppressed")
    routing = ticket.get("routing")
    if not routing:
        return
    click.echo("  routing:")
    for key, why in routing["because"].items():
        click.echo(f"    {key} = {routing.get(key)}: {why}")
    assignment = routing.get("assignment") or {}
    if assignment:
        click.echo(f"    assignee = {assignment.get('agent')}: {assignment.get('why')}")
    for t in routing["trace"]:
        click.echo(f"    rule {t['rule']!r} matched ({t['condition']}): {t['why']}")
    click.echo(f"    {routing['evaluated']} of {routing['rules']} rules evaluated, {len(routing['matched'])} matched")

