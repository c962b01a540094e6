"""The `mailgate` command: parse arguments, call the domain functions, print (text or --json)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from mailgate import config as config_mod
from mailgate.cli import db as cli_db
from mailgate.cli.postfix import IngestCommand, held_log
from mailgate.cli.support import LIMIT, ROW_ID, TICKET, SafeGroup, emit_json, load_config
from mailgate.config import ConfigError
from mailgate.models import Source
from mailgate.obs import FORMATS, setup_logging
from mailgate.sources import pipe
from mailgate.store import SchemaTooNew, StoreUnavailable, store_for

DEFAULT_CONFIG = "/etc/mailgate/config.toml"
log = logging.getLogger("mailgate.cli")


def entry() -> None:
    """The `mailgate` program (console script and `python -m mailgate`)."""
    # Customers' mail, attachments and the spool are nobody else's business: with the usual umask
    # 022 SQLite made the database (and its -wal/-shm) 0644, readable by every local user. Set at
    # process start, before any command opens a file, so run, ingest (spawned by the MTA with its
    # own umask), every command that writes, and whatever the daemon runs create 0600 files and
    # 0700 folders.
    os.umask(0o077)
    main()


@click.group(cls=SafeGroup)
@click.option(
    "--config",
    "config_path",
    envvar="MAILGATE_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The TOML config file (or $MAILGATE_CONFIG).",
)
@click.option("--log-level", envvar="MAILGATE_LOG_LEVEL", default="INFO", show_default=True,
              help="DEBUG, INFO, WARNING or ERROR; libraries stay at WARNING unless named: INFO,mail.log=INFO,apscheduler=DEBUG.")
@click.option("--log-format", envvar="MAILGATE_LOG_FORMAT", default="auto", show_default=True,
              type=click.Choice(FORMATS),
              help="text; json (one object per line); journald (<N> priority prefixes); auto: journald when stderr is the journal.")
@click.version_option(package_name="mailgate")
@click.pass_context
def main(ctx: click.Context, config_path: Path, log_level: str, log_format: str) -> None:
    """mailgate: a help desk that lives in email."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    try:
        setup_logging(log_level, log_format)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--log-level") from exc


DEV = click.option("--dev", is_flag=True, help="A trial run: accept the example secret (never in production);"
                   " with run, outgoing mail goes to var/outgoing (Maildir, beside the config) unless [relay] names one.")


def _production_config(ctx: click.Context, dev: bool, *, print_warnings: bool = False) -> config_mod.Config:
    """The config, refused (file:line:key, exit 1) when it cannot run for real; each warning is one
    log line (the daemon's) or one printed line (check-config's)."""
    config = load_config(ctx).model_copy(update={"dev": dev})
    issues = config_mod.production_issues(config)
    for issue in issues:
        click.echo(f"config error: {issue}", err=True)
    if issues:
        ctx.exit(1)
    for warning in config_mod.permission_warnings(config):
        if print_warnings:
            click.echo(f"warning: {warning}", err=True)
        else:
            log.warning("config.insecure %s", warning)
    return config


@main.command()
@DEV
@click.pass_context
def run(ctx: click.Context, dev: bool) -> None:
    """Run the daemon: receive mail by SMTP/LMTP and thread it into tickets."""
    from mailgate import daemon

    config = _production_config(ctx, dev)
    if dev:
        config = config_mod.dev_outgoing(config)
    try:
        asyncio.run(daemon.run(config))
    except SchemaTooNew as exc:
        # EX_CONFIG, not EX_TEMPFAIL: no restart helps until mailgate is upgraded or a backup restored.
        click.echo(f"cannot start: {exc}", err=True)
        ctx.exit(cli_db.EX_CONFIG)
    except StoreUnavailable as exc:
        click.echo(f"store unavailable: {exc}", err=True)
        ctx.exit(pipe.EX_TEMPFAIL)
    except OSError as exc:
        click.echo(f"cannot start: {exc}", err=True)
        ctx.exit(1)


@main.command("check-config")
@DEV
@click.pass_context
def check_config(ctx: click.Context, dev: bool) -> None:
    """Validate the config; exit 0 when it is usable, 1 with every error otherwise."""
    config = _production_config(ctx, dev, print_warnings=True)
    if config.rule_tests:  # routing (issue 5): the operator's own rule tests must pass too
        from mailgate import rules
        from mailgate.rules import report as rules_cli

        ran, failures = rules_cli.run_tests(config, rules.compile_rules(config))
        for issue in failures:
            click.echo(f"rule test failed: {issue}", err=True)
        if failures:
            ctx.exit(1)
        click.echo(f"{ran} rule tests passed")
    from mailgate.outgoing import templates

    template_problems = templates.check(config)
    for problem in template_problems:
        click.echo(f"template error: {problem}", err=True)
    # (A database on a read-only mount or in another user's folder was refused with the config above.)
    if template_problems:
        ctx.exit(1)
    click.echo(f"{ctx.obj['config_path']}: ok ({len(config.gateway.addresses)} support addresses)")


