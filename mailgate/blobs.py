"""Attachment contents on disk, named by sha256 only: a sender's filename never becomes a path."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from mailgate.compose import File, clean
from mailgate.text import visible_name

if TYPE_CHECKING:
    from mailgate.store import Txn

_SHA256 = re.compile(r"[0-9a-f]{64}")


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
        target.parent.mkdir(parents=True, exist_ok=True)
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
        if not embedded and a["inline"] and a["content_id"]:
            continue
        # Rows stored before names were cleaned at parse time may still hold bidi overrides.
        name = clean(visible_name(a["filename"] or ""), 200) or f"attachment-{a['id']}"
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
