"""What the IMAP workers keep in the store, each in its own transaction, and the status report built from it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from mailgate.config import Config
from mailgate.store import Store, Txn
from mailgate.store import imap as kept
from mailgate.store.imap import Checkpoint, record_skipped, save_checkpoint

__all__ = ["Checkpoint", "load_checkpoint", "record_skipped", "save_checkpoint", "save_state", "skipped_uids", "status"]


async def load_checkpoint(store: Store, account: str, folder: str) -> Checkpoint | None:
    async with store.read() as tx:
        return await kept.checkpoint(tx, account, folder)


async def save_state(
    store: Store, account: str, state: str, error: str | None = None, retry_in: float | None = None
) -> None:
    """Record what an account's worker does now; an error also records when it tries again."""
    async with store.txn() as tx:
        await kept.save_state(tx, account, state, error, retry_in)


async def skipped_uids(store: Store, account: str, folder: str, uidvalidity: int) -> set[int]:
    async with store.read() as tx:
        return await kept.skipped_uids(tx, account, folder, uidvalidity)


async def status(tx: Txn, config: Config) -> list[dict[str, Any]]:
    """Every configured account with its state, last error, folder checkpoints and skipped mail."""
    out = []
    for account in config.imap:
        state = await kept.account_state(tx, account.name)
        folders = []
        for folder in account.folders:
            cp = await kept.folder_state(tx, account.name, folder)
            folders.append({"folder": folder, **(asdict(cp) if cp else {"uidvalidity": None, "last_uid": None})})
        skipped = await kept.left_on_server(tx, account.name)
        out.append(
            {
                "account": account.name,
                "server": f"{account.host}:{account.effective_port}",
                "username": account.username,
                "state": state.state if state else "never-started",
                "last_error": state.last_error if state else None,
                "last_error_at": state.last_error_at if state else None,
                "next_try_at": state.next_try_at if state else None,
                "last_ok_at": state.last_ok_at if state else None,
                "folders": folders,
                "left_on_server": [asdict(s) for s in skipped],
            }
        )
    return out
