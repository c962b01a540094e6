"""`mailgate ingest` as an MTA pipe and importer, run as a real process: sysexits codes, import marks."""

from __future__ import annotations

import json
import mailbox
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from .conftest import mail, write_config


def mailgate(config: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def rows(config: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(config.parent / "mailgate.sqlite3") as db:
        return db.execute(sql).fetchall()


def test_pipe_from_stdin_makes_a_ticket(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    raw = mail(message_id="<pipe1@customer.test>")
    result = mailgate(config, "ingest", "--sender", "alice@customer.test", "--recipient", "support@example.test", stdin=raw)
    assert result.returncode == 0, result.stderr
    assert rows(config, "SELECT raw, mail_from, rcpt_to, source, imported FROM spool") == [
        (raw, "alice@customer.test", '["support@example.test"]', "pipe", 0)
    ]
    listed = json.loads(mailgate(config, "tickets", "list", "--json").stdout)
    assert [t["subject"] for t in listed] == ["Printer on fire"]
    shown = json.loads(mailgate(config, "tickets", "show", str(listed[0]["number"]), "--json").stdout)
    (message,) = shown["messages"]
    assert message["direction"] == "in" and message["from"]["address"] == "alice@customer.test"
    assert "the printer is on fire" in message["reply_text"]
    # The same bytes piped again (an MTA retry) are acknowledged without a second row.
    assert mailgate(config, "ingest", stdin=raw).returncode == 0
    assert rows(config, "SELECT COUNT(*) FROM spool") == [(1,)]


def test_files_mbox_and_maildir_imports_are_marked(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    box = mailbox.mbox(str(tmp_path / "old.mbox"))
    for i in range(3):
        box.add(mail(message_id=f"<mbox{i}@customer.test>", subject=f"old {i}"))
    box.close()
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
    for i in range(2):
        maildir.add(mail(message_id=f"<md{i}@customer.test>", subject=f"maildir {i}"))
    (tmp_path / "one.eml").write_bytes(mail(message_id="<file@customer.test>", subject="from a file"))

    assert mailgate(config, "ingest", "--mbox", str(tmp_path / "old.mbox")).returncode == 0
    assert mailgate(config, "ingest", "--maildir", str(tmp_path / "Maildir")).returncode == 0
    assert mailgate(config, "ingest", str(tmp_path / "one.eml")).returncode == 0
    found = rows(config, "SELECT subject, imported FROM messages ORDER BY id")
    assert found == [("old 0", 1), ("old 1", 1), ("old 2", 1), ("maildir 0", 1), ("maildir 1", 1), ("from a file", 0)]


def test_exit_codes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert mailgate(config, "ingest", stdin=b"").returncode == os.EX_DATAERR
    assert mailgate(config, "ingest", str(tmp_path / "missing.eml")).returncode == os.EX_NOINPUT
    # The store cannot be opened (its folder is a file): 75, so the MTA keeps the mail and retries.
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "var").write_text("not a folder")
    unusable = write_config(blocked, storage='database = "var/db.sqlite3"')
    text = unusable.read_text().replace('database = "mailgate.sqlite3"\n', "")
    unusable.write_text(text)
    result = mailgate(unusable, "ingest", stdin=mail())
    assert result.returncode == os.EX_TEMPFAIL, result.stderr
    # A broken config is also a temporary failure for the pipe: the operator fixes it, the MTA retries.
    broken = tmp_path / "broken.toml"
    broken.write_text("[gateway\n")
    assert mailgate(broken, "ingest", stdin=mail()).returncode == os.EX_TEMPFAIL


def test_broken_mime_is_kept_and_threaded(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    raw = (
        b"From: =?x-unknown?B?QWxpY2U=?= <alice@customer.test>\r\nTo: undisclosed-recipients:;>\r\n"
        b"Subject: caf\xe9 broken\r\nContent-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
        b"--zz\r\nContent-Type: text/plain; charset=bogus-charset\r\n\r\nBody \xff text\r\n"
    )
    result = mailgate(config, "ingest", stdin=raw)
    assert result.returncode == 0, result.stderr
    assert rows(config, "SELECT raw FROM spool") == [(raw,)]
    ((subject, defects),) = rows(config, "SELECT subject, defects FROM messages")
    assert subject.startswith("caf") and "broken" in subject
    assert json.loads(defects)


def test_spool_replay_rebuilds_the_same_tickets(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    first = mail(message_id="<r1@customer.test>", subject="Case one")
    reply = mail(message_id="<r2@customer.test>", subject="Re: Case one", in_reply_to="<r1@customer.test>")
    other = mail(message_id="<r3@customer.test>", subject="Case two")
    for raw in (first, reply, other):
        assert mailgate(config, "ingest", stdin=raw).returncode == 0
    before = rows(config, "SELECT t.number, m.message_id, m.thread_rule FROM messages m JOIN tickets t ON t.id = m.ticket_id ORDER BY m.id")
    result = mailgate(config, "spool", "replay", "--into", str(tmp_path / "rebuilt.sqlite3"))
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "rebuilt.sqlite3") as db:
        after = db.execute("SELECT t.number, m.message_id, m.thread_rule FROM messages m JOIN tickets t ON t.id = m.ticket_id ORDER BY m.id").fetchall()
    assert after == before and [r[2] for r in after] == ["new", "header", "new"]
    assert mailgate(config, "spool", "replay", "--into", str(tmp_path / "rebuilt.sqlite3")).returncode == 1
