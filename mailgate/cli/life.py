"""CLI for ticket life and contacts: `mailgate tickets snooze|wake|sla|links`, `mailgate contacts …` (--json)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from mailgate import commands
from mailgate.cli.support import CONTACT, LIMIT, ROW_ID, TICKET, acting_agent, as_agent, emit_json, out, run_txn
from mailgate.config import Config
from mailgate.errors import Refused
from mailgate.models import TicketStatus
from mailgate.ops import apply as ops
from mailgate.ops import contacts as contact_ops
from mailgate.ops import fields, lifecycle, sla
from mailgate.ops.base import ticket_id_for
from mailgate.store import Txn
from mailgate.store.links import Link

T = TypeVar("T")


def _run(ctx: click.Context, as_json: bool, work: Callable[[Config, Txn], Awaitable[T]], *, write: bool = True) -> T:
    return run_txn(ctx, as_json, work, write=write)


# -- tickets --------------------------------------------------------------------------------------


@click.command("snooze")
@click.argument("number", type=TICKET)
@click.argument("until")
@as_agent()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_snooze(ctx: click.Context, number: int, until: str, agent_id: str | None, agent_alias: str | None,
                   as_json: bool) -> None:
    """Put ticket NUMBER aside until UNTIL (2026-12-01 09:00, 3d, 4h, monday; gateway.timezone)."""

    async def work(config: Config, tx: Txn) -> str:
        # The same reading of the date, checks and effects as "[snooze:…]" by mail.
        command = commands.parse(f"[snooze:{until}]", "", now=tx.now(), tz=config.gateway.timezone)
        if command.errors or len(command.commands) != 1:
            reason = command.errors[0].reason if command.errors else f"cannot read the date {until!r}"
            raise Refused(reason)
        snooze = command.commands[0]
        assert snooze.until is not None
        agent = acting_agent(config, agent_id or agent_alias)
        await ops.run(tx, config, await ticket_id_for(tx, number), [snooze], agent)
        return snooze.until.isoformat()

    moment = _run(ctx, as_json, work)
    out(as_json, {"ticket": number, "status": TicketStatus.WAITING, "until": moment}, f"#{number} waits until {moment}")


@click.command("wake")
@click.argument("number", type=TICKET)
@as_agent()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_wake(ctx: click.Context, number: int, agent_id: str | None, agent_alias: str | None, as_json: bool) -> None:
    """Bring waiting ticket NUMBER back now (status open)."""

    async def work(config: Config, tx: Txn) -> bool:
        agent = acting_agent(config, agent_id or agent_alias)
        ticket_id = await ticket_id_for(tx, number)
        woken = await fields.wake(tx, config, ticket_id, agent)
        if agent is not None:
            await ops.agent_acted(tx, ticket_id, agent)
        return woken

    woken = _run(ctx, as_json, work)
    out(as_json, {"ticket": number, "woken": woken}, f"#{number} {'is open again' if woken else 'was not waiting'}")


@click.command("sla")
@click.argument("number", type=TICKET)
@click.option("--recompute", is_flag=True, help="Apply the queue's current targets and business hours first.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_sla(ctx: click.Context, number: int, recompute: bool, as_json: bool) -> None:
    """Ticket NUMBER's SLA clock: targets, deadlines, minutes used and left, warnings sent."""

    async def work(config: Config, tx: Txn) -> dict[str, Any] | None:
        ticket_id = await ticket_id_for(tx, number)
        if recompute:
            await sla.recompute(tx, config, ticket_id, actor="cli")
        return await sla.report(tx, config, ticket_id)

    report = _run(ctx, as_json, work, write=recompute)
    if as_json:
        emit_json({"ok": True, "ticket": number, "sla": report})
        return
    if report is None:
        click.echo(f"#{number}: no SLA targets for its queue and priority")
        return
    state = "running" if report["running"] else "paused"
    click.echo(f"#{number} queue {report['queue']}, priority {report['priority']}: clock {state},"
               f" {report['used_minutes']} min used{' (business hours)' if report['business_hours'] else ''}")
    for target in sla.TARGETS:
        t = report[target]
        if t["minutes"] is None:
            continue
        if t["met_at"]:
            status = f"met at {t['met_at']}{' (late)' if t['late'] else ''}"
        else:
            status = f"due {t['due'] or '- (paused)'}, {t['left_minutes']} min left"
        flags = ", ".join(f"{k} {t[k + '_at']}" for k in ("warned", "breached") if t[k + "_at"])
        click.echo(f"  {target}: {t['minutes']} min, {status}{'; ' + flags if flags else ''}")