@main.command(cls=IngestCommand)
@click.argument("files", nargs=-1)
@click.option("--mbox", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Import an mbox file.")
@click.option("--maildir", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Import a Maildir.")
@click.option("--sender", default="", help="Envelope sender, as the MTA passes it (${sender}; MAILER-DAEMON or <> is the null sender).")
@click.option("--recipient", "recipients", multiple=True,
              help="Envelope recipient; repeatable, and every address after it counts (Postfix's ${recipient}).")
@click.option(
    "--import",
    "imported",
    is_flag=True,
    help="Mark as imported old mail (never acknowledged). Implied by --mbox and --maildir.",
)
@click.option("--no-process", is_flag=True, help="Only spool; the running daemon threads the messages.")
@click.pass_context
def ingest(
    ctx: click.Context,
    files: tuple[str, ...],
    mbox: Path | None,
    maildir: Path | None,
    sender: str,
    recipients: tuple[str, ...],
    imported: bool,
    no_process: bool,
) -> None:
    """Store mail from stdin, FILES, an mbox or a Maildir (for MTA pipes and imports).

    Exit codes follow sysexits: 0 stored, 66 a file is missing, 65 nothing to store,
    75 the store is unavailable, the config or the arguments unusable, or anything else went wrong
    (the MTA keeps the mail and retries). A failure's first output line is an enhanced status
    code (4.x.x / 5.x.x), which Postfix's pipe(8) puts in its delivery report. An argument that
    is an address and names no file is a recipient (`-- ${recipient}`).
    """
    with held_log():
        try:
            failure = _ingest(ctx, files, mbox, maildir, pipe.envelope_sender(sender), recipients, imported, no_process)
        except Exception as exc:  # noqa: BLE001 - nothing is lost: whatever broke, the MTA keeps the mail
            log.error("ingest.failed reason=%s: %s", type(exc).__name__, exc)
            failure = pipe.Failure(pipe.EX_TEMPFAIL, "4.3.0", "mailgate: temporary failure, try again later")
        if failure is not None:
            click.echo(failure.line(), err=True)
    if failure is not None:
        ctx.exit(failure.exit_code)


def _ingest(
    ctx: click.Context,
    files: tuple[str, ...],
    mbox: Path | None,
    maildir: Path | None,
    sender: str,
    recipients: tuple[str, ...],
    imported: bool,
    no_process: bool,
) -> pipe.Failure | None:
    try:
        config = config_mod.load(ctx.obj["config_path"])
    except ConfigError as exc:
        # Details go to the log, not the status line: Postfix may quote it in a bounce to a stranger.
        for issue in exc.issues:
            log.error("ingest.config_error issue=%s", issue)
        return pipe.Failure(pipe.EX_TEMPFAIL, "4.3.5", "mailgate: config unusable, try again later")
    recipients += tuple(a for a in files if pipe.is_address(a))
    sources: list[Iterator[tuple[str, bytes]]] = []
    for name in files:
        if pipe.is_address(name):
            continue
        try:
            sources.append(iter([(name, Path(name).read_bytes())]))
        except OSError as exc:
            return pipe.Failure(pipe.EX_NOINPUT, "5.3.0", f"mailgate: cannot read {name}: {exc.strerror}")
    if mbox:
        sources.append(pipe.read_mbox(mbox))
    if maildir:
        sources.append(pipe.read_maildir(maildir))
    if not sources:
        sources.append(iter([("stdin", sys.stdin.buffer.read())]))
    is_import = imported or mbox is not None or maildir is not None
    source = Source.IMPORT if is_import else Source.PIPE

    def messages() -> Iterator[tuple[str, bytes]]:
        for iterator in sources:
            yield from iterator

    async def go() -> pipe.PipeResult:
        async with store_for(config) as store:
            result = await pipe.store_messages(
                store, messages(), mail_from=sender, rcpt_to=recipients, source=source, imported=is_import
            )
            if not no_process and result.spool_ids:
                from mailgate.pipeline.process import Processor

                # The mail is safe in the spool now; a failure here leaves it for the daemon.
                try:
                    await Processor(config, store).drain()
                except (StoreUnavailable, Exception) as exc:  # noqa: BLE001
                    log.warning("ingest.not_threaded reason=%s (the daemon will thread it)", exc)
            return result

    try:
        result = asyncio.run(go())
    except StoreUnavailable as exc:
        log.error("ingest.store_unavailable reason=%s", exc)
        return pipe.Failure(pipe.EX_TEMPFAIL, "4.3.0", "mailgate: store unavailable, try again later")
    log.info(
        "ingest.stored stored=%d duplicates=%d empty=%d sender=%s recipients=%d source=%s",
        result.stored, result.duplicates, result.empty, sender or "<>", len(recipients), source,
    )
    if result.stored + result.duplicates == 0:
        return pipe.Failure(pipe.EX_DATAERR, "5.6.0", "mailgate: no message to store")
    click.echo(f"stored {result.stored}, duplicates {result.duplicates}, empty {result.empty}", err=True)
    return None


@main.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, one line per file.")
@click.option("--trace", is_flag=True, help="Add mail-parser's Received-hop analysis and defects, and who sent it.")
@click.option("--peer", default=None,
              help="With --trace: the SMTP peer address it came from (default: the local MTA's pipe).")
@click.pass_context
def parse_command(ctx: click.Context, files: tuple[Path, ...], as_json: bool, trace: bool, peer: str | None) -> None:
    """Show how mailgate understands each message (no daemon, no store)."""
    from mailgate.cli import parse as parse_cli
    from mailgate.mail.parse import parse

    for path in files:
        raw = path.read_bytes()
        parsed = parse(raw)
        details = {**parse_cli.trace(raw), "identity": _identity_trace(ctx, parsed, peer)} if trace else {}
        if as_json:
            data = parse_cli.parsed_to_json(parsed)
            data["file"] = str(path)
            if trace:
                data["trace"] = details
            emit_json(data)
        else:
            click.echo(f"== {path}")
            click.echo(parse_cli.format_text(parsed))
            if trace:
                click.echo(json.dumps(details, indent=2, ensure_ascii=False, default=str))


def _identity_trace(ctx: click.Context, parsed: Any, peer: str | None) -> dict[str, object]:
    """Whether the mail would be an agent's, and which Authentication-Results count (needs the config)."""
    from mailgate import config as config_mod
    from mailgate.mail import identity
    from mailgate.models import Envelope

    try:
        config = config_mod.load((ctx.obj or {})["config_path"])
        secret = config.secret_bytes()
    except (config_mod.ConfigError, OSError, KeyError, TypeError, ValueError) as exc:
        return {"error": f"no config to judge the sender by: {exc}"}
    envelope = Envelope("", (), Source.SMTP if peer else Source.PIPE, peer=peer)
    return identity.explain(config, parsed, envelope, secret)


@main.group()
def tickets() -> None:
    """Tickets: see them and act on them (the same operations as the mail commands)."""


def _read(ctx: click.Context, reader: Any) -> Any:
    config = load_config(ctx)

    async def go() -> Any:
        async with store_for(config) as store:
            async with store.read() as tx:
                return await reader(tx)

    try:
        return asyncio.run(go())
    except StoreUnavailable as exc:
        click.echo(f"store unavailable: {exc}", err=True)
        ctx.exit(pipe.EX_TEMPFAIL)


@tickets.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=50, show_default=True, type=LIMIT)
@click.option("--status", default=None, help="Only tickets in this status.")
@click.option("--quarantined", is_flag=True, help="Show the quarantined tickets (hidden otherwise).")
@click.pass_context
def tickets_list(ctx: click.Context, as_json: bool, limit: int, status: str | None, quarantined: bool) -> None:
    """Tickets, newest activity first."""
    from mailgate.ops import ticket_view as ops

    rows = _read(ctx, lambda tx: ops.list_tickets(tx, limit=limit, status=status, quarantined=quarantined))
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
    from mailgate.cli.events import event_lines
    from mailgate.ops import ticket_view as ops

    ticket = _read(ctx, lambda tx: ops.show_ticket(tx, number))
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
        click.echo(f"\n--- {m['direction']} {m['date'] or m['received_at']} from {sender} [{m['kind']}, {m['thread_detail']}]")
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
    """Why the ticket is in its queue, at its priority (issue 5)."""
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


@main.group("rules")
def rules_group() -> None:
    """Routing rules: see what they decide for a message."""


@rules_group.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--recipient", "recipients", multiple=True, help="Envelope recipient (repeatable; default: To/Cc).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_test(ctx: click.Context, file: Path, recipients: tuple[str, ...], as_json: bool) -> None:
    """Show each rule, matched or not and why, and the ticket fields FILE would get. No store is touched."""
    from mailgate import rules
    from mailgate.mail.parse import parse
    from mailgate.rules import report as rules_cli

    config = load_config(ctx)
    ruleset = rules.compile_rules(config)
    data = rules_cli.explain(ruleset, rules.route(ruleset, parse(file.read_bytes()), recipients))
    if as_json:
        emit_json(data)
    else:
        click.echo(rules_cli.format_text(data))


@main.group("spool")
def spool_group() -> None:
    """Inspect and requeue the inbound spool."""


@spool_group.command("status")
@click.pass_context
def spool_status(ctx: click.Context) -> None:
    """How many spooled messages are in each state."""
    from mailgate import spool

    config = load_config(ctx)

    async def go() -> dict[str, int]:
        async with store_for(config) as store:
            return await spool.counts(store)

    emit_json(asyncio.run(go()))


@spool_group.command("retry")
@click.argument("ids", nargs=-1, type=ROW_ID)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def spool_retry(ctx: click.Context, ids: tuple[int, ...], as_json: bool) -> None:
    """Put dead spool rows (all, or the given ids) back to be processed; their error is kept as last_error."""
    from mailgate import spool

    config = load_config(ctx)

    async def go() -> int:
        async with store_for(config) as store:
            return await spool.requeue(store, list(ids) or None)

    count = asyncio.run(go())
    log.info("spool.requeued count=%s ids=%s", count, ",".join(map(str, ids)) or "all-dead")
    if as_json:
        emit_json({"ok": True, "requeued": count})
    else:
        click.echo(f"requeued {count}")


from mailgate.cli import spool as cli_spool  # noqa: E402 - list and show, next to the commands above

cli_spool.attach(spool_group)


@main.group("imap")
def imap_group() -> None:
    """IMAP accounts mailgate fetches from."""


@imap_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def imap_status(ctx: click.Context, as_json: bool) -> None:
    """Each account's state, last error, folder checkpoints and mail left on the server."""
    from mailgate.sources import imap_state

    config = load_config(ctx)
    accounts = _read(ctx, lambda tx: imap_state.status(tx, config))
    if as_json:
        emit_json(accounts)
        return
    if not accounts:
        click.echo("no [[imap]] accounts configured")
    for a in accounts:
        click.echo(f"{a['account']}: {a['state']}  ({a['username']} at {a['server']}, last ok {a['last_ok_at'] or '-'})")
        if a["last_error"]:
            retry = f", next try {a['next_try_at']}" if a["next_try_at"] else ""
            click.echo(f"  last error {a['last_error_at']}: {a['last_error']}{retry}")
        for f in a["folders"]:
            if f["uidvalidity"] is None:
                click.echo(f"  {f['folder']}: not read yet")
            else:
                click.echo(
                    f"  {f['folder']}: uidvalidity {f['uidvalidity']}, last uid {f['last_uid']},"
                    f" {f['stored']} stored"
                )
        for s in a["left_on_server"]:
            click.echo(f"  left on server: {s['folder']} uid {s['uid']} ({s['size']} bytes): {s['reason']}")


@spool_group.command("replay")
@click.option("--into", "into", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A new database file to build (must not exist).")
@click.pass_context
def spool_replay(ctx: click.Context, into: Path) -> None:
    """Re-run parsing and threading of every spooled message into a new database."""
    from mailgate.pipeline.replay import replay

    config = load_config(ctx)
    try:
        spooled, messages = asyncio.run(replay(config, into.resolve()))
    except FileExistsError as exc:
        click.echo(str(exc), err=True)
        ctx.exit(1)
    click.echo(f"replayed {spooled} spooled messages into {into}: {messages} messages")


# Ticket life and contacts (issue 7): `tickets snooze|wake|sla|links`, `contacts …`.
from mailgate.cli import life as cli_life  # after the groups it extends

cli_life.attach(main, tickets)

# Merge, forward, ask a colleague, split (issue 7): `tickets merge|forward|help|split`.
from mailgate.cli import cases as cli_cases

cli_cases.attach(tickets)

# Agents' operations, new tickets, tasks, following (issue 7): `tickets status|…|new|task|follow|read`.
from mailgate.cli import ops as cli_ops

cli_ops.attach(tickets)

# Outgoing mail for operators: `outbox status|failed|retry`.
from mailgate.cli import outbox as cli_outbox

cli_outbox.attach(main)

# Mail storms (the storm fuse): `storms list|release`.
from mailgate.cli import storms as cli_storms

cli_storms.attach(main)

# Behind Postfix: `postfix-config [--lmtp|--pipe]`.
from mailgate.cli import postfix as cli_postfix

cli_postfix.attach(main)

# The database file: `db status` (schema version, and whether this mailgate can use it).
cli_db.attach(main)

# Monitoring and scripts: `health [--json] [--store]`.
from mailgate.cli import health as cli_health

cli_health.attach(main)

# Data care: `db backup`, `retention run`, `contacts erase` (after cli_life: it extends `contacts`).
from mailgate.cli import data as cli_data

cli_data.attach(main)

# The effective config: `config show [--all] [--json]`.
from mailgate.cli import config as cli_config

cli_config.attach(main)
