"""CLI: `mailgate tickets search QUERY [filters] [--json]`: full text over messages, notes and senders."""

from __future__ import annotations

import click

from mailgate.cli.support import LIMIT, acting_agent, as_agent, emit_json, run_txn
from mailgate.config import Config
from mailgate.ops import search as ops
from mailgate.store import Txn
from mailgate.store.search import Found

# The CLI option and the mail filter word it stands for: one set of checks for both ways in.
OPTIONS = (("status", "status"), ("queue", "queue"), ("assignee", "assignee"), ("tag", "tag"), ("contact", "contact"),
           ("direction", "direction"), ("channel", "channel"), ("since", "from"), ("until", "to"))


@click.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--status", default=None, help="Only tickets in this status (several: open,pending; 'deleted' shows those).")
@click.option("--queue", default=None, help="Only tickets of this queue.")
@click.option("--assignee", default=None, help="Only tickets assigned to this agent ('none': unassigned; 'me' with --as).")
@click.option("--tag", default=None, help="Only tickets with this tag.")
@click.option("--contact", default=None, help="Only tickets of this contact: an address, or a part of a name.")
@click.option("--direction", default=None, help="Only matches in mail received, sent, or in notes (received|sent|note).")
@click.option("--channel", default=None, help="Only tickets that came by this channel (email, phone, web …).")
@click.option("--from", "since", default=None, metavar="YYYY-MM-DD", help="Messages from this day on.")
@click.option("--to", "until", default=None, metavar="YYYY-MM-DD", help="Messages up to this day (inclusive).")
@click.option("--quarantined", is_flag=True, help="Search the quarantined tickets (hidden otherwise).")
@click.option("--limit", default=20, show_default=True, type=LIMIT)
@click.option("--offset", default=0, type=click.IntRange(min=0), help="Skip this many tickets (the next page).")
@as_agent("Who 'assignee:me' is.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tickets_search(ctx: click.Context, /, query: tuple[str, ...], quarantined: bool, limit: int, offset: int,
                   agent_id: str | None, agent_alias: str | None, as_json: bool, **options: str | None) -> None:
    """Tickets whose messages, notes or senders hold every word of QUERY; "a phrase" in quotes, print* a prefix.

    Filter words may also be written in QUERY as in the mail command: status:open queue:billing from:2026-01-01.
    """
    asked = ops.parse(" ".join(query))
    given = tuple((word, str(options[name])) for name, word in OPTIONS if options.get(name) is not None)
    if quarantined:
        given += (("quarantined", "yes"),)
    asked = ops.Asked(asked.terms, asked.filters + given)

    async def work(config: Config, tx: Txn) -> Found:
        agent = acting_agent(config, agent_id or agent_alias)
        return await ops.run(tx, ops.check(config, asked, agent), limit, offset)

    found = run_txn(ctx, as_json, work, write=False)
    if as_json:
        emit_json({"ok": True, "total": found.total, "complete": found.complete, "offset": offset, "hits": [h.to_json() for h in found.hits]})
        return
    for h in found.hits:
        click.echo(f"#{h.number:<6} {h.status:<8} {h.assignee or '-':<10} {h.subject}")
        click.echo(f"        {h.snippet}")
    shown = offset + len(found.hits)
    plus = "" if found.complete else "+"  # only the newest matches were ranked: at least this many
    more = f"; {found.total - shown}{plus} more (--offset {shown})" if found.total > shown else ""
    click.echo(f"{found.total}{plus} ticket{'' if found.total == 1 else 's'} found{more}", err=not found.hits)


def attach(tickets: click.Group) -> None:
    tickets.add_command(tickets_search)