@click.command("links")
@click.argument("number", type=TICKET)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_links(ctx: click.Context, number: int, as_json: bool) -> None:
    """Tickets linked to NUMBER (follow-ups of a closed ticket, and what they follow)."""

    async def work(config: Config, tx: Txn) -> list[Link]:
        return await lifecycle.linked(tx, await ticket_id_for(tx, number))

    found = _run(ctx, as_json, work, write=False)
    if as_json:
        emit_json({"ok": True, "ticket": number, "links": [link.to_json() for link in found]})
        return
    for link in found:
        click.echo(f"{link.way} #{link.number} ({link.status}) {link.subject}")


# -- contacts -------------------------------------------------------------------------------------


@click.group("contacts")
def contacts_group() -> None:
    """Customers: names, organizations, addresses, phones, agents' notes."""


@contacts_group.command("list")
@click.option("--search", default=None, help="Part of a name, organization or address.")
@click.option("--limit", default=50, show_default=True, type=LIMIT)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_list(ctx: click.Context, search: str | None, limit: int, as_json: bool) -> None:
    """Contacts, newest first."""
    rows = _run(ctx, as_json, lambda c, tx: contact_ops.list_contacts(tx, search=search, limit=limit), write=False)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        org = f" ({r['organization']})" if r["organization"] else ""
        click.echo(f"{r['id']:>5} {r['name'] or '-'}{org}  {' '.join(r['addresses'])}  {r['tickets']} tickets")


@contacts_group.command("show")
@click.argument("contact", type=CONTACT)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_show(ctx: click.Context, contact: str, as_json: bool) -> None:
    """One contact (by id or address) with addresses, phones, notes (newest first) and tickets."""

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        return await contact_ops.show(tx, await contact_ops.resolve(tx, contact))

    data = _run(ctx, as_json, work, write=False)
    if as_json:
        emit_json(data)
        return
    click.echo(f"contact {data['id']}: {data['name'] or '-'}")
    for key in ("organization", "department", "title"):
        if data[key]:
            click.echo(f"  {key}: {data[key]}")
    for address in data["addresses"]:
        click.echo(f"  address: {address}")
    for phone in data["phones"]:
        click.echo(f"  phone: {phone['phone']}{' (' + phone['label'] + ')' if phone['label'] else ''}")
    for t in data["tickets"]:
        click.echo(f"  ticket #{t['number']} {t['status']}: {t['subject']}")
    for note in data["notes"]:
        click.echo(f"  note {note['id']} by {note['author']} at {note['created_at']}:")
        for line in note["text"].splitlines():
            click.echo(f"    | {line}")


