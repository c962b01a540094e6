"""Moving a SQLite installation to PostgreSQL with `mailgate db copy`: the copy serves what the source did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailgate import config as config_mod
from mailgate.daemon import started

from .conftest import run_cli, wait_until, write_config
from .sink import AGENTS, Sink, relay_section, wait_mail
from .test_db_copy import AINO, PDF, agent_answers, copy, customer, ok, outbox_done, shown

pytestmark = pytest.mark.asyncio


async def test_a_sqlite_installation_copied_to_postgresql_serves_the_same_tickets(
    tmp_path: Path, sink: Sink, pg_url: str
) -> None:
    extra = relay_section(sink.port, send_delay=0) + AGENTS
    kw: dict[str, Any] = {"gateway": 'authserv_id = "mx.example.test"', "smtp": 'trusted_peers = ["127.0.0.1"]'}
    source = config_mod.load(write_config(tmp_path, extra, storage='database = "mailgate.sqlite3"', **kw))
    (tmp_path / "moved").mkdir()
    target = config_mod.load(write_config(
        tmp_path / "moved", extra, storage=f'url = "{pg_url}"\nattachments = "{source.attachments_path}"', **kw))
    async with started(source) as running:
        await customer(running, "Alice Customer <alice@customer.test>", "Invoice 2026-11 is wrong",
                       "Hello,\n\nthe invoice charges us twice.\n\0", "<inv-1@customer.test>",
                       files=(("invoice-2026-11.pdf", PDF),))
        await customer(running, "Ćiril Kupac <ciril@kupac.test>", "Zamjena uređaja", "Trebam zamjenu, hvala.",
                       "<zam-1@kupac.test>", files=(("račun.pdf", PDF + b"2"),))
        notice = await wait_mail(sink, AINO, "[#1000]")
        await agent_answers(running, notice, "We refunded the second charge; it shows within 3 days.")
        await wait_mail(sink, "alice@customer.test", "Invoice 2026-11 is wrong", count=2)
        await ok(source, "tickets", "note", "1001", "--as", "aino", "Called Ćiril: the unit is bent.")
        await ok(source, "tickets", "tag", "1001", "--as", "aino", "+hardware", "+vip")
        await ok(source, "tickets", "snooze", "1001", "3d", "--as", "aino")  # a timer row
        await wait_until(lambda: outbox_done(running), what="every mail handed to the relay")

        first = await copy(source, pg_url)
        assert first["ok"] and first["mismatched"] == [], first
        tables = {t["table"]: t for t in first["tables"]}
        assert tables["tickets"]["target_rows"] == 2 and tables["attachments"]["target_rows"] == 2
        assert all(t["ok"] for t in first["tables"])
        again = await run_cli(source, "db", "copy", "--to", pg_url, "--quiet")
        assert again.exit_code == 0, again.output
        assert "nothing to copy" in again.stdout
        before = await shown(source)

    status = (await run_cli(target, "db", "status", "--json")).json
    assert status["engine"] == "postgresql" and status["state"] == "current" and status["tables"]["tickets"] == 2
    assert "@" in status["url"] and "sslmode" not in status["url"]
    async with started(target) as moved:
        assert await shown(target) == before
        # The copy's daemon goes on where the source stopped: the next number, and outbox ids past the
        # source's (a VERP address names its row), and the shared attachment folder serves old files.
        await customer(moved, "Alice Customer <alice@customer.test>", "Another question", "Is the refund done?",
                       "<inv-2@customer.test>")
        listed = (await ok(target, "tickets", "list", "--json")).json
        assert max(t["number"] for t in listed) == 1002
        await wait_mail(sink, AINO, "[#1002]")
        await agent_answers(moved, notice, "", subject=f"Re: [files:1] {notice.header('Subject')}")
        files = await wait_mail(sink, AINO, "Files of [#1000]")
        assert [(p.get_filename(), p.get_payload(decode=True)) for p in files.msg.iter_attachments()] == [
            ("invoice-2026-11.pdf", PDF)]
