"""Attachment contents on disk, named by sha256 only: a sender's filename never becomes a path."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mailgate.mail.text import visible_name
from mailgate.models import File
from mailgate.store import Row, Txn

# Removing files is part of retention's and erasure's work: their operators watch that logger.
log = logging.getLogger("mailgate.retention")

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Names and types come from senders and go into headers of forwarded mail and agents' screens:
# control characters (CR, LF, NUL …) would end a header or smuggle in a new one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def _clean(value: str, limit: int) -> str:
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


class BlobStore:
    """Content-addressed files under one folder: <root>/ab/cd/<sha256>."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes) -> Path:
        """Write once; the same content again is a no-op. Written to a temp name, then renamed."""
        target = self.path(sha256)
        if target.exists():
            return target
        # Customers' files: 0700 folders (mkstemp already makes the files 0600), whatever the umask.
        for folder in (self.root, target.parent.parent, target.parent):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()


async def message_files(
    tx: Txn, blobs: BlobStore, message_row: int, budget: int, *, embedded: bool = True
) -> tuple[list[File], list[str]]:
    """A stored message's attachments that fit in budget bytes, and every name (the rest marked why not).

    embedded=False leaves out inline parts an HTML body points at by Content-ID (logos, signature
    images): without that HTML they are clutter, not something the writer attached.
    """
    files: list[File] = []
    names: list[str] = []
    for a in await tx.all("SELECT * FROM attachments WHERE message_row = ? ORDER BY id", (message_row,)):
        if not embedded and _embedded(a):
            continue
        name = shown_name(a)
        if a["size"] > budget:
            names.append(f"{name} (not attached: too big)")
            continue
        try:
            data = blobs.get(a["sha256"])
        except (OSError, ValueError):
            names.append(f"{name} (not attached: missing)")
            continue
        budget -= len(data)
        files.append(File(name, a["content_type"] or "application/octet-stream", data))
        names.append(name)
    return files, names


def _embedded(row: Row) -> bool:
    """An inline part an HTML body points at by Content-ID: a logo or signature image, not a file someone sent."""
    return bool(row["inline"] and row["content_id"])


def shown_name(row: Row) -> str:
    """An attachment row's filename as people may see it; a made-up one when the sender gave none."""
    # Rows stored before names were cleaned at parse time may still hold bidi overrides.
    return _clean(visible_name(row["filename"] or ""), 200) or f"attachment-{row['id']}"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file a ticket holds, numbered as agents see it ([files:N])."""

    number: int  # 1-based, the ticket's files in the order they came
    message_row: int
    name: str
    content_type: str
    size: int
    sha256: str


async def ticket_files(tx: Txn, ticket_id: int) -> list[StoredFile]:
    """Every file of a ticket's messages, oldest first; images a signature shows inline and deleted messages' files are left out."""
    rows = await tx.all(
        "SELECT a.* FROM attachments a JOIN messages m ON m.id = a.message_row WHERE m.ticket_id = ?"
        " AND m.deleted_at IS NULL ORDER BY m.id, a.id", (ticket_id,),
    )
    kept = [a for a in rows if not _embedded(a)]
    return [StoredFile(n, a["message_row"], shown_name(a), _clean(a["content_type"] or "", 100) or "application/octet-stream",
                       int(a["size"]), a["sha256"]) for n, a in enumerate(kept, 1)]


async def drop_unreferenced(tx: Txn, hashes: Iterable[str]) -> list[str]:
    """The blob rows of these hashes that no attachment names any more, deleted; their hashes returned."""
    dropped = []
    for sha256 in sorted(hashes):
        if await tx.value("SELECT 1 FROM attachments WHERE sha256 = ? LIMIT 1", (sha256,)) is None:
            await tx.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
            dropped.append(sha256)
    return dropped


def unlink_unreferenced(blobs: BlobStore, hashes: Iterable[str]) -> int:
    """Remove the files of blobs no row references (after the commit that dropped them); count removed."""
    removed = 0
    for sha256 in hashes:
        try:
            blobs.path(sha256).unlink()
            removed += 1
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:  # one file that cannot go must not stop the rest
            log.warning("retention.unlink_failed sha256=%s error=%s", sha256, exc)
    return removed


async def record(tx: Txn, sha256: str, size: int, created_at: str) -> None:
    """The content-addressed file is known to the database (once, however many attachments name it)."""
    await tx.execute(
        "INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (sha256, size, created_at)
    )
