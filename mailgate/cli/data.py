"""Data care for operators: `mailgate db backup`, `mailgate retention run`, `mailgate contacts erase`."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from mailgate.cli.support import CONTACT, EX_TEMPFAIL, load_config, out, run_txn
from mailgate.config import Config
from mailgate.ops import erase as erase_ops
from mailgate.ops import retention
from mailgate.store import DatabaseError, StoreUnavailable, Txn, store_for
from mailgate.store import backup as backups
from mailgate.store.blobs import BlobStore, unlink_unreferenced

log = logging.getLogger("mailgate.data")


def copy_blobs(database: Path, source: BlobStore, target: BlobStore) -> dict[str, int]:
    """Copy the files the backed-up database names, content-addressed: one already there is not copied again."""
    hashes = backups.blob_hashes(database)
    counts = {"copied": 0, "present": 0, "missing": 0}
    for sha256 in hashes:
        try:
            there = target.path(sha256)
            if there.exists():
                counts["present"] += 1
                continue
            there.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=there.parent, prefix=".tmp-")
            os.close(fd)
            try:
                shutil.copyfile(source.path(sha256), tmp)
                os.replace(tmp, there)
            finally:
                Path(tmp).unlink(missing_ok=True)
            counts["copied"] += 1
        except (OSError, ValueError) as exc:  # removed by retention meanwhile, or unreadable: listed, not fatal
            log.warning("backup.blob_missing sha256=%s error=%s", sha256, exc)
            counts["missing"] += 1
    return counts


# -- mailgate db ---------------------------------------------------------------------------------------


@click.group("db")
def db_group() -> None:
    """The database file: consistent backups while the daemon runs."""


@db_group.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--with-attachments", "attachments", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also copy attachment files into this folder (only those not there yet).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def db_backup(ctx: click.Context, file: Path, attachments: Path | None, force: bool, as_json: bool) -> None:
    """Copy the database to FILE while the daemon keeps running (SQLite online backup, checked; a PostgreSQL database is backed up with pg_dump)."""
    config = load_config(ctx)
    if config.storage.engine == "postgresql":
        # A PostgreSQL installation is backed up the way its operators already do it, with the
        # server's own tools; a file copy from here would be neither consistent nor complete.
        raise click.ClickException("the database is PostgreSQL: back it up with pg_dump or pg_basebackup"
                                   " (or the provider's snapshots); attachments are files: copy storage.attachments")
    source = config.database_path
    if not source.exists():
        raise click.ClickException(f"no database at {source}")
    file = file.resolve()
    if file.exists() and not force:
        raise click.ClickException(f"{file} exists; add --force to replace it")
    if not file.parent.is_dir():
        raise click.ClickException(f"no folder {file.parent}")
    if file == source.resolve():
        raise click.ClickException("FILE is the live database itself")
    started = time.monotonic()
    try:
        result = backups.backup(source, file, busy_timeout=config.storage.busy_timeout)
    except backups.BackupFailed as exc:
        raise click.ClickException(str(exc)) from None
    except DatabaseError as exc:
        click.echo(f"store unavailable: {exc}", err=True)
        ctx.exit(EX_TEMPFAIL)
    data: dict[str, Any] = {
        "file": str(result.path), "bytes": result.bytes, "pages": result.pages, "integrity": result.integrity,
        "tickets": result.tickets, "messages": result.messages, "snapshot": result.snapshot,
        "seconds": round(time.monotonic() - started, 3),
    }
    text = (f"backup {result.path}: {result.bytes} bytes, {result.tickets} tickets, {result.messages} messages,"
            f" integrity {result.integrity}")
    if attachments is not None:
        attachments.mkdir(mode=0o700, parents=True, exist_ok=True)
        files = copy_blobs(result.path, BlobStore(config.attachments_path), BlobStore(attachments))
        data["attachments"] = files
        text += f"; attachments copied {files['copied']}, present {files['present']}, missing {files['missing']}"
    log.info("db.backup file=%s bytes=%s integrity=%s", result.path, result.bytes, result.integrity)
    out(as_json, data, text)


# -- mailgate retention --------------------------------------------------------------------------------


@click.group("retention")
def retention_group() -> None:
    """How long mail is kept ([retention]): the daemon applies it daily; `run` applies it now."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def retention_run(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Delete what [retention] says is too old, in small batches (safe while the daemon runs)."""
    config = load_config(ctx)
    if not retention.enabled(config.retention):
        out(as_json, {"enabled": False, "dry_run": dry_run, **retention.Purged().as_dict()},
            "retention: no limit set in [retention]; nothing to do")
        return

    async def go() -> retention.Purged:
        async with store_for(config) as store:
            return await retention.run(store, config, dry_run=dry_run)

    try:
        purged = asyncio.run(go())
    except StoreUnavailable as exc:
        click.echo(f"store unavailable: {exc}", err=True)
        ctx.exit(EX_TEMPFAIL)
    counts = purged.as_dict()
    verb = "would delete" if dry_run else "deleted"
    out(as_json, {"enabled": True, "dry_run": dry_run, **counts},
        f"retention {verb}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


# -- mailgate contacts erase ---------------------------------------------------------------------------


@click.command("erase")
@click.argument("contact", type=CONTACT)
@click.option("--no-vacuum", is_flag=True,
              help="Skip rewriting the database file (run `sqlite3 FILE VACUUM` later; old free pages may keep traces).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def contacts_erase(ctx: click.Context, contact: str, no_vacuum: bool, as_json: bool) -> None:
    """Erase a contact (by id or address): their mail, files, spool bytes, names and addresses. Cannot be undone."""
    config = load_config(ctx)

    async def work(config: Config, tx: Txn) -> erase_ops.Erased:
        return await erase_ops.erase(tx, contact)

    result = run_txn(ctx, as_json, work, config=config)
    files = unlink_unreferenced(BlobStore(config.attachments_path), result.hashes)
    # SQLite: the file is rewritten so freed pages keep no traces. PostgreSQL reclaims the space with
    # its own (auto)vacuum; VACUUM FULL is the operator's call on a shared server.
    checkpoint = backups.compact(config.database_path, not no_vacuum) if config.storage.engine == "sqlite" else "n/a"
    data = {**result.as_dict(), "files": files, "checkpoint": checkpoint}
    log.info("contacts.erased contact=%s tickets=%s messages=%s files=%s checkpoint=%s",
             result.contact, result.tickets, result.messages, files, checkpoint)
    out(as_json, data, f"contact {result.contact} erased: {result.tickets} tickets, {result.messages} messages,"
                       f" {files} files, {result.outbox} outgoing mails; now {result.placeholder} (wal {checkpoint})")


def attach(main: click.Group) -> None:
    # `mailgate db` may already exist (other database commands): add to it rather than replace it.
    existing = main.commands.get("db")
    if isinstance(existing, click.Group):
        existing.add_command(db_backup)
    else:
        main.add_command(db_group)
    main.add_command(retention_group)
    contacts = main.commands.get("contacts")
    if isinstance(contacts, click.Group):
        contacts.add_command(contacts_erase)
