"""Mail coming in, for operators and the MTA: `ingest` (pipes and imports), the `spool` group, `imap status`."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from mailgate import config as config_mod
from mailgate import spool
from mailgate.cli import spool as cli_spool
from mailgate.cli.postfix import IngestCommand, held_log
from mailgate.cli.support import ROW_ID, emit_json, load_config, read
from mailgate.config import ConfigError
from mailgate.models import Source
from mailgate.pipeline.process import Processor
from mailgate.pipeline.replay import replay
from mailgate.sources import imap_state, pipe
from mailgate.store import StoreUnavailable, store_for

log = logging.getLogger("mailgate.cli")

@click.command(cls=IngestCommand)
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


@click.group("spool")
def spool_group() -> None:
    """Inspect and requeue the inbound spool."""


@spool_group.command("status")
@click.pass_context
def spool_status(ctx: click.Context) -> None:
    """How many spooled messages are in each state."""
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



@spool_group.command("replay")
@click.option("--into", "into", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A new database file to build (must not exist).")
@click.pass_context
def spool_replay(ctx: click.Context, into: Path) -> None:
    """Re-run parsing and threading of every spooled message into a new database."""
    config = load_config(ctx)
    try:
        spooled, messages = asyncio.run(replay(config, into.resolve()))
    except FileExistsError as exc:
        click.echo(str(exc), err=True)
        ctx.exit(1)
    click.echo(f"replayed {spooled} spooled messages into {into}: {messages} messages")

@click.group("imap")
def imap_group() -> None:
    """IMAP accounts mailgate fetches from."""


@imap_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def imap_status(ctx: click.Context, as_json: bool) -> None:
    """Each account's state, last error, folder checkpoints and mail left on the server."""
    config = load_config(ctx)
    accounts = read(ctx, lambda tx: imap_state.status(tx, config))
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



def attach(main: click.Group) -> None:
    cli_spool.attach(spool_group)
    main.add_command(ingest)
    main.add_command(spool_group)
    main.add_command(imap_group)
