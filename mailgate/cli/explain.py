"""`mailgate parse` and `mailgate rules test`: how mailgate reads and routes a message, with no store touched."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mailgate import config as config_mod
from mailgate import rules
from mailgate.cli import parse as parse_cli
from mailgate.cli.support import emit_json, load_config
from mailgate.mail import bounces, identity
from mailgate.mail.parse import parse
from mailgate.models import Envelope, MailKind, ParsedMail, Source
from mailgate.rules import report as rules_report


@click.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, one line per file.")
@click.option("--trace", is_flag=True, help="Add mail-parser's Received-hop analysis and defects, and who sent it.")
@click.option("--peer", default=None,
              help="With --trace: the SMTP peer address it came from (default: the local MTA's pipe).")
@click.pass_context
def parse_command(ctx: click.Context, files: tuple[Path, ...], as_json: bool, trace: bool, peer: str | None) -> None:
    """Show how mailgate understands each message (no daemon, no store)."""
    for path in files:
        raw = path.read_bytes()
        parsed = parse(raw)
        details = {**parse_cli.trace(raw), "identity": _identity_trace(ctx, parsed, peer)} if trace else {}
        # Which addresses a bounce says failed: an operator checks this before blaming the relay.
        failed = list(bounces.bounced_recipients(raw)) if parsed.kind is MailKind.BOUNCE else []
        if as_json:
            data = parse_cli.parsed_to_json(parsed)
            data["bounced_recipients"] = failed
            data["file"] = str(path)
            if trace:
                data["trace"] = details
            emit_json(data)
        else:
            click.echo(f"== {path}")
            click.echo(parse_cli.format_text(parsed))
            if failed:
                click.echo(f"Bounced:     {', '.join(failed)}")
            if trace:
                click.echo(json.dumps(details, indent=2, ensure_ascii=False, default=str))


def _identity_trace(ctx: click.Context, parsed: ParsedMail, peer: str | None) -> dict[str, object]:
    """Whether the mail would be an agent's, and which Authentication-Results count (needs the config)."""
    try:
        config = config_mod.load((ctx.obj or {})["config_path"])
        secret = config.secret_bytes()
    except (config_mod.ConfigError, OSError, KeyError, TypeError, ValueError) as exc:
        return {"error": f"no config to judge the sender by: {exc}"}
    envelope = Envelope("", (), Source.SMTP if peer else Source.PIPE, peer=peer)
    return identity.explain(config, parsed, envelope, secret)


@click.group("rules")
def rules_group() -> None:
    """Routing rules: see what they decide for a message."""


@rules_group.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--recipient", "recipients", multiple=True, help="Envelope recipient (repeatable; default: To/Cc).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_test(ctx: click.Context, file: Path, recipients: tuple[str, ...], as_json: bool) -> None:
    """Show each rule, matched or not and why, and the ticket fields FILE would get. No store is touched."""
    config = load_config(ctx)
    ruleset = rules.compile_rules(config)
    data = rules_report.explain(ruleset, rules.route(ruleset, parse(file.read_bytes()), recipients))
    if as_json:
        emit_json(data)
    else:
        click.echo(rules_report.format_text(data))



def attach(main: click.Group) -> None:
    main.add_command(parse_command)
    main.add_command(rules_group)
