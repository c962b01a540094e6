"""`mailgate replies list|show`: the saved replies agents send with [use:NAME], as [list:replies] lists them."""

from __future__ import annotations

import click

from mailgate.cli.support import emit_json, load_config
from mailgate.config import LANGUAGES
from mailgate.outgoing import saved_replies


@click.group("replies")
def replies() -> None:
    """Saved replies ([replies] folder): <name>.<lang>.j2, and <queue>/<name>.<lang>.j2 for one queue."""


@replies.command("list")
@click.option("--queue", default=None, help="What this queue's agents can use: its own and the shared ones.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def replies_list(ctx: click.Context, queue: str | None, as_json: bool) -> None:
    """Every saved reply: name, language, queue (- for all) and first line."""
    config = load_config(ctx)
    if queue is not None and config.queue(queue) is None:
        raise click.BadParameter(f"unknown queue {queue!r}", param_hint="--queue")
    found = saved_replies.listing(config, queue)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo(f"no saved replies in {saved_replies.folder(config)}")
    for r in found:
        click.echo(f"{r['name']:<20} {r['language']:<3} {r['queue'] or '-':<12} {r['first_line']}")


@replies.command("show")
@click.argument("name")
@click.option("--lang", "language", default=None, help="The language (default: the gateway's, then English).")
@click.option("--queue", default=None, help="As this queue's agents would send it (its own first).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def replies_show(ctx: click.Context, name: str, language: str | None, queue: str | None, as_json: bool) -> None:
    """A saved reply rendered with sample fields, as check-config renders it."""
    config = load_config(ctx)
    found, _ = saved_replies.found(config)
    wanted = (language,) if language else (config.gateway.default_language, "en", *LANGUAGES)
    reply = saved_replies.choose(found, name.lower(), wanted, queue)
    if reply is None:
        click.echo(f"no saved reply {name!r}{f' in {language}' if language else ''}", err=True)
        ctx.exit(1)
    assert reply is not None
    try:
        text = saved_replies.render(config, reply, saved_replies.SAMPLE)
    except Exception as exc:  # noqa: BLE001 - shown to the operator, with file and line
        click.echo(f"template error: {saved_replies.problem(reply, exc)}", err=True)
        ctx.exit(1)
    if as_json:
        emit_json({**reply.to_json(), "text": text})
        return
    click.echo(text, nl=False)


def attach(main: click.Group) -> None:
    main.add_command(replies)
