"""A relay that is a folder: each outgoing mail written into a Maildir (tmp/, fsync, then new/)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mailgate.config import RelayConfig
from mailgate.outgoing.relay import Result, envelope

log = logging.getLogger("mailgate.maildir")

# Maildir spec (cr.yp.to/proto/maildir.html): a file left in tmp/ this long is a dead writer's.
STALE_TMP_SECONDS = 36 * 3600
_SUBDIRS = ("tmp", "new", "cur")


def _host() -> str:
    """The host part of a Maildir name: '/' and ':' are escaped as the spec asks ('\\057', '\\072')."""
    return socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


def envelope_headers(mail_from: str, rcpt: str) -> bytes:
    """What a local delivery agent prepends (Postfix local(8) order): the envelope, readable in the file."""
    return f"Return-Path: <{mail_from}>\nX-Original-To: {rcpt}\nDelivered-To: {rcpt}\n".encode()


class MaildirRelay:
    """Delivers each outbox row into `config.maildir`; same interface as Relay, so the outbox is unchanged.

    A file appears in new/ only complete and on disk: it is written under tmp/, fsynced, linked into
    new/ and the directory fsynced, and only then does send() answer ok and the row become 'sent'.
    A writer killed before that leaves at most a file in tmp/, which mail readers never show; the
    row stays 'sending' and the next start writes it again under a new name.
    """

    def __init__(self, config: RelayConfig, local_hostname: str | None = None) -> None:
        assert config.maildir is not None
        self.config = config
        self.folder: Path = config.maildir
        self._host = _host()
        self._counter = itertools.count(1)
        # File writes and fsyncs block: their own threads, so they never wait behind other to_thread work.
        self._pool = ThreadPoolExecutor(max_workers=config.connections, thread_name_prefix="maildir")

    def prepare(self) -> int:
        """Create tmp/new/cur (0700) and remove a dead writer's stale tmp/ files; the count removed."""
        for sub in _SUBDIRS:
            (self.folder / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        removed = 0
        cutoff = time.time() - STALE_TMP_SECONDS
        for entry in os.scandir(self.folder / "tmp"):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:  # another reader cleaned it first, or no right to: not ours to insist
                continue
        return removed

    def _name(self) -> str:
        """time.M<usec>P<pid>Q<n>R<random>.host: unique per the spec, also across restarts and forks."""
        now = time.time()
        seconds = int(now)
        return (f"{seconds}.M{int((now - seconds) * 1_000_000)}P{os.getpid()}Q{next(self._counter)}"
                f"R{secrets.token_hex(8)}.{self._host}")

    def _write(self, data: bytes) -> str:
        """Write data into new/ the Maildir way; the file name in new/. Raises OSError."""
        for sub in _SUBDIRS:  # an operator may have emptied var/outgoing with rm -r
            (self.folder / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:
            name = self._name()
            tmp = self.folder / "tmp" / name
            # 0600 whatever the umask: these are customers' mails. O_EXCL: never into another's file.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                final = self.folder / "new" / name
                try:
                    # link(), not rename(): it never replaces an existing file (the spec's way).
                    os.link(tmp, final)
                except FileExistsError:
                    os.unlink(tmp)
                    continue
                except PermissionError:  # file systems without hard links (some FUSE, SMB mounts)
                    if final.exists():
                        os.unlink(tmp)
                        continue
                    os.rename(tmp, final)
                else:
                    os.unlink(tmp)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            _fsync_dir(self.folder / "new")
            return name

    async def send(self, mail_from: str, rcpt: str, raw: bytes) -> Result:
        """Write one mail for one recipient; never raises (but for cancellation)."""
        checked = envelope(mail_from, rcpt)  # the SMTP relay's check: dev runs behave as production would
        if isinstance(checked, Result):
            log.warning("maildir.refused rcpt=%r permanent=True reason=%s", rcpt[:200], checked.message)
            return checked
        sender, recipient = checked
        # Maildir files use the local line ending, as every delivery agent writes them (mutt, Dovecot).
        data = envelope_headers(sender.address, recipient.address) + raw.replace(b"\r\n", b"\n")
        loop = asyncio.get_running_loop()
        try:
            name = await loop.run_in_executor(self._pool, self._write, data)
        except OSError as exc:
            # A full disk or a permission the operator can fix: keep the mail and retry.
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            log.warning("maildir.failed rcpt=%r folder=%s reason=%s", rcpt, self.folder, reason)
            return Result(False, False, None, f"maildir: {reason}")
        except Exception as exc:  # a bug: kept to this mail, retried a few times only
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            log.error("maildir.error rcpt=%r reason=%s", rcpt, reason)
            return Result(False, False, None, reason, unexpected=True)
        log.info("maildir.delivered rcpt=%r file=%s", recipient.address, self.folder / "new" / name)
        return Result(True, False, 250, f"written to {self.folder / 'new' / name}")

    async def close(self) -> None:
        self._pool.shutdown(wait=True)


def _fsync_dir(path: Path) -> None:
    """The link is durable only once its directory is (ext4/xfs may lose a fresh entry on power loss)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

