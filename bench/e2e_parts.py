"""The other parties of bench/e2e.py, each its own process, and how the bench reads them from outside.

    python bench/e2e_parts.py sink PORT FILE       the relay: accepts everything, one Message-ID line per mail in FILE
    python bench/e2e_parts.py trivial PORT DB      the trivial server: INSERT the mail into SQLite (WAL), COMMIT, 250

Both print "ready" once they listen. The rest of this module is read-only accounting of another
process: CPU seconds and RSS of a process tree from /proc, /metrics samples, a database's counts.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


class SinkHandler:
    """The relay: 250 for every mail, its Message-ID appended (and flushed) to a file the bench counts."""

    def __init__(self, out: Path) -> None:
        self.out = out.open("ab", buffering=0)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        head = raw.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        self.out.write((found.group(1).strip() if found else b"-") + b"\n")
        return "250 2.0.0 OK queued"


class TrivialHandler:
    """What any SMTP server must do at least: keep the mail durably (one SQLite commit), then 250."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")  # as mailgate's default [storage] synchronous
        self.db.execute("CREATE TABLE IF NOT EXISTS mails (id INTEGER PRIMARY KEY, mail_from TEXT NOT NULL,"
                        " rcpt_to TEXT NOT NULL, raw BLOB NOT NULL, received_at REAL NOT NULL)")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.db.execute("INSERT INTO mails (mail_from, rcpt_to, raw, received_at) VALUES (?, ?, ?, ?)",
                        (envelope.mail_from or "", " ".join(envelope.rcpt_tos), envelope.original_content or b"",
                         time.time()))
        return "250 2.0.0 Ok: queued"


async def serve(kind: str, port: int, path: Path) -> None:
    handler: SinkHandler | TrivialHandler = SinkHandler(path) if kind == "sink" else TrivialHandler(path)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        # A fixed hostname: without one aiosmtpd asks DNS for ours on every connection.
        lambda: SMTP(handler, hostname=f"{kind}.test", decode_data=False, loop=loop), host="127.0.0.1", port=port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()


# --- reading another process ------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on; a comm may hold spaces


def tree(root: int) -> list[int]:
    """root and every live descendant (children found by their ppid in /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """utime + stime of the tree's live processes, plus what the root's reaped children used (cutime, cstime)."""
    total = 0
    for pid in tree(root):
        fields = _stat(pid)
        if fields is None:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
        if pid == root:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / CLK_TCK


def rss_mb(root: int) -> float:
    """Resident memory of the tree (sum of each process's RSS: shared pages count in each)."""
    pages = 0
    for pid in tree(root):
        try:
            pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return pages * PAGE / 1024 / 1024


def scrape(port: int) -> dict[str, float]:
    """One GET /metrics: every unlabelled sample by name, labelled ones as name{k="v",...}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


class Database:
    """The daemon's SQLite file, read-only (WAL: reading never blocks its writer); counts above a start line."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self.spool_base = self.value("SELECT COALESCE(MAX(id), 0) FROM spool")
        self.outbox_base = self.value("SELECT COALESCE(MAX(id), 0) FROM outbox")
        self.message_base = self.value("SELECT COALESCE(MAX(id), 0) FROM messages")

    def value(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.db.execute(sql, params).fetchone()[0] or 0)

    def spooled(self) -> int:
        return self.value("SELECT COUNT(*) FROM spool WHERE id > ?", (self.spool_base,))

    def processed(self) -> int:
        """Spooled mails the worker is done with (a ticket message, a duplicate, or given up)."""
        return self.value("SELECT COUNT(*) FROM spool WHERE id > ? AND state IN ('done', 'duplicate', 'dead')",
                          (self.spool_base,))

    def outbox(self) -> dict[str, int]:
        rows = self.db.execute("SELECT state, COUNT(*), SUM(attempts) FROM outbox WHERE id > ? GROUP BY state",
                               (self.outbox_base,)).fetchall()
        out = {state: n for state, n, _ in rows}
        out["attempts"] = sum(a or 0 for _, _, a in rows)
        return out

    def unsent(self) -> int:
        return self.value("SELECT COUNT(*) FROM outbox WHERE id > ? AND state IN ('queued', 'sending')",
                          (self.outbox_base,))

    def inbound_messages(self) -> int:
        return self.value("SELECT COUNT(*) FROM messages WHERE id > ? AND direction = 'in'", (self.message_base,))

    def dead(self) -> int:
        return self.value("SELECT COUNT(*) FROM spool WHERE id > ? AND state = 'dead'", (self.spool_base,))

    def close(self) -> None:
        self.db.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])))
