"""The schema's versions: the migrations shipped in store/sql/, and the version a database file is at."""

from __future__ import annotations

import itertools
import sqlite3
from importlib import resources
from pathlib import Path


def newest_schema(engine: str = "sqlite") -> int:
    """The schema version this mailgate's migrations end at (numbered per engine)."""
    found = migrations(engine)
    return found[-1][0] if found else 0


def schema_of(path: Path) -> int | None:
    """The database's schema version, read-only (nothing created or migrated); None if it has none yet."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone() is None:
            return None
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else None
    finally:
        conn.close()


def migrations(engine: str = "sqlite") -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with this package for an engine, in order.

    Numbered per engine: PostgreSQL's begin where SQLite's stood when it arrived (its 0001 is SQLite's
    0001-0021 in one), so each engine's files stay the plain SQL that engine runs.
    """
    folder = resources.files("mailgate.store") / ("sql_pg" if engine == "postgresql" else "sql")
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    for (a, first, _), (b, second, _) in itertools.pairwise(found):
        if a == b:  # one of the two would silently never run
            raise RuntimeError(f"two migrations share number {a:04d}: {first} and {second}")
    return found


def statements(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3.complete_statement knows where one ends)."""
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines(keepends=True):
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        current.append(line)
        candidate = "".join(current)
        if sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            current = []
    if "".join(current).strip():
        statements.append("".join(current).strip())
    return statements
