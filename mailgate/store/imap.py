"""The IMAP tables: each folder's checkpoint, each account's state, and mail left on the server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mailgate.store import Txn

# Whole seconds and a literal Z: the form `mailgate imap status` prints and operators' scripts read.
_NEXT_TRY = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int  # every UID up to here is spooled (or deliberately left on the server)
    done_uid: int  # every UID up to here has had its after-store action


@dataclass(frozen=True, slots=True)
class FolderState:
    """A folder's checkpoint as `imap status` shows it."""

    uidvalidity: int
    last_uid: int
    done_uid: int
    stored: int  # messages spooled from this folder, over every UIDVALIDITY
    updated_at: str


@dataclass(frozen=True, slots=True)
class AccountState:
    """What an account's worker last said it does, and how its last failure went."""

    account: str
    state: str
    last_error: str | None
    last_error_at: str | None
    last_ok_at: str | None
    next_try_at: str | None
    updated_at: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A message left on the server, with why."""

    folder: str
    uidvalidity: int
    uid: int
    size: int
    reason: str
    at: str


async def checkpoint(tx: Txn, account: str, folder: str) -> Checkpoint | None:
    row = await tx.one(
        "SELECT uidvalidity, last_uid, done_uid FROM imap_folders WHERE account = ? AND folder = ?", (account, folder)
    )
    return None if row is None else Checkpoint(row["uidvalidity"], row["last_uid"], row["done_uid"])


async def save_checkpoint(tx: Txn, account: str, folder: str, cp: Checkpoint, stored: int = 0) -> None:
    """Move the folder's checkpoint; stored: new spool rows this move counts for the folder."""
    await tx.execute(
        "INSERT INTO imap_folders (account, folder, uidvalidity, last_uid, done_uid, stored, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, folder) DO UPDATE SET"
        " uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, done_uid = excluded.done_uid,"
        " stored = imap_folders.stored + excluded.stored, updated_at = excluded.updated_at",
        (account, folder, cp.uidvalidity, cp.last_uid, cp.done_uid, stored, tx.now_iso()),
    )


async def save_state(tx: Txn, account: str, state: str, error: str | None = None, retry_in: float | None = None) -> None:
    """Record what an account's worker does now; an error also records when it tries again."""
    now = tx.now_iso()
    await tx.execute(
        "INSERT INTO imap_accounts (account, state, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (account) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        (account, state, now),
    )
    if error is not None:
        next_try = (tx.now() + timedelta(seconds=int(retry_in or 0))).strftime(_NEXT_TRY)
        await tx.execute(
            "UPDATE imap_accounts SET last_error = ?, last_error_at = ?, next_try_at = ? WHERE account = ?",
            (error[:1000], now, next_try, account),
        )
    if state in ("idle", "polling"):
        await tx.execute("UPDATE imap_accounts SET last_ok_at = ?, next_try_at = NULL WHERE account = ?", (now, account))


async def record_skipped(tx: Txn, account: str, folder: str, uidvalidity: int, uid: int, size: int, reason: str) -> None:
    """A message left on the server; recorded once per UID."""
    await tx.execute(
        "INSERT INTO imap_skipped (account, folder, uidvalidity, uid, size, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (account, folder, uidvalidity, uid) DO NOTHING",
        (account, folder, uidvalidity, uid, size, reason, tx.now_iso()),
    )


async def skipped_uids(tx: Txn, account: str, folder: str, uidvalidity: int) -> set[int]:
    rows = await tx.all(
        "SELECT uid FROM imap_skipped WHERE account = ? AND folder = ? AND uidvalidity = ?", (account, folder, uidvalidity)
    )
    return {int(r["uid"]) for r in rows}


async def account_state(tx: Txn, account: str) -> AccountState | None:
    row = await tx.one(
        "SELECT account, state, last_error, last_error_at, last_ok_at, next_try_at, updated_at FROM imap_accounts"
        " WHERE account = ?",
        (account,),
    )
    return None if row is None else AccountState(**dict(row))


async def folder_state(tx: Txn, account: str, folder: str) -> FolderState | None:
    row = await tx.one(
        "SELECT uidvalidity, last_uid, done_uid, stored, updated_at FROM imap_folders WHERE account = ? AND folder = ?",
        (account, folder),
    )
    return None if row is None else FolderState(**dict(row))


async def left_on_server(tx: Txn, account: str, limit: int = 20) -> list[Skipped]:
    """The account's latest skipped messages, newest first."""
    rows = await tx.all(
        "SELECT folder, uidvalidity, uid, size, reason, at FROM imap_skipped WHERE account = ? ORDER BY at DESC LIMIT ?",
        (account, limit),
    )
    return [Skipped(**dict(r)) for r in rows]
