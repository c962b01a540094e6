"""The store's docstring is its table map: every table the migrations create and every module that
writes one is named there, with the SQLite-only constructs a second engine has to map."""

from __future__ import annotations

import re
from pathlib import Path

import mailgate.store as store

STORE = Path(store.__file__).parent
DOC = store.__doc__ or ""


def _tables() -> set[str]:
    created: set[str] = set()
    for sql in sorted((STORE / "sql").glob("*.sql")):
        text = sql.read_text(encoding="utf-8")
        created |= set(re.findall(r"CREATE (?:VIRTUAL )?TABLE (\w+)", text))
        # A table rebuilt under a new name and renamed back is the old one.
        created -= set(re.findall(r"ALTER TABLE (\w+) RENAME TO", text))
    return created


def test_every_table_is_on_the_map() -> None:
    tables = _tables()
    assert {"search_text", "agent_open", "report_sent", "messages"} <= tables
    assert [t for t in sorted(tables) if not re.search(rf"\b{t}\b", DOC)] == []


def test_every_module_that_writes_is_on_the_map() -> None:
    writes = re.compile(r"\b(?:INSERT (?:OR \w+ )?INTO|UPDATE (?:OR \w+ )?\w+ SET|DELETE FROM)\b")
    writers = sorted(p.stem for p in STORE.glob("*.py") if p.stem != "__init__" and writes.search(p.read_text("utf-8")))
    assert {"search", "report", "message_marks"} <= set(writers)
    assert [m for m in writers if not re.search(rf"^\s+{m}\s", DOC, re.M) and f" {m} " not in DOC] == []


def test_triggers_and_fts5_are_listed_for_a_second_engine() -> None:
    triggers = {t for sql in (STORE / "sql").glob("*.sql")
                for t in re.findall(r"CREATE TRIGGER (\w+)", sql.read_text(encoding="utf-8"))}
    assert triggers
    for name in triggers:  # each named by its table and the suffix after it ("agent_open … _leave")
        table, _, suffix = name.rpartition("_")
        assert table in DOC and f"_{suffix}" in DOC, name
    for construct in ("FTS5", "MATCH", "bm25", "snippet", "CREATE TRIGGER", "json_extract"):
        assert construct in DOC, construct
