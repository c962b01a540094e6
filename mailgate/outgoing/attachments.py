"""The customer's files on an agent's notification: attached up to outbox.notify_attachments_max, the rest listed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from mailgate.config import Config
from mailgate.outgoing import compose
from mailgate.store import Txn
from mailgate.store.blobs import BlobStore, StoredFile, ticket_files

log = logging.getLogger("mailgate.agent_files")

# Why a listed file is not attached; the templates word each in the agent's language.
ATTACHED, OVER_CAP, TOO_BIG, MISSING = "", "over_cap", "too_big", "missing"
# A mail may carry up to parse.MAX_ATTACHMENTS (1000) parts: a notification attaching or listing every
# one of a flood of tiny files is unreadable, and mail clients choke on a thousand parts. Past these the
# rest are counted ("and 800 more") and still fetchable by number.
MAX_ATTACHED_FILES = 100
MAX_LISTED = 200


def human_size(size: int) -> str:
    """Bytes as a person reads them in a listing: "812 B", "45 KB", "2.3 MB"."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


async def attach(config: Config, chosen: Sequence[StoredFile]) -> tuple[tuple[compose.File, ...], dict[str, Any]]:
    """The files that fit in outbox.notify_attachments_max together, in order, and a listing of every one.

    A file that does not fit still lets a smaller later one in: a 9 MB scan must not keep a 20 KB
    invoice out. Missing blobs (a restored database without its attachment folder) are listed as such.
    """
    blobs = BlobStore(config.attachments_path)
    budget = config.outbox.notify_attachments_max
    files: list[compose.File] = []
    items: list[dict[str, Any]] = []
    for stored in chosen:
        reason = TOO_BIG if stored.size > config.outbox.notify_attachments_max else (
            OVER_CAP if stored.size > budget or len(files) >= MAX_ATTACHED_FILES else ATTACHED)
        if reason == ATTACHED:
            try:
                data = await asyncio.to_thread(blobs.get, stored.sha256)  # up to the cap: off the event loop
            except (OSError, ValueError) as exc:
                log.warning("agent_files.blob_missing sha256=%s reason=%s", stored.sha256, type(exc).__name__)
                reason = MISSING
            else:
                budget -= len(data)
                files.append(compose.File(stored.name, stored.content_type, data))
        items.append({"number": stored.number, "name": stored.name, "type": stored.content_type,
                      "size": human_size(stored.size), "bytes": stored.size, "attached": reason == ATTACHED,
                      "reason": reason})
    listing = {"entries": items[:MAX_LISTED], "more": max(len(items) - MAX_LISTED, 0),
               "cap": human_size(config.outbox.notify_attachments_max), "left": sum(1 for i in items if not i["attached"]),
               "fetchable": [i["number"] for i in items if i["reason"] == OVER_CAP]}
    return tuple(files), listing


async def of_message(tx: Txn, config: Config, ticket_id: int, message_row: int) -> tuple[tuple[compose.File, ...], dict[str, Any]]:
    """One stored message's files for its notification, numbered as in the whole ticket."""
    chosen = [f for f in await ticket_files(tx, ticket_id) if f.message_row == message_row]
    return await attach(config, chosen)


async def of_ticket(tx: Txn, config: Config, ticket_id: int) -> tuple[tuple[compose.File, ...], dict[str, Any]]:
    """Every file of the ticket: what an agent newly given the ticket has not seen."""
    return await attach(config, await ticket_files(tx, ticket_id))
