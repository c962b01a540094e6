"""An outbox row's id is known before the row is written, so its VERP path goes in with it: ids stay unique."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from mailgate.store import Store
from mailgate.store import outbox as rows
from mailgate.store.outbox_ids import reserve_id
from mailgate.store.savepoints import savepoint

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = pytest.mark.engines


def notice(n: int, now: datetime) -> rows.NewMail:
    return rows.NewMail(
        ticket_id=None, kind="failed", automatic=True, agent=None, message_id=f"n{n}@mailgate.example",
        from_name="Help", from_address="support@example.test", in_reply_to=None,
        rcpt_to=f"ops{n}@example.test", subject=f"Notice {n}", text="", not_before=now,
    )


@pytest.mark.asyncio
async def test_a_reserved_id_is_the_rows_and_is_never_handed_out_twice(tmp_path: Path) -> None:
    async with Store(tmp_path / "ids.sqlite3") as store:
        async with store.txn() as tx:
            first = await reserve_id(tx)
            await rows.insert(tx, notice(1, tx.now()), outbox_id=first, mail_from=f"b-{first}@example.test",
                              raw=b"Subject: Notice 1\r\n\r\nbody\r\n")
            second = await rows.insert(tx, notice(2, tx.now()))  # no id given: reserved all the same
        assert second == first + 1
        async with store.read() as tx:
            row = await rows.get(tx, first)
        assert row is not None and row.mail_from == f"b-{first}@example.test" and row.raw.startswith(b"Subject")

        # A message of a batch that fails rolls back its rows; the next one never gets their ids twice
        # in the same transaction, and a later transaction counts on from what was kept.
        async with store.txn() as tx:
            with pytest.raises(LookupError):
                async with savepoint(tx, "message"):
                    lost = await rows.insert(tx, notice(3, tx.now()))
                    raise LookupError("this message failed")
            kept = await rows.insert(tx, notice(4, tx.now()))
        assert lost == second + 1 and kept == lost + 1
        async with store.txn() as tx:
            assert await rows.insert(tx, notice(5, tx.now())) == kept + 1
            assert await rows.get(tx, lost) is None
