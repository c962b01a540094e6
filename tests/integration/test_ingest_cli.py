"""`mailgate ingest` as an MTA pipe and importer, run as a real process: sysexits codes, import marks."""

from __future__ import annotations

import asyncio
import json
import mailbox
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.daemon import started

from .conftest import mail, settle, write_config
from .sink import AGENTS, Sink, relay_section


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


# --- Behind Postfix: pipe(8) argument shapes, the null sender, status lines, postfix-config ---------

DSN_LIKE = mail(
    # An autoresponder that marks itself only by the null reverse-path (no Auto-Submitted header):
    # RFC 3834 asks responders for MAIL FROM:<>, and Postfix's pipe(8) passes that as MAILER-DAEMON.
    sender="Alice Customer <alice@customer.test>",
    subject="Thank you for your message",
    body="I am away until Monday and will read your message then.\n",
    message_id="<away1@customer.test>",
)


def postfix_argv(line: str, *, sender: str, recipients: list[str]) -> list[str]:
    """The argv Postfix's pipe(8) runs for a master.cf argv= line: an argument holding ${recipient}
    becomes one argument per recipient; ${sender} of a null sender is MAILER-DAEMON by default."""
    argv: list[str] = []
    for arg in line.split("argv=", 1)[1].split():
        if "${recipient}" in arg:
            argv += [arg.replace("${recipient}", r) for r in recipients]
        else:
            argv.append(arg.replace("${sender}", sender))
    return argv


def run_argv(argv: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60)