@contacts_group.command("edit")
@click.argument("contact", type=CONTACT)
@click.option("--name")
@click.option("--organization")
@click.option("--department")
@click.option("--title")
@click.option("--add-phone", "add_phones", multiple=True, help="A phone number to add (repeatable).")
@click.option("--phone-label", default="", help="Label for the added phones (work, mobile …).")
@click.option("--remove-phone", "remove_phones", multiple=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_edit(ctx: click.Context, contact: str, name: str | None, organization: str | None,
                  department: str | None, title: str | None, add_phones: tuple[str, ...], phone_label: str,
                  remove_phones: tuple[str, ...], as_json: bool) -> None:
    """Set a contact's name, organization, department, title and phones (all or nothing)."""

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        contact_id = await contact_ops.resolve(tx, contact)
        await contact_ops.update(tx, contact_id, {"name": name, "organization": organization,
                                                  "department": department, "title": title})
        for phone in add_phones:
            await contact_ops.add_phone(tx, contact_id, phone, phone_label)
        for phone in remove_phones:
            await contact_ops.remove_phone(tx, contact_id, phone)
        return await contact_ops.show(tx, contact_id)

    data = _run(ctx, as_json, work)
    out(as_json, {"contact": data}, f"contact {data['id']} updated")


@contacts_group.command("add-address")
@click.argument("contact", type=CONTACT)
@click.argument("address")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_add_address(ctx: click.Context, contact: str, address: str, as_json: bool) -> None:
    """Give CONTACT one more ADDRESS (refused if another contact has it: see `link --move`)."""

    async def work(config: Config, tx: Txn) -> int:
        contact_id = await contact_ops.resolve(tx, contact)
        await contact_ops.add_address(tx, contact_id, address)
        return contact_id

    contact_id = _run(ctx, as_json, work)
    out(as_json, {"contact": contact_id, "address": address.strip().lower()},
         f"{address.strip().lower()} belongs to contact {contact_id}")


@contacts_group.command("link")
@click.argument("address")
@click.argument("contact", type=CONTACT)
@click.option("--move", is_flag=True, help="Take the address from its current contact, with its tickets.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_link(ctx: click.Context, address: str, contact: str, move: bool, as_json: bool) -> None:
    """Link ADDRESS to CONTACT; an address of another contact moves (with its tickets) only with --move."""

    async def work(config: Config, tx: Txn) -> dict[str, Any]:
        contact_id = await contact_ops.resolve(tx, contact)
        return await contact_ops.link(tx, address, contact_id, move=move, actor="cli")

    result = _run(ctx, as_json, work)
    moved = ", ".join(f"#{n}" for n in result["moved_tickets"]) or "none"
    out(as_json, result, f"{result['address']} → contact {result['contact']}; tickets moved: {moved}")


@contacts_group.command("detach")
@click.argument("number", type=TICKET)
@click.argument("address")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_detach(ctx: click.Context, number: int, address: str, as_json: bool) -> None:
    """Take customer ADDRESS off ticket NUMBER."""
    result = _run(ctx, as_json, lambda c, tx: contact_ops.detach(tx, number, address, actor="cli"))
    out(as_json, result, f"{result['address']} detached from #{number}")


@contacts_group.group("note")
def contacts_note() -> None:
    """Agents' notes on a contact; only the author edits or deletes one."""


@contacts_note.command("add")
@click.argument("contact", type=CONTACT)
@click.argument("text")
@click.option("--as", "author", required=True, help="The writing agent's id.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_note_add(ctx: click.Context, contact: str, text: str, author: str, as_json: bool) -> None:
    """Add a note to CONTACT."""

    async def work(config: Config, tx: Txn) -> int:
        return await contact_ops.add_note(tx, config, await contact_ops.resolve(tx, contact), author, text)

    note_id = _run(ctx, as_json, work)
    out(as_json, {"note": note_id}, f"note {note_id} added")


@contacts_note.command("edit")
@click.argument("note_id", type=ROW_ID)
@click.argument("text")
@click.option("--as", "author", required=True, help="The agent editing (must be the author).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_note_edit(ctx: click.Context, note_id: int, text: str, author: str, as_json: bool) -> None:
    """Replace the text of note NOTE_ID."""
    _run(ctx, as_json, lambda c, tx: contact_ops.edit_note(tx, c, note_id, author, text))
    out(as_json, {"note": note_id}, f"note {note_id} edited")


@contacts_note.command("delete")
@click.argument("note_id", type=ROW_ID)
@click.option("--as", "author", required=True, help="The agent deleting (must be the author).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_note_delete(ctx: click.Context, note_id: int, author: str, as_json: bool) -> None:
    """Delete note NOTE_ID."""
    _run(ctx, as_json, lambda c, tx: contact_ops.delete_note(tx, c, note_id, author))
    out(as_json, {"note": note_id}, f"note {note_id} deleted")


def attach(main: click.Group, tickets: click.Group) -> None:
    """Hang these commands on the `mailgate` and `mailgate tickets` groups."""
    for command in (tickets_snooze, tickets_wake, tickets_sla, tickets_links):
        tickets.add_command(command)
    main.add_command(contacts_group)
