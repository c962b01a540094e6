"""What the IMAP workers keep in the store: folder checkpoints, account state, messages left on the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailgate.config import Config
from mailgate.store import Store, Txn, now_iso


@dataclass(frozen=True, slots=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int  # every UID up to here is spooled (or deliberately left on the server)
    done_uid: int  # every UID up to here has had its after-store action


async def load_checkpoint(store: Store, account: str, folder: str) -> Checkpoint | None:
    async with store.read() as tx:
        row = await tx.one(
            "SELECT uidvalidity, last_uid, done_uid FROM imap_folders WHERE account = ? AND folder = ?",
            (account, folder),
        )
    return None if row is None else Checkpoint(row["uidvalidity"], row["last_uid"], row["done_uid"])


async def save_checkpoint(tx: Txn, account: str, folder: str, cp: Checkpoint, stored: int = 0) -> None:
    await tx.execute(
        "INSERT INTO imap_folders (account, folder, uidvalidity, last_uid, done_uid, stored, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, folder) DO UPDATE SET"
        " uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, done_uid = excluded.done_uid,"
        " stored = imap_folders.stored + excluded.stored, updated_at = excluded.updated_at",
        (account, folder, cp.uidvalidity, cp.last_uid, cp.done_uid, stored, now_iso()),
    )


async def save_state(
    store: Store, account: str, state: str, error: str | None = None, retry_in: float | None = None
) -> None:
    """Record what an account's worker does now; an error also records when it tries again."""
    now = now_iso()
    async with store.txn() as tx:
        await tx.execute(
            "INSERT INTO imap_accounts (account, state, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (account) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            (account, state, now),
        )
        if error is not None:
            await tx.execute(
                "UPDATE imap_accounts SET last_error = ?, last_error_at = ?,"
                " next_try_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?) WHERE account = ?",
                (error[:1000], now, f"+{int(retry_in or 0)} seconds", account),
            )
        if state in ("idle", "polling"):
            await tx.execute(
                "UPDATE imap_accounts SET last_ok_at = ?, next_try_at = NULL WHERE account = ?", (now, account)
            )


async def record_skipped(
    tx: Txn, account: str, folder: str, uidvalidity: int, uid: int, size: int, reason: str
) -> None:
    await tx.execute(
        "INSERT OR IGNORE INTO imap_skipped (account, folder, uidvalidity, uid, size, reason, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (account, folder, uidvalidity, uid, size, reason, now_iso()),
    )


async def skipped_uids(store: Store, account: str, folder: str, uidvalidity: int) -> set[int]:
    async with store.read() as tx:
        rows = await tx.all(
            "SELECT uid FROM imap_skipped WHERE account = ? AND folder = ? AND uidvalidity = ?",
            (account, folder, uidvalidity),
        )
    return {r["uid"] for r in rows}


async def status(tx: Txn, config: Config) -> list[dict[str, Any]]:
    """Every configured account with its state, last error, folder checkpoints and skipped mail."""
    out = []
    for account in config.imap:
        row = await tx.one("SELECT * FROM imap_accounts WHERE account = ?", (account.name,))
        folders = []
        for folder in account.folders:
            cp = await tx.one(
                "SELECT uidvalidity, last_uid, done_uid, stored, updated_at FROM imap_folders"
                " WHERE account = ? AND folder = ?",
                (account.name, folder),
            )
            folders.append({"folder": folder, **(dict(cp) if cp else {"uidvalidity": None, "last_uid": None})})
        skipped = await tx.all(
            "SELECT folder, uidvalidity, uid, size, reason, at FROM imap_skipped WHERE account = ?"
            " ORDER BY at DESC LIMIT 20",
            (account.name,),
        )
        out.append(
            {
                "account": account.name,
                "server": f"{account.host}:{account.effective_port}",
                "username": account.username,
                "state": row["state"] if row else "never-started",
                "last_error": row["last_error"] if row else None,
                "last_error_at": row["last_error_at"] if row else None,
                "next_try_at": row["next_try_at"] if row else None,
                "last_ok_at": row["last_ok_at"] if row else None,
                "folders": folders,
                "left_on_server": [dict(r) for r in skipped],
            }
        )
    return out
