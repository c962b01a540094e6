"""MTA pipes and imports: one message from stdin or files, a whole mbox or Maildir; sysexits codes."""

from __future__ import annotations

import hashlib
import logging
import mailbox
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailgate import spool
from mailgate.models import Envelope, Source
from mailgate.store import DatabaseError, Store, StoreUnavailable

log = logging.getLogger("mailgate.pipe")

# sysexits.h, as Postfix and rt-mailgate read them: 75 makes the MTA keep the mail and retry.
EX_OK = os.EX_OK
EX_DATAERR = os.EX_DATAERR
EX_NOINPUT = os.EX_NOINPUT
EX_TEMPFAIL = os.EX_TEMPFAIL
EX_CONFIG = os.EX_CONFIG

# Postfix's pipe(8) writes the null reverse-path (bounces, DSNs, RFC 3834 responders) as
# "MAILER-DAEMON" in ${sender} unless the service sets null_sender=; other MTAs pass "<>" or "".
# All of them mean "never answer this mail" (RFC 5321 4.5.5), so they are stored as "".
_NULL_SENDERS = frozenset({"", "<>", "mailer-daemon", "<mailer-daemon>"})


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a pipe delivery failed: the sysexits code and the RFC 3463 status the MTA puts in its DSN.

    Postfix's pipe(8) lets an output that begins with "4.X.X" or "5.X.X" take precedence over the
    exit status, so the two always agree here and the status line is the first thing printed."""

    exit_code: int
    status: str
    text: str

    def line(self) -> str:
        return f"{self.status} {self.text}"


def envelope_sender(value: str) -> str:
    """The envelope sender as an MTA pipe passes it, with every spelling of the null sender as ""."""
    sender = value.strip()
    return "" if sender.lower() in _NULL_SENDERS else sender.removeprefix("<").removesuffix(">")


def is_address(argument: str) -> bool:
    """An argument that is a mail address and no file: what an MTA's ${recipient} expands to."""
    local, at, domain = argument.rpartition("@")
    return bool(at and local and domain) and not Path(argument).exists()

_BATCH = 200  # messages per transaction on an import: one commit each would make imports crawl


@dataclass
class PipeResult:
    stored: int = 0
    duplicates: int = 0
    empty: int = 0
    spool_ids: list[int] = field(default_factory=list)


def read_mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    box = mailbox.mbox(str(path), create=False)
    try:
        for key in box.iterkeys():
            yield f"{path}#{key}", box.get_bytes(key)
    finally:
        box.close()


def _delivery_order(key: str) -> list[int | str]:
    """Maildir names start with the delivery time ("1700000000.M99999P42Q1.host"), but the microseconds
    are not zero-padded: as text, M99999 sorts after M123456 of the same second. Compared as numbers,
    an import keeps the order the mail arrived in, so replies follow what they answer."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def read_maildir(path: Path) -> Iterator[tuple[str, bytes]]:
    box = mailbox.Maildir(str(path), factory=None, create=False)
    for key in sorted(box.iterkeys(), key=_delivery_order):
        yield f"{path}/{key}", box.get_bytes(key)


async def store_messages(
    store: Store,
    messages: Iterator[tuple[str, bytes]],
    *,
    mail_from: str,
    rcpt_to: tuple[str, ...],
    source: Source,
    imported: bool,
) -> PipeResult:
    """Spool messages in batches; each batch is committed before the next is read."""
    result = PipeResult()
    batch: list[tuple[str, bytes]] = []

    async def flush() -> None:
        if not batch:
            return
        try:
            async with store.txn() as tx:
                accepted = [
                    await spool.accept_in(
                        tx,
                        raw,
                        hashlib.sha256(raw).hexdigest(),
                        Envelope(mail_from, rcpt_to, source, source_ref=ref, imported=imported),
                    )
                    for ref, raw in batch
                ]
        except DatabaseError as exc:
            raise StoreUnavailable(str(exc)) from exc
        for item in accepted:
            if item.duplicate:
                result.duplicates += 1
            else:
                result.stored += 1
                result.spool_ids.append(item.spool_id)
        batch.clear()

    for ref, raw in messages:
        if not raw.strip():
            log.warning("pipe.empty_message ref=%s", ref)
            result.empty += 1
            continue
        batch.append((ref, raw))
        if len(batch) >= _BATCH:
            await flush()
    await flush()
    return result
