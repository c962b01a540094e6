"""Find the line of a dotted key in a TOML file, which tomllib does not keep."""

from __future__ import annotations

import re

_TABLE = re.compile(r"^\s*(\[\[?)\s*((?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*'))*)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*'))*)\s*=")
_PART = re.compile(r"[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*'")


def _key_parts(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in _PART.findall(dotted)]


def key_line(text: str, dotted: str) -> int | None:
    """The line where a dotted key (e.g. "imap.1.port", "queues.0.sla.high.first_response") is set.

    tomllib keeps no positions, so follow the table headers the way a reader of the file would:
    [[arrays]] count their items, [sub.tables] under one belong to its last item, and a dotted key
    or an inline table (`sla.high.first_response = 60`, `sla = { high = {...} }`) is found on its line.
    When the key is not in the file (a missing key), the line of its table.
    """
    wanted = dotted.split(".")
    table: list[str] = []
    counts: dict[str, int] = {}
    best: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        header = _TABLE.match(line)
        if header and not _KEY.match(line):
            names = _key_parts(header.group(2))
            table = []
            for i, part in enumerate(names):
                table.append(part)
                joined = ".".join(table)
                if header.group(1) == "[[" and i == len(names) - 1:
                    counts[joined] = counts.get(joined, -1) + 1
                    table.append(str(counts[joined]))
                elif joined in counts:  # a sub-table of an array's latest item
                    table.append(str(counts[joined]))
            if table == wanted[: len(table)]:
                best = number  # the key may be missing: point at its (deepest) table
            continue
        key = _KEY.match(line)
        if key:
            full = [*table, *_key_parts(key.group(1))]
            # The key itself, or an inline table / array on this line that holds it.
            if full == wanted[: len(full)] and len(full) > len(table):
                return number
    return best

