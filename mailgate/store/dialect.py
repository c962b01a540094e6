"""The store's statements as PostgreSQL runs them: placeholders and the few SQLite spellings mapped.

Store modules write one statement for both engines: `?` (or `:name`) placeholders, standard SQL,
RETURNING, ON CONFLICT. What SQLite alone spells differently is turned here, once per distinct
statement (cached), so a module never carries two versions of the same query:

    ?  :name             $1, $2 … in order (a name used twice is one parameter)
    INSERT OR IGNORE     INSERT … ON CONFLICT DO NOTHING
    LIKE                 ILIKE: SQLite's LIKE ignores ASCII case, and search and contacts rely on it
    INSERT (lastrowid)   INSERT … RETURNING id, for tables with an id column (Txn.execute's answer)

instr(), group_concat() and json_extract() exist as SQL functions in the PostgreSQL schema
(store/sql_pg/0001), so statements using them need nothing here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INSERT_INTO = re.compile(r"\s*INSERT\s+(?:OR\s+IGNORE\s+)?INTO\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    """One statement in PostgreSQL's spelling, and how to order its parameters."""

    text: str
    names: tuple[str, ...]  # for :name placeholders, the name of $1, $2 …; empty for ?
    count: int  # how many ? placeholders
    table: str | None  # the table an INSERT writes, else None
    returns: bool  # the statement already has RETURNING

    def args(self, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        if isinstance(params, Mapping):
            return [params[name] for name in self.names]
        if len(params) != self.count:
            raise ValueError(f"{self.count} placeholders, {len(params)} values: {self.text[:120]}")
        return list(params)


def _tokens(sql: str) -> list[tuple[str, str]]:
    """(kind, text) pieces: 'quoted' strings and identifiers are kept whole, the rest split finely."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # '' inside a string is one quote
                        j += 2
                        continue
                    break
                j += 1
            out.append(("quoted", sql[i:j + 1]))
            i = j + 1
        elif ch == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(("comment", sql[i:j]))
            i = j
        elif ch == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_") and not sql.startswith("::", i - 1):
            match = _WORD.match(sql, i + 1)
            assert match is not None
            out.append(("name", match.group()))
            i = match.end()
        elif ch == "?":
            out.append(("mark", "?"))
            i += 1
        else:
            match = _WORD.match(sql, i)
            if match is not None:
                out.append(("word", match.group()))
                i = match.end()
            else:
                out.append(("other", ch))
                i += 1
    return out


@functools.lru_cache(maxsize=4096)
def postgresql(sql: str) -> Statement:
    """The statement as PostgreSQL takes it (cached: the store runs a few hundred distinct ones)."""
    pieces: list[str] = []
    names: list[str] = []
    count = 0
    ignore = False
    returns = False
    words = 0
    for kind, text in _tokens(sql):
        if kind == "mark":
            count += 1
            pieces.append(f"${count}")
        elif kind == "name":
            if text not in names:
                names.append(text)
            pieces.append(f"${names.index(text) + 1}")
        elif kind == "word":
            upper = text.upper()
            words += 1
            if upper == "OR" and words == 2 and _INSERT_INTO.match(sql):
                ignore = True  # INSERT OR IGNORE: drop "OR IGNORE" and add ON CONFLICT below
                continue
            if ignore and upper == "IGNORE" and words == 3:
                while pieces and pieces[-1].isspace():
                    pieces.pop()
                continue
            if upper == "LIKE":
                text = "ILIKE"
            elif upper == "RETURNING":
                returns = True
            pieces.append(text)
        else:
            pieces.append(text)
    if names and count:
        raise ValueError(f"mixes ? and :name placeholders: {sql[:120]}")
    text = "".join(pieces).strip().rstrip(";")
    if ignore:
        at = _returning_at(text)
        text = text[:at].rstrip() + " ON CONFLICT DO NOTHING" + (" " + text[at:] if at < len(text) else "")
    insert = _INSERT_INTO.match(sql)
    return Statement(text, tuple(names), count, insert.group(1).lower() if insert else None, returns)


def _returning_at(text: str) -> int:
    """Where a trailing RETURNING clause starts (outside quotes), or the end."""
    position = 0
    found = len(text)
    for kind, piece in _tokens(text):
        if kind == "word" and piece.upper() == "RETURNING":
            found = position
        position += len(piece)
    return found


def with_id(statement: Statement) -> str:
    """The INSERT with RETURNING id added, so Txn.execute can answer the new row's id like lastrowid."""
    return statement.text + " RETURNING id"
