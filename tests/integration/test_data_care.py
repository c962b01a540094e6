"""Data care as an operator meets it: backups of a running daemon, retention on a turned clock, erasing a contact."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.ops import retention
from mailgate.store import store_for

from .conftest import SUPPORT, run_cli_sync, send, settle, wait_until
from .conftest import run_cli as cli
from .sink import AGENTS, Sink, relay_section, wait_mail

pytestmark = pytest.mark.asyncio


async def ok(running: Running | Config, *args: str) -> Any:
    result = await cli(running, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def customer_mail(sender: str, subject: str, body: str, message_id: str, *,
                  files: tuple[tuple[str, bytes], ...] = (), cc: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = message_id
    msg.set_content(body)
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def customer(running: Running, sender: str, subject: str, body: str, message_id: str, **kw: Any) -> None:
    address = sender.split("<")[-1].rstrip(">")
    await send(running.smtp_port, customer_mail(sender, subject, body, message_id, **kw), sender=address)
    await settle(running)


async def value(running: Running, sql: str, params: tuple[Any, ...] = ()) -> Any:
    async with running.store.read() as tx:
        return await tx.value(sql, params)


async def ticket_of(running: Running, message_id: str) -> int:
    return int(await value(running, "SELECT t.number FROM tickets t JOIN messages m ON m.ticket_id = t.id"
                                    " WHERE m.message_id = ?", (message_id.strip("<>"),)))


def blob_files(config: Config) -> list[Path]:
    root = config.attachments_path
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- db backup -----------------------------------------------------------------------------------------


async def test_backup_while_the_daemon_takes_mail_is_whole_and_has_every_acknowledged_mail(
    make_config: Callable[..., Config], sink: Sink, tmp_path: Path
) -> None:
    config = make_config(AGENTS + relay_section(sink.port))
    async with started(config) as running:
        before = [f"<before-{i}@customer.test>" for i in range(8)]
        for i, mid in enumerate(before):
            await customer(running, "Alice <alice@customer.test>", f"Question {i}", f"words {i} " * 2000, mid,
                           files=((f"f{i}.bin", f"file number {i}".encode() * 100),))

        async def keep_writing() -> int:
            sent = 0
            for i in range(30):
                await send(running.smtp_port, customer_mail("Bob <bob@customer.test>", f"During {i}", "x" * 5000,
                                                            f"<during-{i}@customer.test>"), sender="bob@customer.test")
                sent += 1
            return sent

        writer = asyncio.create_task(keep_writing())
        target = tmp_path / "backups" / "mailgate.sqlite3"
        target.parent.mkdir()
        files_dir = tmp_path / "backups" / "attachments"
        answer = await ok(running, "db", "backup", str(target), "--with-attachments", str(files_dir))
        assert await writer == 30  # the daemon kept accepting mail during the backup
        await settle(running)

        assert answer["integrity"] == "ok" and answer["file"] == str(target)
        assert answer["attachments"] == {"copied": 8, "present": 0, "missing": 0}
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        with sqlite3.connect(target) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            kept = {r[0] for r in db.execute("SELECT message_id FROM messages")}
            spooled = b"\n".join(r[0] for r in db.execute("SELECT raw FROM spool"))
            hashes = [r[0] for r in db.execute("SELECT sha256 FROM blobs")]
        assert all(mid.strip("<>") in kept for mid in before)
        assert all(mid.encode() in spooled for mid in before)
        assert all((files_dir / h[:2] / h[2:4] / h).read_bytes() for h in hashes)
        assert not Path(str(target) + "-wal").exists()  # a standalone file

        # An existing file is never replaced by accident; --force replaces it; files already there are not copied.
        refused = await cli(running, "db", "backup", str(target))
        assert refused.exit_code == 1 and "--force" in refused.output
        again = await ok(running, "db", "backup", str(target), "--force", "--with-attachments", str(files_dir))
        assert again["attachments"] == {"copied": 0, "present": 8, "missing": 0}
        assert again["messages"] >= len(before) + 30


# -- retention -------------------------------------------------------------------------------------------


RETENTION = """
[retention]
closed_after_days = 30
spool_after_days = 10
outbox_after_days = 10
batch_size = 2
"""


async def retention_at(config: Config, when: datetime, *, dry_run: bool = False) -> dict[str, int]:
    """A retention run beside the daemon, on a store whose clock stands at `when`."""
    async with store_for(config, ManualClock(when)) as store:
        return (await retention.run(store, config, dry_run=dry_run)).as_dict()


async def test_retention_purges_old_closed_tickets_spool_bytes_and_sent_mail_on_a_turned_clock(
    make_config: Callable[..., Config], sink: Sink
) -> None:
    config = make_config(AGENTS + RETENTION + relay_section(sink.port))
    shared = b"the same price list everybody sends " * 40
    async with started(config) as running:
        for i in range(3):  # three mails on one ticket: more than one batch
            await customer(running, "Olga <olga@old.test>", "Old matter" if i == 0 else "Re: Old matter [#1000]",
                           f"old words {i}", f"<old-{i}@old.test>",
                           files=(("olga.bin", b"only olga has this " * 50), ("prices.bin", shared)))
        await customer(running, "Nina <nina@new.test>", "Open matter", "new words", "<new-1@new.test>",
                       files=(("nina.bin", b"only nina has this " * 50), ("prices.bin", shared)))
        old, new = await ticket_of(running, "<old-0@old.test>"), await ticket_of(running, "<new-1@new.test>")
        assert old != new
        await wait_mail(sink, "nina@new.test", "Open matter")
        await ok(running, "tickets", "status", str(old), "closed", "--as", "aino")
        # Wait until the sender marked the acknowledgements sent.
        async def all_sent() -> bool:
            return not await value(running, "SELECT COUNT(*) FROM outbox WHERE state = 'queued' OR state = 'sending'")

        await wait_until(all_sent, what="the outbox sent")
        old_messages = await value(running, "SELECT COUNT(*) FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                            " WHERE t.number = ?", (old,))
        new_messages = await value(running, "SELECT COUNT(*) FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                            " WHERE t.number = ?", (new,))
        assert old_messages >= 3 and len(blob_files(config)) == 3
        sent = await value(running, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'")
        assert sent >= 2

        # Today, and five days on: only the spool and outbox limits have not passed either; nothing goes.
        kinds = ("tickets", "messages", "files", "spool", "outbox")
        nothing = await ok(running, "retention", "run")
        assert nothing["dry_run"] is False and {k: nothing[k] for k in kinds} == dict.fromkeys(kinds, 0)
        now = datetime.now(UTC)
        nothing = await retention_at(config, now + timedelta(days=5))
        assert {k: nothing[k] for k in kinds} == dict.fromkeys(kinds, 0)

        dry = await retention_at(config, now + timedelta(days=31), dry_run=True)
        assert dry["tickets"] == 1 and dry["messages"] == old_messages
        assert await value(running, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == sent  # dry: untouched

        done = await retention_at(config, now + timedelta(days=31))
        assert done["tickets"] == 1 and done["messages"] == old_messages and done["files"] == 1
        assert done["outbox"] == sent and done["spool"] >= 1

        # The closed ticket stays, empty, with an event saying what went; the open one is whole.
        assert await value(running, "SELECT COUNT(*) FROM tickets WHERE number = ?", (old,)) == 1
        assert await value(running, "SELECT COUNT(*) FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                    " WHERE t.number = ?", (old,)) == 0
        event = json.loads(await value(running, "SELECT e.data FROM events e JOIN tickets t ON t.id = e.ticket_id"
                                                " WHERE t.number = ? AND e.kind = 'retention.purged'", (old,)))
        assert event["text"] == f"purged {old_messages} messages"
        assert await value(running, "SELECT COUNT(*) FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                    " WHERE t.number = ?", (new,)) == new_messages
        contents = b"".join(p.read_bytes() for p in blob_files(config))
        assert b"only olga" not in contents and b"only nina" in contents and shared in contents
        assert await value(running, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'") == 0
        assert await value(running, "SELECT COUNT(*) FROM spool WHERE length(raw) > 0") == 0

        # The open ticket still shows its customer's words to agents.
        show = await ok(running, "tickets", "show", str(new))
        assert "new words" in json.dumps(show)


async def test_the_daemon_books_a_daily_retention_run_and_a_due_one_purges_at_start(
    make_config: Callable[..., Config], sink: Sink
) -> None:
    config = make_config(AGENTS + RETENTION + relay_section(sink.port))
    async with started(config) as running:
        await customer(running, "Olga <olga@old.test>", "Old matter", "old words", "<old-0@old.test>")
        number = await ticket_of(running, "<old-0@old.test>")
        await ok(running, "tickets", "status", str(number), "closed", "--as", "aino")
        assert await value(running, "SELECT COUNT(*) FROM timers WHERE kind = ?", (retention.RUN,)) == 1
    # The daemon was down when its run fell due: it starts again 40 days on, and runs it at once.
    later = datetime.now(UTC) + timedelta(days=40)
    async with started(config, clock=ManualClock(later)) as running:
        await wait_until(lambda: value(running, "SELECT COUNT(*) FROM events WHERE kind = 'retention.purged'"),
                         what="the retention run")
        assert await value(running, "SELECT COUNT(*) FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                                    " WHERE t.number = ?", (number,)) == 0
        due = await value(running, "SELECT due_at FROM timers WHERE kind = ? AND dead_at IS NULL", (retention.RUN,))
        assert datetime.fromisoformat(due) > later  # the next day's run is booked


async def test_retention_is_off_by_default(make_config: Callable[..., Config]) -> None:
    config = make_config(AGENTS)
    async with started(config) as running:
        assert await value(running, "SELECT COUNT(*) FROM timers") == 0
        answer = await ok(running, "retention", "run")
        assert answer["enabled"] is False


# -- contacts erase --------------------------------------------------------------------------------------

ZELDA = "Zelda Quixotic <Zelda.Q@privacy.test>"
TRACES = [b"zelda.q@privacy.test", b"zelda quixotic", b"quixotic", b"xylophonewombat", b"zanzibarquest",
          b"zeldafilecontent", b"+358 40 1234567", b"vipzeldanote"]


def traces_in(paths: list[Path]) -> set[bytes]:
    found = set()
    for path in paths:
        if path.exists():
            data = path.read_bytes().lower()
            found |= {t for t in TRACES if t in data}
    return found


async def test_erase_leaves_no_trace_of_the_person_while_other_customers_stay(
    make_config: Callable[..., Config], sink: Sink
) -> None:
    config = make_config(AGENTS + relay_section(sink.port))
    carol_file = b"carol keeps this file " * 30
    async with started(config) as running:
        await customer(running, ZELDA, "Secret zanzibarquest plans", "Please help, xylophonewombat is broken.\n",
                       "<a81f3c@mua.test>", files=(("plan.bin", b"zeldafilecontent " * 200),))
        await customer(running, ZELDA, "Re: Secret zanzibarquest plans [#1000]", "More xylophonewombat details.\n",
                       "<a81f3d@mua.test>")
        # Carol copies Zelda in once: that mail went to Zelda too, and goes with her.
        await customer(running, "Carol <carol@other.test>", "Invoice question", "Carol asks about invoices.\n",
                       "<c1@other.test>", cc=ZELDA, files=(("copied.bin", b"sent to zelda too " * 30),))
        await customer(running, "Carol <carol@other.test>", "Another carolword matter", "carolword stays.\n",
                       "<c2@other.test>", files=(("carol.bin", carol_file),))
        await wait_mail(sink, "carol@other.test", "Another carolword matter")
        await wait_mail(sink, "zelda.q@privacy.test", "zanzibarquest")
        await ok(running, "contacts", "edit", "zelda.q@privacy.test", "--name", "Zelda Quixotic",
                 "--organization", "Quixotic Ltd", "--add-phone", "+358 40 1234567")
        await ok(running, "contacts", "note", "add", "zelda.q@privacy.test", "vipzeldanote: likes calls", "--as", "aino")
        zelda_ticket = await ticket_of(running, "<a81f3c@mua.test>")
        carol_ticket = await ticket_of(running, "<c2@other.test>")
        assert traces_in([config.database_path, Path(str(config.database_path) + "-wal"), *blob_files(config)])

        answer = await ok(running, "contacts", "erase", "zelda.q@privacy.test")
        contact = answer["contact"]
        assert answer["placeholder"] == f"erased-{contact}@invalid"
        assert answer["messages"] >= 3 and answer["files"] == 2 and answer["checkpoint"] == "truncated"

        # What agents and operators see now.
        shown = await ok(running, "contacts", "show", str(contact))
        assert shown["name"] == "" and shown["addresses"] == [f"erased-{contact}@invalid"] and shown["notes"] == []
        ticket = await ok(running, "tickets", "show", str(zelda_ticket))
        assert "contact erased by operator" in json.dumps(ticket)
        carol = json.dumps(await ok(running, "tickets", "show", str(carol_ticket)))
        assert "carolword stays" in carol
        # The address is free again: new mail from it is a new contact, with nothing of the old one.
        assert await value(running, "SELECT COUNT(*) FROM contact_addresses WHERE address = 'zelda.q@privacy.test'") == 0

    files = blob_files(config)
    database = [config.database_path, Path(str(config.database_path) + "-wal")]
    assert traces_in([*database, *files]) == set()
    everything = b"".join(p.read_bytes() for p in [*database, *files] if p.exists())
    assert b"sent to zelda too" not in everything
    assert b"carolword stays" in everything and carol_file in everything and b"carol@other.test" in everything


async def test_retention_config_errors_name_file_line_and_key(tmp_path: Path) -> None:
    from .conftest import write_config

    path = write_config(tmp_path, "\n[retention]\nclosed_after_days = -3\n")
    result = run_cli_sync(path, "check-config")
    assert result.exit_code == 1
    line = path.read_text().splitlines().index("closed_after_days = -3") + 1
    assert f"{path}:{line}: retention.closed_after_days:" in result.output
