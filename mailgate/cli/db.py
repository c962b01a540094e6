"""`mailgate db status`: the database's schema version against the one this mailgate ships."""

from __future__ import annotations

from typing import Any

import click

from mailgate.cli.support import emit_json, load_config
from mailgate.store import DatabaseError, newest_schema, schema_of

EX_CONFIG = 78  # sysexits: as `run` on a database a newer mailgate wrote; retrying will not help


@click.group("db")
def db_group() -> None:
    """The database file: schema version and whether this mailgate can use it; online backups."""


@db_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def db_status(ctx: click.Context, as_json: bool) -> None:
    """Show the schema version and whether it matches; exit 78 if a newer mailgate wrote the database.

    Read-only: it neither creates nor migrates the file, so it is safe before an upgrade or a rollback.
    """
    config = load_config(ctx)
    path = config.database_path
    known = newest_schema()
    info: dict[str, Any] = {"database": str(path), "schema": None, "known": known}
    if not path.exists():
        info["state"] = "missing"
        text = f"{path}: no database yet (`mailgate run` creates it at schema {known})"
    else:
        try:
            found = schema_of(path)
        except DatabaseError as exc:
            info.update(state="unreadable", error=str(exc))
            _show(as_json, info, f"{path}: cannot read it: {exc}")
            ctx.exit(1)
        info["schema"] = found
        if found is None or found < known:
            info["state"] = "older"
            text = (f"{path}: schema {found or 0}, this mailgate knows {known}:"
                    f" migrated at the next start ({known - (found or 0)} pending)")
        elif found == known:
            info["state"] = "current"
            text = f"{path}: schema {found}, matches this mailgate"
        else:
            info["state"] = "newer"
            text = (f"{path}: schema {found}, this mailgate knows {known}: this database was written by a newer"
                    " mailgate; upgrade mailgate or restore a backup")
    _show(as_json, info, text)
    if info["state"] == "newer":
        ctx.exit(EX_CONFIG)


def _show(as_json: bool, info: dict[str, Any], text: str) -> None:
    if as_json:
        emit_json({"ok": info["state"] in ("current", "older", "missing"), **info})
    else:
        click.echo(text)


def attach(main: click.Group) -> None:
    main.add_command(db_group)