def test_postfix_pipe_line_takes_every_recipient_and_the_null_sender(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    printed = mailgate(config, "postfix-config", "--pipe", "--command", "MAILGATE")
    assert printed.returncode == 0, printed.stderr
    text = printed.stdout.decode()
    (line,) = [x for x in text.splitlines() if "argv=" in x]
    argv = postfix_argv(line, sender="MAILER-DAEMON", recipients=["support@example.test", "billing+x1@example.test"])
    assert argv[0] == "MAILGATE" and "--config" in argv
    result = run_argv([sys.executable, "-m", "mailgate", *argv[1:]], DSN_LIKE)
    assert result.returncode == 0, result.stderr
    assert rows(config, "SELECT mail_from, rcpt_to FROM spool") == [("", '["support@example.test", "billing+x1@example.test"]')]
    # The transport map names the bounce address too (VERP return path), with the "+" delimiter set.
    assert "bounces@example.test  mailgate:" in text and "recipient_delimiter = +" in text
    assert "transport_maps = hash:/etc/postfix/mailgate_transport" in text


def test_old_readme_pipe_line_with_two_recipients_is_not_a_bounce(tmp_path: Path) -> None:
    """`--recipient ${recipient}` expands to `--recipient a b`: b was read as a file (exit 66, bounced)."""
    config = write_config(tmp_path)
    raw = mail(message_id="<two@customer.test>")
    result = mailgate(config, "ingest", "--sender", "MAILER-DAEMON", "--recipient", "support@example.test",
                      "billing@example.test", stdin=raw)
    assert result.returncode == 0, result.stderr
    result = mailgate(config, "ingest", "--sender", "<>", "--", "support+a@example.test", "billing@example.test",
                      stdin=mail(message_id="<three@customer.test>"))
    assert result.returncode == 0, result.stderr
    assert rows(config, "SELECT mail_from, rcpt_to FROM spool ORDER BY id") == [
        ("", '["support@example.test", "billing@example.test"]'),
        ("", '["support+a@example.test", "billing@example.test"]'),
    ]
    # A file after the recipients is still a file (an import by hand).
    (tmp_path / "one.eml").write_bytes(mail(message_id="<file2@customer.test>"))
    by_hand = mailgate(config, "ingest", "--recipient", "support@example.test", str(tmp_path / "one.eml"))
    assert by_hand.returncode == 0, by_hand.stderr
    assert rows(config, "SELECT rcpt_to, source_ref FROM spool ORDER BY id DESC LIMIT 1") == [
        ('["support@example.test"]', str(tmp_path / "one.eml"))
    ]
    # A sender is kept as given (angle brackets off); only the null sender's spellings become "".
    assert mailgate(config, "ingest", "--sender", "<bob@customer.test>", stdin=mail(message_id="<b@customer.test>")).returncode == 0
    assert rows(config, "SELECT mail_from FROM spool ORDER BY id DESC LIMIT 1") == [("bob@customer.test",)]


def test_failures_start_with_an_enhanced_status_and_keep_the_mail(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    # A master.cf typo: 75 and 4.x.x, so Postfix defers (keeps the mail) instead of bouncing it.
    typo = mailgate(config, "ingest", "--sendr", "a@customer.test", stdin=mail())
    assert typo.returncode == os.EX_TEMPFAIL
    assert typo.stderr.decode().startswith("4.3.5 mailgate ingest: No such option")
    empty = mailgate(config, "ingest", stdin=b"")
    assert empty.returncode == os.EX_DATAERR and empty.stderr.decode().startswith("5.6.0 ")
    missing = mailgate(config, "ingest", str(tmp_path / "missing.eml"))
    assert missing.returncode == os.EX_NOINPUT and missing.stderr.decode().startswith("5.3.0 ")
    broken = tmp_path / "broken.toml"
    broken.write_text("[gateway\n")
    failed = mailgate(broken, "ingest", stdin=mail())
    assert failed.returncode == os.EX_TEMPFAIL
    first, *rest = failed.stderr.decode().splitlines()
    # The status line comes first (pipe(8) reads it only there); the details follow in the log.
    assert first == "4.3.5 mailgate: config unusable, try again later"
    assert any("ingest.config_error" in x and "broken.toml:1" in x for x in rest)


def test_postfix_config_lmtp_lines_follow_the_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, '\n[outbox]\nbounce_address = "returns@bounce.example.test"\n',
                          smtp='lmtp = true\nmax_connections_per_peer = 8')
    text = config.read_text().replace('listen = "127.0.0.1:0"', 'listen = "0.0.0.0:2424"')
    config.write_text(text)
    printed = mailgate(config, "postfix-config")
    assert printed.returncode == 0, printed.stderr
    out = printed.stdout.decode().splitlines()
    assert "mailgate  unix  -       -       n       -       8       lmtp" in out
    assert "mailgate_destination_concurrency_limit = 8" in out
    assert "relay_domains = bounce.example.test, example.test" in out
    for address in ("support@example.test", "billing@example.test", "returns@bounce.example.test"):
        assert any(x.startswith(address) and x.endswith("mailgate:inet:127.0.0.1:2424") for x in out), out


@pytest.mark.asyncio
async def test_null_sender_through_the_pipe_gets_no_acknowledgement(tmp_path: Path, sink: Sink) -> None:
    """Postfix passes MAIL FROM:<> as MAILER-DAEMON; it was stored as a sender and acknowledged."""
    config = config_mod.load(write_config(tmp_path, relay_section(sink.port, send_delay=0.2) + AGENTS))
    path = config.source
    assert path is not None
    async with started(config) as running:
        away = await asyncio.to_thread(mailgate, path, "ingest", "--sender=MAILER-DAEMON",
                                       "--recipient=support@example.test", stdin=DSN_LIKE)
        assert away.returncode == 0, away.stderr
        person = await asyncio.to_thread(mailgate, path, "ingest", "--sender=bob@customer.test",
                                         "--recipient=support@example.test",
                                         stdin=mail(sender="Bob <bob@customer.test>", message_id="<bob1@customer.test>"))
        assert person.returncode == 0, person.stderr
        await settle(running)
        await sink.wait_for(lambda r: any("bob@customer.test" in m.rcpt_tos for m in r))
        async with running.store.read() as tx:
            acks = await tx.all("SELECT rcpt_to FROM outbox WHERE kind = 'ack'")
    assert [a["rcpt_to"] for a in acks] == ["bob@customer.test"]
    assert not sink.to("alice@customer.test")
    assert rows(path, "SELECT mail_from FROM spool ORDER BY id") == [("",), ("bob@customer.test",)]
