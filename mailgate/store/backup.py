"""Whole-file work on the SQLite database: online backups, the blob list of a copy, compaction after an erase."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("mailgate.data")


class BackupFailed(Exception):
    """The copy was made but is not sound; it was not put in place."""


BACKUP_PAGES = 256  # pages copied per step (1 MiB at 4 KiB pages): the daemon writes between steps
BACKUP_SLEEP = 0.005  # seconds between steps
MAX_RESTARTS = 3  # a stepped backup starts over whenever another connection writes


class _TooBusy(Exception):
    """The daemon wrote faster than the stepped backup could finish; copy in one read snapshot instead."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    pages: int
    bytes: int
    integrity: str
    tickets: int
    messages: int
    snapshot: bool  # copied in one read transaction after the stepped copy kept restarting


def backup(source: Path, target: Path, *, busy_timeout: float = 10.0) -> BackupResult:
    """Copy a live database page by page into a new 0600 file; checked with integrity_check before it is named."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)  # mkstemp made it 0600: the copy holds every customer's mail
    tmp = Path(tmp_name)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=busy_timeout)
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            snapshot = False
            try:
                src.backup(dst, pages=BACKUP_PAGES, progress=_restarts_watch(), sleep=BACKUP_SLEEP)
            except _TooBusy:
                # In WAL mode one read transaction holds a consistent snapshot while writers go on;
                # only the checkpoint waits, so the daemon keeps accepting mail during the copy.
                src.backup(dst, pages=-1)
                snapshot = True
            # A standalone file: the WAL flag came with the pages; the copy must not need a -wal beside it.
            dst.execute("PRAGMA journal_mode = DELETE").fetchall()
            integrity = "; ".join(r[0] for r in dst.execute("PRAGMA integrity_check").fetchall())
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            counts = [int(dst.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in ("tickets", "messages")]
        finally:
            dst.close()
            src.close()
        if integrity != "ok":
            raise BackupFailed(f"the copy failed its integrity check: {integrity}")
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        return BackupResult(target, pages, target.stat().st_size, integrity, counts[0], counts[1], snapshot)
    finally:
        tmp.unlink(missing_ok=True)
        for suffix in ("-journal", "-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)


def _restarts_watch() -> Callable[[int, int, int], None]:
    last = [-1]
    restarts = [0]

    def progress(status: int, remaining: int, total: int) -> None:
        if last[0] >= 0 and remaining > last[0]:
            restarts[0] += 1
            if restarts[0] > MAX_RESTARTS:
                raise _TooBusy()
        last[0] = remaining

    return progress


def blob_hashes(database: Path) -> list[str]:
    """Every blob a database file names, sorted (read from a backup copy, not the live file)."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return [r[0] for r in db.execute("SELECT sha256 FROM blobs ORDER BY sha256")]


def compact(database: Path, vacuum: bool) -> str:
    """Rewrite the file and truncate the WAL, so no old page keeps the person's words.

    secure_delete zeroes what the erase itself freed, but pages freed earlier without it (a spool
    row rewritten when its state changed) may still hold old copies on the free list: VACUUM
    rebuilds every page. The TRUNCATE checkpoint empties the WAL, where pre-erase versions of the
    pages live on. Intake waits during the VACUUM (SMTP answers 451, senders retry); an erase is rare.
    """
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as db:
            if vacuum:
                db.execute("VACUUM")
            busy, _frames, _done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        log.warning("contacts.erase_compact_failed error=%s", exc)
        return "failed"
    # busy: a reader (the daemon mid-transaction) held old pages; its next checkpoint folds them in.
    return "busy" if busy else "truncated"
