"""`mailgate db copy` as an operator moving house: a running installation copied, checked, kept up to date, resumed."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailgate import config as config_mod
from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.ops import retention
from mailgate.store import Store
from mailgate.store.copy import DERIVED

from .conftest import SUPPORT, CliResult, run_cli, send, settle, wait_until, write_config
from .sink import AGENTS, Received, Sink, relay_section, wait_mail

pytestmark = pytest.mark.asyncio

AINO = "aino@agents.test"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


def configs(tmp_path: Path, sink: Sink, more: str = "") -> tuple[Config, Config, str]:
    """The installation's config, one for daemons on the copy (same attachments folder), and the copy's URL."""
    extra = relay_section(sink.port, send_delay=0) + AGENTS + more
    kw: dict[str, Any] = {"gateway": 'authserv_id = "mx.example.test"', "smtp": 'trusted_peers = ["127.0.0.1"]'}
    source = config_mod.load(write_config(tmp_path, extra, **kw))
    (tmp_path / "moved").mkdir()
    target = config_mod.load(write_config(tmp_path / "moved", extra,
                                          storage=f'attachments = "{source.attachments_path}"', **kw))
    return source, target, f"sqlite:///{target.database_path}"


def customer_mail(sender: str, subject: str, body: str, message_id: str,
                  files: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = message_id
    msg.set_content(body)
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def customer(running: Running, sender: str, subject: str, body: str, message_id: str,
                   files: tuple[tuple[str, bytes], ...] = ()) -> None:
    await send(running.smtp_port, customer_mail(sender, subject, body, message_id, files),
               sender=sender.split("<")[-1].rstrip(">"))
    await settle(running)


async def agent_answers(running: Running, notice: Received, text: str, *, subject: str | None = None) -> None:
    """Aino answers the notification from Thunderbird: her words above the quoted notice."""
    target = notice.msg["Reply-To"].addresses[0].addr_spec
    msg = EmailMessage()
    msg["From"] = f"Aino Agent <{AINO}>"
    msg["To"] = target
    msg["Subject"] = subject or f"Re: {notice.header('Subject')}"
    msg["Date"] = "Mon, 23 Nov 2026 10:05:00 +0000"
    msg["Message-ID"] = f"<tb.{abs(hash((text, subject)))}@agents.test>"
    msg["In-Reply-To"] = notice.header("Message-ID")
    msg["References"] = notice.header("Message-ID")
    quoted = "\n".join(f"> {line}" if line else ">" for line in notice.text().splitlines())
    msg.set_content(f"{text}\n\nOn 23.11.2026 10:00, Support wrote:\n{quoted}\n")
    raw = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    await send(running.smtp_port, raw, [target], sender=AINO)
    await settle(running)


async def ok(config: Config, *args: str) -> CliResult:
    result = await run_cli(config, *args)
    assert result.exit_code == 0, f"mailgate {' '.join(args)}: exit {result.exit_code}\n{result.output}"
    return result


async def copy(source: Config, url: str, *args: str) -> Any:
    result = await ok(source, "db", "copy", "--to", url, "--json", *args)
    return result.json


async def outbox_done(running: Running) -> bool:
    async with running.store.read() as tx:
        return not await tx.value("SELECT COUNT(*) FROM outbox WHERE state NOT IN ('sent', 'cancelled')")


async def shown(config: Config) -> dict[str, Any]:
    """What agents see: the ticket list and every ticket in full, as JSON."""
    listed = (await ok(config, "tickets", "list", "--json")).json
    return {"list": listed, **{str(t["number"]): (await ok(config, "tickets", "show", str(t["number"]), "--json")).json
                               for t in listed}}


def rows_of(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        found = [tuple(r) for r in db.execute(sql)]
    db.close()
    return found


async def test_a_running_installation_copied_serves_the_same_tickets_and_a_rerun_changes_nothing(
    tmp_path: Path, sink: Sink
) -> None:
    source, target, url = configs(tmp_path, sink)
    async with started(source) as running:
        await customer(running, "Alice Customer <alice@customer.test>", "Invoice 2026-11 is wrong",
                       "Hello,\n\nthe invoice charges us twice.\n", "<inv-1@customer.test>",
                       files=(("invoice-2026-11.pdf", PDF),))
        await customer(running, "Bob Buyer <bob@shop.test>", "Printer jams", "It jams on every page.",
                       "<jam-1@shop.test>")
        await customer(running, "Ćiril Kupac <ciril@kupac.test>", "Zamjena uređaja", "Trebam zamjenu, hvala.",
                       "<zam-1@kupac.test>", files=(("račun.pdf", PDF + b"2"),))
        notice = await wait_mail(sink, AINO, "[#1000]")
        await agent_answers(running, notice, "We refunded the second charge; it shows within 3 days.")
        await wait_mail(sink, "alice@customer.test", "Invoice 2026-11 is wrong", count=2)
        await ok(source, "tickets", "note", "1001", "--as", "aino", "Called Bob: the tray is bent.")
        await ok(source, "tickets", "tag", "1001", "--as", "aino", "+hardware", "+vip")
        await ok(source, "tickets", "snooze", "1001", "3d", "--as", "aino")  # a timer row
        await ok(source, "tickets", "assign", "1002", "--as", "aino", "aino")
        await wait_until(lambda: outbox_done(running), what="every mail handed to the relay")

        first = await copy(source, url)
        assert first["ok"] and first["mismatched"] == [] and first["deleted"] == 0
        assert first["attachments"] == str(source.attachments_path)
        tables = {t["table"]: t for t in first["tables"]}
        assert tables["tickets"]["rows"] == tables["tickets"]["target_rows"] == 3
        assert tables["attachments"]["rows"] == 2 and tables["timers"]["rows"] >= 1
        assert all(t["ok"] and t["sha256"] == t["target_sha256"] for t in first["tables"])
        assert not {"schema_version", "search_text", "search_text_data", "sqlite_sequence"} & set(tables)

        # Nothing happened since: a second run copies nothing, and says so.
        again = await run_cli(source, "db", "copy", "--to", url, "--quiet")
        assert again.exit_code == 0, again.output
        assert "nothing to copy, the target already equals the source" in again.stdout
        assert "every table matches" in again.stdout
        assert f'[storage] attachments = "{source.attachments_path}"' in again.stdout
        before = await shown(source)
    # Counters a trigger keeps (open tickets per agent, Message-IDs) equal the source's, not doubled.
    for table in ("agent_open", "message_ids"):
        assert rows_of(source.database_path, f"SELECT * FROM {table} ORDER BY 1") == rows_of(
            target.database_path, f"SELECT * FROM {table} ORDER BY 1")
    assert rows_of(target.database_path, "SELECT open FROM agent_open WHERE agent = 'aino'") == [(1,)]
    # AUTOINCREMENT counters go on from the source's: an outbox id names a VERP address, never reused.
    assert rows_of(target.database_path, "SELECT name, seq FROM sqlite_sequence ORDER BY name") == rows_of(
        source.database_path, "SELECT name, seq FROM sqlite_sequence ORDER BY name")

    async with started(target) as moved:
        assert await shown(target) == before
        # The copy's daemon goes on where the source stopped: the next mail gets the next number,
        # its search finds the copied mail, and the customer's file reaches the agent from the shared folder.
        await customer(moved, "Alice Customer <alice@customer.test>", "Another question", "Is the refund done?",
                       "<inv-2@customer.test>")
        listed = (await ok(target, "tickets", "list", "--json")).json
        assert max(t["number"] for t in listed) == 1003
        found = (await ok(target, "tickets", "search", "charges twice", "--json")).json
        assert [h["number"] for h in found["hits"]] == [1000]
        await wait_mail(sink, AINO, "[#1003]")
        await agent_answers(moved, notice, "", subject=f"Re: [files:1] {notice.header('Subject')}")
        files = await wait_mail(sink, AINO, "Files of [#1000]")
        assert [(p.get_filename(), p.get_payload(decode=True)) for p in files.msg.iter_attachments()] == [
            ("invoice-2026-11.pdf", PDF)]


async def test_a_ticket_changed_after_the_copy_is_brought_up_to_date_by_the_next_run(tmp_path: Path, sink: Sink) -> None:
    source, target, url = configs(tmp_path, sink)
    async with started(source) as running:
        await customer(running, "Alice Customer <alice@customer.test>", "Login fails", "Password reset loops.",
                       "<login-1@customer.test>")
        await customer(running, "Bob Buyer <bob@shop.test>", "Order 7781 missing", "Where is my order?",
                       "<order-1@shop.test>", files=(("receipt.pdf", PDF),))
        await ok(source, "tickets", "assign", "1000", "--as", "aino", "aino")
        await wait_until(lambda: outbox_done(running), what="acknowledgements sent")
        assert (await copy(source, url))["ok"]

        # After the copy: a ticket closed, a new customer mail, and a customer erased (rows gone).
        await ok(source, "tickets", "status", "1000", "--as", "aino", "closed")
        await customer(running, "Alice Customer <alice@customer.test>", "Login works now", "Thanks, solved.",
                       "<login-2@customer.test>")
        await ok(source, "contacts", "erase", "bob@shop.test", "--no-vacuum")
        await wait_until(lambda: outbox_done(running), what="acknowledgements sent")

        second = await copy(source, url)
        tables = {t["table"]: t for t in second["tables"]}
        assert second["ok"] and second["mismatched"] == []
        assert tables["tickets"]["updated"] >= 1 and tables["messages"]["inserted"] >= 1
        # Erasing redacts Bob's messages in place and removes his file, its blob row and his queued mail.
        assert tables["messages"]["updated"] >= 1
        assert tables["attachments"]["deleted"] == tables["blobs"]["deleted"] == 1 and tables["outbox"]["deleted"] >= 1
        shown_source = (await ok(source, "tickets", "show", "1000", "--json")).json
        after = await shown(source)
    assert shown_source["status"] == "closed"
    assert await shown(target) == after
    # The closed ticket no longer counts as Aino's open ticket on the copy either.
    assert rows_of(target.database_path, "SELECT agent, open FROM agent_open") == rows_of(
        source.database_path, "SELECT agent, open FROM agent_open")
    # The erased customer's words are gone from the copy's search too (its index follows its messages).
    assert (await ok(target, "tickets", "search", "order", "--json")).json["hits"] == []
    assert (await copy(source, url))["changes"] == 0


async def test_mail_retention_removed_from_the_source_goes_from_the_copy_too(tmp_path: Path, sink: Sink) -> None:
    source, target, url = configs(tmp_path, sink, "\n[retention]\nclosed_after_days = 30\nspool_after_days = 10\n")
    async with started(source) as running:
        await customer(running, "Olga <olga@old.test>", "Old matter", "Settled long ago.", "<old-1@old.test>",
                       files=(("contract.pdf", PDF),))
        for i in range(2):
            await customer(running, f"Nina {i} <nina{i}@new.test>", f"Open matter {i}", "Still going.", f"<new-{i}@new.test>")
        await ok(source, "tickets", "status", "1000", "--as", "aino", "closed")
        await wait_until(lambda: outbox_done(running), what="acknowledgements sent")
    assert (await copy(source, url))["ok"]

    # Forty days on, the daemon's daily retention purges the closed ticket and every spooled mail's bytes.
    async with Store(source.database_path, clock=ManualClock(datetime.now(UTC) + timedelta(days=40))) as store:
        purged = await retention.run(store, source)
    assert purged.as_dict()["tickets"] == 1
    again = await copy(source, url)
    tables = {t["table"]: t for t in again["tables"]}
    # The ticket stays (its number is history); its mail, file, blob row and spooled mail go, here as there.
    assert again["ok"] and tables["messages"]["deleted"] == 2 and tables["attachments"]["deleted"] == 1
    assert tables["blobs"]["deleted"] == 1 and tables["spool"]["deleted"] >= 1 and tables["tickets"]["deleted"] == 0
    assert rows_of(target.database_path, "SELECT COUNT(*) FROM messages WHERE ticket_id = 1") == [(0,)]
    assert await shown(target) == await shown(source)


async def test_a_copy_that_failed_halfway_completes_on_the_next_run(tmp_path: Path, sink: Sink) -> None:
    source, target, url = configs(tmp_path, sink)
    async with started(source) as running:
        for i in range(7):
            await customer(running, f"Customer {i} <c{i}@customer.test>", f"Question {i}", f"words {i} " * 50,
                           f"<q-{i}@customer.test>")
        await wait_until(lambda: outbox_done(running), what="acknowledgements sent")
    # Fault injection: the target's disk fills up while messages go in, after the tables before them.
    async with Store(target.database_path):
        pass
    with sqlite3.connect(target.database_path) as db:
        db.execute("CREATE TRIGGER disk_full BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    db.close()
    failed = await run_cli(source, "db", "copy", "--to", url, "--quiet", "--batch", "3")
    assert failed.exit_code == 75, failed.output
    assert "database or disk is full" in failed.stderr and "run again" in failed.stderr
    assert rows_of(target.database_path, "SELECT COUNT(*) FROM tickets") == [(7,)]
    assert rows_of(target.database_path, "SELECT COUNT(*) FROM messages") == [(0,)]

    with sqlite3.connect(target.database_path) as db:
        db.execute("DROP TRIGGER disk_full")  # space freed
    db.close()
    resumed = await copy(source, url, "--batch", "3")
    assert resumed["ok"] and resumed["mismatched"] == []
    tables = {t["table"]: t for t in resumed["tables"]}
    assert tables["tickets"]["inserted"] == 0 and tables["messages"]["inserted"] == tables["messages"]["rows"] > 7
    assert await shown(target) == await shown(source)


def copy_killed_at(source: Config, url: str, label: str) -> str:
    """`mailgate db copy` in its own process, killed (as by the OOM killer or a lost ssh session) once its
    progress names `label`; what it had printed by then."""
    proc = subprocess.Popen([sys.executable, "-m", "mailgate", "--config", str(source.source), "db", "copy",
                             "--to", url, "--batch", "2"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if label in line:
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    return "".join(seen)


async def test_a_copy_killed_midway_completes_on_the_next_run(tmp_path: Path, sink: Sink) -> None:
    source, target, url = configs(tmp_path, sink)
    async with started(source) as running:
        for i in range(6):
            await customer(running, f"Customer {i} <k{i}@customer.test>", f"Order {i}", f"parcel {i} " * 40,
                           f"<k-{i}@customer.test>", files=((f"photo{i}.pdf", PDF + bytes([i])),))
        await wait_until(lambda: outbox_done(running), what="acknowledgements sent")
    printed = await asyncio.to_thread(copy_killed_at, source, url, "copy messages")
    assert "copy tickets" in printed and "copy messages" in printed
    assert rows_of(target.database_path, "SELECT COUNT(*) FROM tickets") == [(6,)]  # done before messages began

    resumed = await copy(source, url, "--batch", "2")
    tables = {t["table"]: t for t in resumed["tables"]}
    assert resumed["ok"] and resumed["mismatched"] == [] and tables["tickets"]["inserted"] == 0
    assert tables["attachments"]["rows"] == tables["attachments"]["target_rows"] == 6
    assert await shown(target) == await shown(source)


async def test_a_copy_while_the_daemon_takes_mail_says_so_and_the_run_after_it_stops_matches(
    tmp_path: Path, sink: Sink
) -> None:
    source, target, url = configs(tmp_path, sink)
    async with started(source) as running:
        for i in range(4):
            await customer(running, f"Early {i} <e{i}@customer.test>", f"Early {i}", "before the move", f"<e-{i}@customer.test>")
        copying = asyncio.create_task(run_cli(source, "db", "copy", "--to", url, "--batch", "1", "--quiet"))
        sent = 0
        while (not copying.done() and sent < 20) or sent == 0:
            await send(running.smtp_port, customer_mail(f"Late <l{sent}@customer.test>", f"During the move {sent}",
                                                        "sent while copying", f"<l-{sent}@customer.test>"),
                       sender=f"l{sent}@customer.test")
            sent += 1
        during = await copying
        await settle(running)
        await wait_until(lambda: outbox_done(running), what="acknowledgements sent")
    # Mail that came in while it ran may have missed tables already copied: then the check says so
    # and asks for another run (75, EX_TEMPFAIL) instead of passing off a half-copy as whole.
    assert during.exit_code in (0, 75), during.output
    if during.exit_code == 75:
        assert "the source was written during the copy" in during.stderr and "MISMATCH" in during.stderr
    final = await copy(source, url)
    assert final["ok"] and final["written_meanwhile"] == []
    assert rows_of(target.database_path, "SELECT COUNT(*) FROM tickets") == [(4 + sent,)]
    assert (await ok(target, "tickets", "list", "--json")).json == (await ok(source, "tickets", "list", "--json")).json


async def test_a_password_in_the_url_is_never_shown(tmp_path: Path, sink: Sink) -> None:
    source, _target, _url = configs(tmp_path, sink)
    async with started(source):
        pass
    refused = await run_cli(source, "db", "copy", "--to", "postgresql://mailgate:s3cr%2Ft@db.example.test:5432/helpdesk")
    assert refused.exit_code == 2 and "s3cr" not in refused.output
    assert "postgresql://mailgate:***@db.example.test:5432/helpdesk" in refused.output


async def test_the_target_of_another_installation_is_refused_and_a_mismatch_is_named(tmp_path: Path, sink: Sink) -> None:
    source, target, url = configs(tmp_path, sink)
    async with started(target) as other:
        await customer(other, "Dora <dora@elsewhere.test>", "Unrelated", "Another help desk's ticket.",
                       "<other-1@elsewhere.test>")
    async with started(source) as running:
        await customer(running, "Alice Customer <alice@customer.test>", "Mine", "Our ticket.", "<mine-1@customer.test>")
    refused = await run_cli(source, "db", "copy", "--to", url)
    assert refused.exit_code == 1 and "another installation" in refused.output
    assert rows_of(target.database_path, "SELECT subject FROM tickets") == [("Unrelated",)]
    assert (await run_cli(source, "db", "copy", "--to", f"sqlite:///{source.database_path}")).exit_code == 2


async def test_db_status_shows_engine_url_schema_and_rows(tmp_path: Path, sink: Sink) -> None:
    source, _target, _url = configs(tmp_path, sink)
    async with started(source) as running:
        await customer(running, "Alice Customer <alice@customer.test>", "Hello", "A question.", "<s-1@customer.test>")
    data = (await ok(source, "db", "status", "--json")).json
    assert data["engine"] == "sqlite" and data["url"] == f"sqlite:///{source.database_path.resolve()}"
    assert data["state"] == "current" and data["schema"] == data["known"]
    assert data["tables"]["tickets"] == 1 and data["tables"]["messages"] >= 1 and "search_text" not in data["tables"]
    text = (await ok(source, "db", "status")).stdout
    assert re.search(r"^\s+tickets\s+1$", text, re.M)


async def test_every_table_a_trigger_writes_is_synced_after_the_tables_that_fire_it(tmp_path: Path) -> None:
    async with Store(tmp_path / "schema.sqlite3"):
        pass
    written: set[str] = set()
    for (sql,) in rows_of(tmp_path / "schema.sqlite3", "SELECT sql FROM sqlite_master WHERE type = 'trigger'"):
        body = sql.split("BEGIN", 1)[1]  # past "AFTER UPDATE OF"; "DO UPDATE SET" is the same table
        written |= set(re.findall(r"(?:INSERT INTO|(?<!DO )UPDATE) (\w+)", body))
    assert "agent_open" in written and written - {"search_text"} <= set(DERIVED)
