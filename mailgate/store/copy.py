"""The SQL of copying one store into another: which tables, in what order, read and written by primary key.

Tables are found in the SOURCE's schema (sqlite_master, PRAGMA table_info / foreign_key_list), so a
table a migration adds is copied without a change here; columns go in by name. Keys are walked in
batches (`(k1, k2) > (?, ?) ORDER BY k1, k2 LIMIT n`, row values that SQLite ≥ 3.15 and PostgreSQL both
run), and both sides must walk them in the same order: SQLite compares TEXT bytewise, PostgreSQL by
the database's locale unless told `COLLATE "C"` (byte order of UTF-8, as SQLite's BINARY).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mailgate.store import Store, Txn

Key = tuple[Any, ...]
Values = tuple[Any, ...]
# Never copied: the target's own migrations write schema_version; SQLite keeps sqlite_* itself
# (sqlite_sequence is carried over by move_sequence); full-text tables are filled by the target's
# triggers on messages (store/search.py), on PostgreSQL as on SQLite.
NOT_COPIED = frozenset({"schema_version"})
# Written by triggers on the target while other tables go in (store/__init__.py's map: message_ids
# by 0021 on messages and outbox, agent_open by 0014 on tickets): synced after everything else, so
# they end as the source has them rather than counted twice.
DERIVED = ("message_ids", "agent_open")
# The tables SQLite keeps behind a full-text index (FTS5: sqlite.org/fts5.html; FTS3/4's too).
_SHADOW = ("data", "idx", "docsize", "config", "content", "segments", "segdir", "stat")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Reference:
    """A foreign key: `column` of this table names `table`.`to`."""

    column: str
    table: str
    to: str


@dataclass(frozen=True, slots=True)
class Table:
    """One copied table: its columns in the source's order, its primary key, and its foreign keys."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    text_key: tuple[bool, ...]  # per key column: compared as text (a collation matters)
    nullable: frozenset[str]
    references: tuple[Reference, ...] = ()
    # Foreign-key columns written only once every table is in: a self-reference (a ticket merged
    # into a later one) or the side of a cycle (spool.message_row ↔ messages.spool_id) the order cut.
    deferred: tuple[str, ...] = ()
    derived: bool = False
    blobs: tuple[str, ...] = ()  # BLOB columns (a whole mail each): batches are cut by their bytes too

    def key_of(self, row: Values, columns: Sequence[str]) -> Key:
        return tuple(row[columns.index(k)] for k in self.key)


def _name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"not a plain SQL name: {name!r}")
    return f'"{name}"'


def target_store(url: str, password_file: Path | None = None, password_env: str | None = None) -> Store:
    """The store a URL names (not yet open). sqlite:///relative/file or sqlite:////absolute/file, as
    SQLAlchemy spells them, or postgresql://user@host[:port]/database with the password from a file or
    the environment (as in [storage]: a password in a command line shows in `ps`)."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise ValueError("sqlite:/// needs a file: sqlite:////var/lib/mailgate/other.sqlite3")
        return Store(Path(path))
    if url.startswith(("postgresql://", "postgres://")):
        from mailgate.store.pg import PgStore
        from mailgate.store.url import Location

        if urlsplit(url).password is not None:
            raise ValueError(f"{redact(url)}: no password in the URL (it shows in `ps` and shell history);"
                             " use --password-file or --password-env")
        return PgStore(Location.of(url, password_file, password_env))
    raise ValueError(f"{redact(url)}: give sqlite:///PATH or postgresql://USER@HOST/DATABASE")


def redact(url: str) -> str:
    """The URL without its password, fit for output and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


