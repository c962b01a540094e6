"""`mailgate db status` and `db copy`: the database's engine, schema and rows; moving it to another database."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mailgate.cli.support import EX_TEMPFAIL, emit_json, load_config
from mailgate.config import Config
from mailgate.errors import Refused
from mailgate.ops import copy as copying
from mailgate.store import (
    DatabaseError,
    SchemaTooNew,
    Store,
    StoreUnavailable,
    newest_schema,
    schema_of,
    store_for,
)
from mailgate.store import copy as tables_sql

EX_CONFIG = 78  # sysexits: as `run` on a database a newer mailgate wrote; retrying will not help


@click.group("db")
def db_group() -> None:
    """The database: engine, schema version and rows; copying it to another database; online backups."""


@db_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def db_status(ctx: click.Context, as_json: bool) -> None:
    """Show the engine, schema version and rows per table; exit 78 if a newer mailgate wrote the database.

    Read-only: it neither creates nor migrates the database (file or PostgreSQL), so it is safe before an upgrade or a rollback.
    """
    config = load_config(ctx)
    storage = config.storage
    known = newest_schema(storage.engine)
    found: int | None = None
    if storage.url is not None:
        from mailgate.store.pg_peek import peek
        from mailgate.store.url import Location

        where = Location(storage.url).display()
        info: dict[str, Any] = {"database": where, "engine": "postgresql", "url": where,
                                "schema": None, "known": known, "tables": {}}
        try:
            location = Location.of(storage.url, storage.password_file, storage.password_env)
            found, info["tables"] = asyncio.run(peek(location, storage.connect_timeout))
        except (OSError, ValueError, StoreUnavailable, DatabaseError) as exc:
            info.update(state="unreadable", error=str(exc))
            _show(as_json, info, f"{where}: cannot read it: {exc}")
            ctx.exit(1)
        exists = found is not None
    else:
        path = config.database_path
        where = str(path)
        info = {"database": str(path), "engine": "sqlite", "url": f"sqlite:///{path.resolve()}",
                "schema": None, "known": known, "tables": {}}
        exists = path.exists()
        if exists:
            try:
                found = schema_of(path)
                info["tables"] = tables_sql.counts_at(path)
            except DatabaseError as exc:
                info.update(state="unreadable", error=str(exc))
                _show(as_json, info, f"{path}: cannot read it: {exc}")
                ctx.exit(1)
    if not exists:
        info["state"] = "missing"
        text = f"{where}: no database yet (`mailgate run` creates it at schema {known})"
    else:
        info["schema"] = found
        if found is None or found < known:
            info["state"] = "older"
            text = (f"{where}: schema {found or 0}, this mailgate knows {known}:"
                    f" migrated at the next start ({known - (found or 0)} pending)")
        elif found == known:
            info["state"] = "current"
            text = f"{where}: schema {found}, matches this mailgate"
        else:
            info["state"] = "newer"
            text = (f"{where}: schema {found}, this mailgate knows {known}: this database was written by a newer"
                    " mailgate; upgrade mailgate or restore a backup")
    text = f"engine {info['engine']}, {info['url']}\n{text}"
    if info["tables"]:
        width = max(map(len, info["tables"]))
        text += "\n" + "\n".join(f"  {name:<{width}}  {rows:>10}" for name, rows in info["tables"].items())
    _show(as_json, info, text)
    if info["state"] == "newer":
        ctx.exit(EX_CONFIG)


def _show(as_json: bool, info: dict[str, Any], text: str) -> None:
    if as_json:
        emit_json({"ok": info["state"] in ("current", "older", "missing"), **info})
    else:
        click.echo(text)


class _Bars:
    """click progress bars on stderr, one per table and step."""

    def __init__(self) -> None:
        self._open = contextlib.ExitStack()
        self._update: Callable[[int], None] | None = None

    def begin(self, step: str, table: str, total: int) -> None:
        bar = self._open.enter_context(
            click.progressbar(length=total, label=f"{step} {table}", file=sys.stderr))
        self._update = bar.update

    def advance(self, rows: int) -> None:
        if self._update is not None:
            self._update(rows)

    def end(self) -> None:
        self._update = None
        self._open.close()


@db_group.command("copy")
@click.option("--to", "url", required=True,
              help="The target database: sqlite:////path/other.sqlite3 or postgresql://user@host/db (password from"
                   " --password-file, --password-env or ~/.pgpass; never in the URL).")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A file holding the target PostgreSQL's password.")
@click.option("--password-env", default=None, help="An environment variable holding the target's password.")
@click.option("--batch", default=copying.BATCH, show_default=True, type=click.IntRange(1, 100_000),
              help="Rows per read and write transaction.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="One summary line of JSON.")
@click.pass_context
def db_copy(ctx: click.Context, url: str, password_file: Path | None, password_env: str | None, batch: int, quiet: bool,
            as_json: bool) -> None:
    """Copy every table into the database at --to; run again to bring it up to date, then check both.

    The daemon may keep running: each run copies what is new or changed since the last one. For the
    switch-over, stop the daemons, run once more, and start them on the target. Attachment files are
    not in the database: the target's daemons must use the same [storage] attachments folder.
    """
    config = load_config(ctx)
    if config.storage.engine != "sqlite":
        # Between PostgreSQL servers, the server's own tools move a database whole and consistent.
        raise click.ClickException("db copy moves a SQLite installation; this config's database is PostgreSQL:"
                                   " use pg_dump | pg_restore (or the provider's tools) to move it")
    if not config.database_path.exists():
        raise click.ClickException(f"no database at {config.database_path}")
    try:
        target = tables_sql.target_store(url, password_file, password_env)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc), ctx) from None
    if target.path.resolve() == config.database_path.resolve():
        raise click.UsageError("--to names the database this config uses: nothing to copy", ctx)
    progress = None if quiet or as_json else _Bars()
    try:
        run = asyncio.run(_copy(config, target, batch, progress))
    except (Refused, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except SchemaTooNew as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(EX_CONFIG)
    except (StoreUnavailable, DatabaseError) as exc:
        click.echo(f"error: {tables_sql.redact(url)}: {exc}; run again to go on where it stopped", err=True)
        ctx.exit(EX_TEMPFAIL)
    _report(run, tables_sql.redact(url), config, as_json)
    if run.mismatched:
        ctx.exit(EX_TEMPFAIL if run.written_meanwhile else 1)


async def _copy(config: Config, target: Store, batch: int, progress: copying.Progress | None) -> copying.Run:
    async with store_for(config) as source, target:
        return await copying.copy(source, target, batch=batch, progress=progress)


def _report(run: copying.Run, url: str, config: Config, as_json: bool) -> None:
    files = config.attachments_path
    if as_json:
        emit_json({
            "ok": not run.mismatched, "target": url, "changes": run.changes,
            "inserted": sum(t.inserted for t in run.tables), "updated": sum(t.updated for t in run.tables),
            "deleted": sum(t.deleted for t in run.tables), "linked": sum(t.linked for t in run.tables),
            "waiting": sum(t.waiting for t in run.tables),
            "mismatched": run.mismatched,
            "written_meanwhile": run.written_meanwhile, "attachments": str(files),
            "tables": [{"table": t.table, "rows": t.source_rows, "target_rows": t.target_rows,
                        "inserted": t.inserted, "updated": t.updated, "deleted": t.deleted, "linked": t.linked,
                        "waiting": t.waiting,
                        "sha256": t.source_sum, "target_sha256": t.target_sum, "ok": t.matches} for t in run.tables],
        })
        return
    width = max([len("table"), *(len(t.table) for t in run.tables)])
    lines = [f"{'table':<{width}}  {'rows':>8}  {'target':>8}  {'new':>6}  {'changed':>7}  {'gone':>6}  sha256"]
    for t in run.tables:
        same = "ok" if t.matches else f"MISMATCH target {t.target_sum[:16]}"
        lines.append(f"{t.table:<{width}}  {t.source_rows:>8}  {t.target_rows:>8}  {t.inserted:>6}  {t.updated:>7}"
                     f"  {t.deleted:>6}  {t.source_sum[:16]} {same}")
    click.echo("\n".join(lines))
    if run.changes:
        click.echo(f"{url}: {sum(t.inserted for t in run.tables)} rows copied, {sum(t.updated for t in run.tables)}"
                   f" updated, {sum(t.deleted for t in run.tables)} removed,"
                   f" {sum(t.linked for t in run.tables)} references set once their rows were in")
    else:
        click.echo(f"{url}: nothing to copy, the target already equals the source")
    if run.mismatched:
        click.echo(f"MISMATCH in {', '.join(run.mismatched)}", err=True)
        if run.written_meanwhile:
            click.echo(f"the source was written during the copy ({', '.join(run.written_meanwhile)}): run again;"
                       " for the switch-over, stop the daemons and run once more", err=True)
    else:
        click.echo(f"every table matches ({len(run.tables)} tables checked by rows and sha256)")
    click.echo(f"attachment files are not in the database: they stay in {files}; daemons on the target need"
               f' [storage] attachments = "{files}"')


def attach(main: click.Group) -> None:
    main.add_command(db_group)