async def tables(tx: Txn) -> list[Table]:
    """Every copied table of the source, parents before the tables that name them, derived ones last."""
    if tx.engine != "sqlite":
        raise ValueError(f"copying from a {tx.engine} store is not supported: the source must be SQLite")
    found = await tx.all("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
    return _ordered([await _describe(tx, name) for name in _copied(found)])


def _copied(found: Sequence[tuple[Any, ...] | sqlite3.Row]) -> list[str]:
    """The copied tables among sqlite_master's (name, sql), in their order."""
    virtual = [str(r[0]) for r in found if str(r[1] or "").upper().startswith("CREATE VIRTUAL TABLE")]
    index = set(virtual) | {f"{v}_{part}" for v in virtual for part in _SHADOW}
    return [str(r[0]) for r in found
            if not str(r[0]).startswith("sqlite_") and str(r[0]) not in NOT_COPIED and str(r[0]) not in index]


async def _describe(tx: Txn, name: str) -> Table:
    info = await tx.all(f"PRAGMA table_info({_name(name)})")
    columns = tuple(str(r["name"]) for r in info)
    keyed = sorted((int(r["pk"]), str(r["name"]), str(r["type"]).upper()) for r in info if int(r["pk"]) > 0)
    if not keyed:
        raise ValueError(f"table {name} has no primary key: its rows cannot be matched")
    nullable = frozenset(str(r["name"]) for r in info if not int(r["notnull"]) and not int(r["pk"]))
    fks = await tx.all(f"PRAGMA foreign_key_list({_name(name)})")
    references = tuple(Reference(str(r["from"]), str(r["table"]), str(r["to"] or "id")) for r in fks)
    blobs = tuple(str(r["name"]) for r in info if str(r["type"]).upper() == "BLOB")
    return Table(name, columns, tuple(k for _, k, _ in keyed), tuple("INT" not in t for _, _, t in keyed),
                 nullable, references, derived=name in DERIVED, blobs=blobs)


def _ordered(described: list[Table]) -> list[Table]:
    """Parents first; where a cycle leaves no table free, the earliest created one waits for its references."""
    pending = {t.name: t for t in described if not t.derived}
    done: list[Table] = []
    while pending:
        placed = {t.name for t in done}
        free = [t for t in pending.values()
                if all(r.table in placed or r.table == t.name or r.table not in pending for r in t.references)]
        table = free[0] if free else next(iter(pending.values()))
        later = tuple(r.column for r in table.references if r.table == table.name or r.table in pending)
        if not_null := [c for c in later if c not in table.nullable]:
            raise ValueError(f"{table.name}.{not_null[0]} names a row copied later and may not be NULL")
        done.append(replace(table, deferred=later) if later else table)
        del pending[table.name]
    return done + [t for t in described if t.derived]


def _keys(tx: Txn, table: Table) -> str:
    text = tx.engine == "postgresql"
    return ", ".join(_name(k) + (' COLLATE "C"' if text and t else "") for k, t in zip(table.key, table.text_key, strict=True))


async def rows(tx: Txn, table: Table, columns: Sequence[str], after: Key | None, *,
               upto: Key | None = None, limit: int | None = None) -> list[Values]:
    """Rows of `table` (these columns) with keys after `after` and up to `upto`, in key order."""
    keys = _keys(tx, table)
    marks = ", ".join("?" * len(table.key))
    where, params = [], []
    if after is not None:
        where.append(f"({keys}) > ({marks})")
        params += list(after)
    if upto is not None:
        where.append(f"({keys}) <= ({marks})")
        params += list(upto)
    sql = (f"SELECT {', '.join(map(_name, columns))} FROM {_name(table.name)}"
           + (f" WHERE {' AND '.join(where)}" if where else "") + f" ORDER BY {keys}")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [tuple(r) for r in await tx.all(sql, params)]


async def batch(tx: Txn, table: Table, columns: Sequence[str], after: Key | None, limit: int,
                budget: int) -> tuple[list[Values], bool]:
    """The next rows after `after`: at most `limit`, and, where the table holds whole mails, about
    `budget` bytes of them (at least one row); and whether they are the last.

    500 spooled mails of 25 MB each (smtp.max_message_size) would be 12 GB in memory at once; the
    sizes come first, from length(), which SQLite answers from a BLOB's header without reading it.
    """
    if set(table.blobs) & set(columns):
        keys = _keys(tx, table)
        size = " + ".join(f"COALESCE(length({_name(b)}), 0)" for b in table.blobs)
        where, params = ("", []) if after is None else (f" WHERE ({keys}) > ({', '.join('?' * len(after))})", list(after))
        sized = await tx.all(f"SELECT {', '.join(map(_name, table.key))}, {size} FROM {_name(table.name)}{where}"
                             f" ORDER BY {keys} LIMIT ?", [*params, limit])
        total, take = 0, 0
        for row in sized:
            total += int(row[len(table.key)] or 0)
            if take and total > budget:
                break
            take += 1
        if take < len(sized):
            upto = tuple(sized[take - 1])[:len(table.key)]
            return await rows(tx, table, columns, after, upto=upto), False
    found = await rows(tx, table, columns, after, limit=limit)
    return found, len(found) < limit


async def insert(tx: Txn, table: Table, columns: Sequence[str], batch: Sequence[Values]) -> None:
    """New rows with the source's values in `columns` (a deferred reference stays NULL); a row already there is kept."""
    names = ", ".join(map(_name, columns))
    marks = ", ".join("?" * len(columns))
    await tx.executemany(f"INSERT INTO {_name(table.name)} ({names}) VALUES ({marks})"
                         f" ON CONFLICT ({', '.join(map(_name, table.key))}) DO NOTHING", batch)


async def update(tx: Txn, table: Table, columns: Sequence[str], batch: Sequence[Values]) -> None:
    """Rows brought up to the source's values in `columns` (besides the key), matched by key."""
    sets = [c for c in columns if c not in table.key]
    if not sets or not batch:
        return
    where = " AND ".join(f"{_name(k)} = ?" for k in table.key)
    sql = f"UPDATE {_name(table.name)} SET {', '.join(f'{_name(c)} = ?' for c in sets)} WHERE {where}"
    await tx.executemany(sql, [tuple(row[columns.index(c)] for c in sets) + table.key_of(row, columns) for row in batch])


async def delete(tx: Txn, table: Table, keys: Sequence[Key]) -> None:
    where = " AND ".join(f"{_name(k)} = ?" for k in table.key)
    await tx.executemany(f"DELETE FROM {_name(table.name)} WHERE {where}", keys)


async def release(tx: Txn, table: Table, column: str, values: Sequence[Any]) -> None:
    """NULL where `column` names one of these rows about to go (set again later from the source)."""
    for start in range(0, len(values), 500):
        chunk = list(values[start:start + 500])
        await tx.execute(f"UPDATE {_name(table.name)} SET {_name(column)} = NULL"
                         f" WHERE {_name(column)} IN ({', '.join('?' * len(chunk))})", chunk)


async def present(tx: Txn, table: str, column: str, values: Sequence[Any]) -> set[Any]:
    """Which of these values `table`.`column` holds."""
    found: set[Any] = set()
    for start in range(0, len(values), 500):
        chunk = list(values[start:start + 500])
        rows = await tx.all(f"SELECT {_name(column)} FROM {_name(table)}"
                            f" WHERE {_name(column)} IN ({', '.join('?' * len(chunk))})", chunk)
        found |= {r[0] for r in rows}
    return found


async def count(tx: Txn, table: Table) -> int:
    return int(await tx.value(f"SELECT COUNT(*) FROM {_name(table.name)}") or 0)


def counts_at(path: Path) -> dict[str, int]:
    """Rows per copied table of a SQLite file, opened read-only: nothing created or migrated."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        found = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY rowid").fetchall()
        return {name: int(conn.execute(f"SELECT COUNT(*) FROM {_name(name)}").fetchone()[0]) for name in _copied(found)}
    finally:
        conn.close()


async def sequences(tx: Txn) -> dict[str, int]:
    """Where each AUTOINCREMENT counter stands: above the largest id when the newest rows were deleted."""
    if tx.engine != "sqlite" or await tx.one("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'") is None:
        return {}
    return {str(r[0]): int(r[1]) for r in await tx.all("SELECT name, seq FROM sqlite_sequence")}


async def move_sequence(tx: Txn, table: Table, at_least: int) -> None:
    """The target's next id of `table` after `at_least` and its own largest id: ids are never reused
    (outbox ids are VERP tokens; timers load ids above the last one seen)."""
    if table.key != ("id",) or table.text_key[0]:
        return
    largest = max(at_least, int(await tx.value(f"SELECT COALESCE(MAX(id), 0) FROM {_name(table.name)}") or 0))
    if tx.engine == "postgresql":
        if largest > 0:
            await tx.value("SELECT setval(pg_get_serial_sequence(?, 'id'), ?)", (table.name, largest))
        return
    if at_least <= 0:
        return  # SQLite keeps a plain INTEGER PRIMARY KEY past MAX(id) itself; AUTOINCREMENT ones are named
    if await tx.rowcount("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (largest, table.name)) == 0:
        await tx.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table.name, largest))


def encode(row: Values) -> bytes:
    """A row's values as bytes that are equal exactly when the values are (types told apart, lengths given)."""
    out = bytearray()
    for value in row:
        if value is None:
            out += b"N"
        elif isinstance(value, bool | int):
            out += b"I%d;" % int(value)
        elif isinstance(value, float):
            out += b"F" + repr(value).encode() + b";"
        elif isinstance(value, str):
            # PostgreSQL's TEXT cannot hold NUL, which mail from anyone may carry: its store writes
            # U+FFFD instead, so a row copied there is the same row, not a difference to fix each run.
            data = value.replace("\x00", "\ufffd").encode("utf-8", "surrogatepass")
            out += b"S%d:" % len(data) + data
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            out += b"B%d:" % len(data) + data
        else:
            raise TypeError(f"no canonical form for {type(value).__name__}")
    return bytes(out + b"\n")


class Checksum:
    """sha256 over rows' canonical forms in the order they come, and how many there were."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.rows = 0

    def add(self, batch: Sequence[Values]) -> Checksum:
        for row in batch:
            self._hash.update(encode(row))
        self.rows += len(batch)
        return self

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


async def landmarks(tx: Txn, ids: Sequence[int] | None = None) -> dict[int, Values]:
    """Tickets as id: (number, created_at), the newest ones or these: a copy has the same as its source.

    The newest, because retention and erasure take the oldest away from the source first."""
    if ids is None:
        found = await tx.all("SELECT id, number, created_at FROM tickets ORDER BY id DESC LIMIT 20")
    elif ids:
        found = await tx.all(f"SELECT id, number, created_at FROM tickets WHERE id IN ({', '.join('?' * len(ids))})",
                             list(ids))
    else:
        found = []
    return {int(r[0]): (r[1], r[2]) for r in found}
