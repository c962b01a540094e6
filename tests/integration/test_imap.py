"""IMAP intake against a real Dovecot on 127.0.0.1: after-store actions, IDLE, restarts, kill -9, UIDVALIDITY, bad logins."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from imapclient import SEEN  # type: ignore[import-untyped]

from mailgate import config as config_mod
from mailgate.config import Config, ConfigError
from mailgate.daemon import Running, started
from mailgate.sources.imap import AccountWorker
from mailgate.sources.imap_auth import CredentialsUnavailable, credentials
from mailgate.sources.imap_session import fetched_bodies, uid_set
from mailgate.store import store_for

from .conftest import REPO, SUPPORT, mail, run_cli, send, settle, write_config
from .dovecot import Dovecot, find_dovecot

USER, PASSWORD = "mailgate", "mailgate-secret"
OTHER, OTHER_PASSWORD = "billing", "billing-secret"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    binary = find_dovecot()
    if binary is None:
        pytest.skip("no dovecot binary on this machine (Debian: apt-get install dovecot-imapd); IMAP tests need a real server")
    server = Dovecot(binary, {USER: PASSWORD, OTHER: OTHER_PASSWORD})
    server.start()
    yield server
    server.cleanup()


def account(server: Dovecot, name: str = "inbox", user: str = USER, password: str = PASSWORD, **options: object) -> str:
    """One [[imap]] table for the fixture's server."""
    settings: dict[str, object] = {
        "name": name, "host": server.host, "port": server.port, "security": "none",
        "username": user, "password": password, "poll_interval": 600, "batch_size": 5,
    }
    settings.update(options)
    return "\n[[imap]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())


def customer_mail(n: int, **kw: str) -> bytes:
    headers = {"Return-Path": "<alice@customer.test>", "Delivered-To": SUPPORT}
    return mail(subject=f"Question {n}", message_id=f"<q{n}@customer.test>", body=f"Question number {n}.\n", headers=headers, **kw)


async def worker_of(running: Running, name: str = "inbox") -> AccountWorker:
    assert running.imap is not None
    return running.imap.workers[name]


async def count(running: Running, sql: str, params: tuple[object, ...] = ()) -> int:
    async with running.store.read() as tx:
        return int(await tx.value(sql, params))


def folder_state(server: Dovecot, folder: str = "INBOX", user: str = USER) -> dict[int, tuple[bytes, ...]]:
    """UID → flags of every message in a folder, as another client sees it."""
    client = server.client(user)
    try:
        if not client.folder_exists(folder):
            return {}
        client.select_folder(folder, readonly=True)
        return {uid: data[b"FLAGS"] for uid, data in client.fetch(client.search("ALL"), ["FLAGS"]).items()}
    finally:
        client.logout()


# -- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ('host = "imap.example.com"\nsecurity = "none"\nusername = "u"\npassword = "p"', "imap.0.security", "loopback"),
        ('host = "imap.example.com"\nusername = "u"\npassword = "p"\npassword_env = "P"', "imap.0.password_env", "two ways"),
        ('host = "imap.example.com"\nusername = "u"', "imap.0.password", "give one of"),
        ('host = "h"\nusername = "u"\npassword = "p"\nafter_store = "move"', "imap.0.move_to", "needs move_to"),
        ('host = "h"\nusername = "u"\npassword = "p"\nafter_store = "archive"', "imap.0.after_store", "'seen', 'move' or 'delete'"),
        ('host = "h"\nusername = "u"\npassword = "p"\nbatch_size = 0', "imap.0.batch_size", "greater than or equal to 1"),
        ('host = "h"\nusername = "u"\npassword = "p"\naddress = "sales@example.test"', "imap.0.address", "not in gateway.addresses"),
    ],
)
def test_config_errors_name_the_line_and_key(tmp_path: Path, table: str, key: str, message: str) -> None:
    path = write_config(tmp_path, f'\n[[imap]]\nname = "main"\n{table}\n')
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    issue = caught.value.issues[0]
    lines = path.read_text().splitlines()
    assert (issue.key, message in issue.message) == (key, True), str(caught.value)
    assert issue.line is not None and (key.rsplit(".", 1)[1] in lines[issue.line - 1] or "[[imap]]" in lines[issue.line - 1])


def test_config_accepts_every_way_of_logging_in(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    tables = "".join(
        f'\n[[imap]]\nname = "a{i}"\nhost = "imap.example.com"\nusername = "u"\n{login}\n'
        for i, login in enumerate(
            ['password = "p"', 'password_file = "pw"', 'password_env = "IMAP_PW"',
             'oauth2_token_file = "token"', "oauth2_token_command = \"/bin/echo 'a token'\""]
        )
    )
    config = config_mod.load(write_config(tmp_path, tables))
    assert [a.effective_port for a in config.imap] == [993] * 5
    assert config.imap[1].password_file == tmp_path / "pw"  # relative to the config file
    assert config.imap[4].oauth2_token_command == ("/bin/echo", "a token")


def test_login_secrets_are_read_at_login_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    (tmp_path / "token").write_text("tok-123\n")
    monkeypatch.setenv("MG_TEST_IMAP_PW", "from-env")
    logins = {
        "password_file": '"pw"', "password_env": '"MG_TEST_IMAP_PW"', "oauth2_token_file": '"token"',
        "oauth2_token_command": '["/bin/echo", "tok-456"]',
    }
    tables = "".join(
        f'\n[[imap]]\nname = "a{i}"\nhost = "imap.example.com"\nusername = "u"\n{key} = {value}\n'
        for i, (key, value) in enumerate(logins.items())
    )
    config = config_mod.load(write_config(tmp_path, tables))
    got = [(c.mechanism, c.secret) for c in map(credentials, config.imap)]
    assert got == [("password", "from-file"), ("password", "from-env"), ("xoauth2", "tok-123"), ("xoauth2", "tok-456")]
    assert "from-file" not in repr(credentials(config.imap[0]))
    monkeypatch.delenv("MG_TEST_IMAP_PW")
    (tmp_path / "pw").unlink()
    for account, message in ((config.imap[0], "cannot read password_file"), (config.imap[1], "MG_TEST_IMAP_PW is not set")):
        with pytest.raises(CredentialsUnavailable, match=message):
            credentials(account)
    failing = config.imap[3].model_copy(update={"oauth2_token_command": ("/bin/false",)})
    with pytest.raises(CredentialsUnavailable, match="exited 1"):
        credentials(failing)


def test_uid_sets_are_compact() -> None:
    assert uid_set([7, 1, 2, 3, 9, 8, 20]) == "1:3,7:9,20"


def test_fetch_responses_of_any_shape_give_the_bodies() -> None:
    """The direct reader takes the plain shape; item order and unsolicited updates go to imapclient."""
    plain = [(b"1 (UID 4 BODY[] {5}", b"hello"), b")", (b"2 (UID 6 BODY[] {3}", b"abc"), b")"]
    assert fetched_bodies(plain, {4, 6}) == {4: b"hello", 6: b"abc"}
    reordered = [(b"1 (BODY[] {5}", b"hello"), b" UID 4)", b"2 (FLAGS (\\Seen) UID 9)", (b"3 (UID 6 BODY[] {3}", b"abc"), b")"]
    assert fetched_bodies(reordered, {4, 6}) == {4: b"hello", 6: b"abc"}
    assert fetched_bodies([None], {1}) == {}


# -- fetching -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_appended_mail_becomes_tickets_then_seen(dovecot: Dovecot, make_config: Callable[..., Config]) -> None:
    raws = [customer_mail(n) for n in range(7)]  # more than one batch of 5
    await asyncio.to_thread(dovecot.append, raws)
    config = make_config(account(dovecot))
    async with started(config) as running:
        worker = await worker_of(running)
        await worker.wait_until(lambda w: w.stored == 7 and w.state in ("idle", "polling"), timeout=30)
        await settle(running)
        assert await count(running, "SELECT COUNT(*) FROM tickets") == 7
        async with running.store.read() as tx:
            rows = await tx.all("SELECT raw, mail_from, rcpt_to, source, source_ref FROM spool ORDER BY id")
        # The exact bytes the server holds, not a re-serialization.
        assert [bytes(r["raw"]) for r in rows] == raws
        assert {(r["mail_from"], r["rcpt_to"], r["source"]) for r in rows} == {
            ("alice@customer.test", json.dumps([SUPPORT]), "imap")
        }
        uidvalidity = (await asyncio.to_thread(dovecot.client().select_folder, "INBOX"))[b"UIDVALIDITY"]
        assert rows[0]["source_ref"] == f"inbox/INBOX/{uidvalidity}/1"
    flags = await asyncio.to_thread(folder_state, dovecot)
    assert len(flags) == 7 and all(SEEN in f for f in flags.values())


@pytest.mark.asyncio
@pytest.mark.parametrize("action", ["move", "delete"])
async def test_move_and_delete_after_store(dovecot: Dovecot, make_config: Callable[..., Config], action: str) -> None:
    await asyncio.to_thread(dovecot.append, [customer_mail(n) for n in range(3)])
    options = {"after_store": action, **({"move_to": "Done"} if action == "move" else {})}
    async with started(make_config(account(dovecot, **options))) as running:
        worker = await worker_of(running)
        await worker.wait_until(lambda w: w.stored == 3 and w.state == "idle", timeout=30)
    assert await asyncio.to_thread(folder_state, dovecot) == {}
    done = await asyncio.to_thread(folder_state, dovecot, "Done")
    assert len(done) == (3 if action == "move" else 0)


@pytest.mark.asyncio
async def test_action_interrupted_after_commit_is_finished_on_reconnect(
    dovecot: Dovecot, make_config: Callable[..., Config]
) -> None:
    """The connection drops between the spool commit and MOVE: the next session moves them, stores none twice."""
    await asyncio.to_thread(dovecot.append, [customer_mail(n) for n in range(4)])
    config = make_config(account(dovecot, after_store="move", move_to="Done"))
    async with started(config) as running:
        worker = await worker_of(running)
        real = worker.session.after_store
        calls: list[list[int]] = []

        def drop_first(uids: Sequence[int]) -> None:
            calls.append(list(uids))
            if len(calls) == 1:
                raise ConnectionResetError("simulated loss after the commit")
            real(uids)

        worker.session.after_store = drop_first  # type: ignore[method-assign]
        worker.backoff.base = 0.05
        await worker.wait_until(lambda w: w.passes >= 1 and w.state == "idle", timeout=30)
        assert worker.stored == 4
        assert await count(running, "SELECT COUNT(*) FROM spool") == 4
        assert calls[0] == calls[1]  # the same UIDs again, from the checkpoint's done_uid
    assert await asyncio.to_thread(folder_state, dovecot) == {}
    assert len(await asyncio.to_thread(folder_state, dovecot, "Done")) == 4


@pytest.mark.asyncio
async def test_idle_brings_new_mail_without_polling(dovecot: Dovecot, make_config: Callable[..., Config]) -> None:
    async with started(make_config(account(dovecot, poll_interval=3600))) as running:
        worker = await worker_of(running)
        await worker.wait_until(lambda w: w.state == "idle", timeout=30)
        began = time.monotonic()
        await asyncio.to_thread(dovecot.append, customer_mail(1))
        # poll_interval is an hour: only IDLE can bring it (typically ~0.5 s after APPEND).
        await worker.wait_until(lambda w: w.stored == 1, timeout=30)
        print(f"IDLE delivery latency {time.monotonic() - began:.2f}s")
        await settle(running)
        assert await count(running, "SELECT COUNT(*) FROM tickets") == 1


@pytest.mark.asyncio
async def test_dovecot_restart_during_idle_misses_nothing(dovecot: Dovecot, make_config: Callable[..., Config]) -> None:
    async with started(make_config(account(dovecot, poll_interval=3600))) as running:
        worker = await worker_of(running)
        await asyncio.to_thread(dovecot.append, customer_mail(1))
        await worker.wait_until(lambda w: w.stored == 1 and w.state == "idle", timeout=30)
        logins = worker.logins
        await asyncio.to_thread(dovecot.stop)
        await worker.wait_until(lambda w: w.state == "backoff", timeout=30)
        await asyncio.to_thread(dovecot.start)
        # Appended right after the restart, maybe before the worker is back: still fetched.
        await asyncio.to_thread(dovecot.append, [customer_mail(2), customer_mail(3)])
        await worker.wait_until(lambda w: w.stored == 3, timeout=60)
        assert worker.logins > logins
        await settle(running)
        assert await count(running, "SELECT COUNT(*) FROM messages") == 3


@pytest.mark.asyncio
async def test_uidvalidity_change_rereads_without_repeating(dovecot: Dovecot, make_config: Callable[..., Config]) -> None:
    first = [customer_mail(n) for n in range(3)]
    await asyncio.to_thread(dovecot.append, first, "Support")
    async with started(make_config(account(dovecot, folders=["Support"], idle=False))) as running:
        worker = await worker_of(running)
        await worker.wait_until(lambda w: w.stored == 3, timeout=30)
        async with running.store.read() as tx:
            before = await tx.one("SELECT uidvalidity, last_uid FROM imap_folders")

        def recreate() -> None:
            client = dovecot.client()
            client.delete_folder("Support")
            client.logout()
            # The same mail again (identical bytes, and one copy with an extra trace header), plus one new.
            copy = b"X-Copied: yes\r\n" + first[2]
            dovecot.append([first[0], first[1], copy, customer_mail(3)], "Support")

        await asyncio.to_thread(recreate)
        worker.wake()
        await worker.wait_until(lambda w: w.stored == 5, timeout=30)  # the copy (new bytes) and the new mail
        async with running.store.read() as tx:
            after = await tx.one("SELECT uidvalidity, last_uid FROM imap_folders")
        assert before is not None and after is not None
        assert after["uidvalidity"] != before["uidvalidity"] and after["last_uid"] == 4
        await settle(running)
        assert await count(running, "SELECT COUNT(*) FROM messages") == 4
        assert await count(running, "SELECT COUNT(*) FROM tickets") == 4
        assert await count(running, "SELECT COUNT(*) FROM spool WHERE state = 'duplicate'") == 1


@pytest.mark.asyncio
async def test_wrong_password_does_not_stop_the_other_account_or_smtp(
    dovecot: Dovecot, make_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(dovecot.append, [customer_mail(n) for n in range(3)])
    config = make_config(account(dovecot, "broken", user=OTHER, password="wrong") + account(dovecot, "good"))
    with caplog.at_level(logging.ERROR, logger="mailgate.imap"):
        async with started(config) as running:
            broken, good = await worker_of(running, "broken"), await worker_of(running, "good")
            await send(running.smtp_port, mail(message_id="<by-smtp@customer.test>", subject="By SMTP"))
            await good.wait_until(lambda w: w.stored == 3, timeout=30)
            await broken.wait_until(lambda w: w.state == "auth-failed", timeout=30)
            await settle(running)
            assert await count(running, "SELECT COUNT(*) FROM tickets") == 4
            assert broken.logins == 1  # the next try is minutes away, not a tight loop
            assert "login refused" in (broken.last_error or "")
            result = await run_cli(config, "imap", "status", "--json")
    assert result.exit_code == 0, result.output
    states = {a["account"]: a for a in json.loads(result.output)}
    assert states["broken"]["state"] == "auth-failed" and states["broken"]["next_try_at"]
    assert states["good"]["folders"][0]["stored"] == 3
    assert "imap.auth_failed account=broken user=billing" in caplog.text


@pytest.mark.asyncio
async def test_same_mail_by_smtp_and_imap_is_one_message(dovecot: Dovecot, make_config: Callable[..., Config]) -> None:
    raw = mail(message_id="<both-ways@customer.test>")
    # The mailbox copy carries the delivering MTA's trace headers: other bytes, same mail.
    await asyncio.to_thread(dovecot.append, b"Return-Path: <alice@customer.test>\r\nDelivered-To: support@example.test\r\n" + raw)
    async with started(make_config(account(dovecot))) as running:
        await send(running.smtp_port, raw)
        await (await worker_of(running)).wait_until(lambda w: w.stored == 1, timeout=30)
        await settle(running)
        assert await count(running, "SELECT COUNT(*) FROM spool") == 2
        assert await count(running, "SELECT COUNT(*) FROM messages") == 1
        assert await count(running, "SELECT COUNT(*) FROM tickets") == 1


@pytest.mark.asyncio
async def test_too_big_mail_is_left_on_the_server_and_reported(dovecot: Dovecot, make_config: Callable[..., Config]) -> None:
    big = customer_mail(1) + b"\r\n".join([b"x" * 76] * 200)
    await asyncio.to_thread(dovecot.append, [big, customer_mail(2)])
    config = make_config(account(dovecot, max_message_size=8192))
    async with started(config) as running:
        worker = await worker_of(running)
        await worker.wait_until(lambda w: w.passes >= 1, timeout=30)
        assert worker.stored == 1
        async with running.store.read() as tx:
            skipped = await tx.all("SELECT uid, size, reason FROM imap_skipped")
            last_uid = await tx.value("SELECT last_uid FROM imap_folders")
        assert [(r["uid"], r["size"]) for r in skipped] == [(1, len(big))] and last_uid == 2
    flags = await asyncio.to_thread(folder_state, dovecot)
    assert flags[1] == () and SEEN in flags[2]  # untouched, never half-stored
    result = await run_cli(config, "imap", "status")
    assert "left on server: INBOX uid 1" in result.output


@pytest.mark.asyncio
async def test_a_30_mb_message_is_fetched_whole(dovecot: Dovecot, make_config: Callable[..., Config]) -> None:
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab\r\n"
    big = customer_mail(1) + line * (30 * 1024 * 1024 // len(line))
    await asyncio.to_thread(dovecot.append, [customer_mail(0), big, customer_mail(2)])
    config = make_config(account(dovecot, max_message_size=40 * 1024 * 1024))
    # The fetcher alone: this is about intake (threading a 30 MB body is the processor's business).
    async with store_for(config) as store:
        worker = AccountWorker(config, config.imap[0], store)
        task = asyncio.create_task(worker.run())
        try:
            await worker.wait_until(lambda w: w.stored == 3, timeout=60)
        finally:
            worker.stop()
            await task
        async with store.read() as tx:
            rows = await tx.all("SELECT raw FROM spool ORDER BY id")
    assert bytes(rows[1]["raw"]) == big and len(big) > 30_000_000


# -- kill -9 --------------------------------------------------------------------------------


def _spooled(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
    except sqlite3.Error:  # not created or not migrated yet
        return 0


def _wait(
    condition: Callable[[], bool], timeout: float, what: str, log: Path, daemon: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if daemon.poll() is not None:
            raise AssertionError(f"the daemon exited ({daemon.returncode}) before {what}; log:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; daemon log:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)


def _daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(config), "run"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def test_kill_9_mid_batch_then_restart_stores_every_message_once(dovecot: Dovecot, tmp_path: Path) -> None:
    total = 400
    dovecot.append([customer_mail(n) for n in range(total)])
    path = write_config(tmp_path, account(dovecot, batch_size=2, after_store="move", move_to="Done"))
    database = config_mod.load(path).database_path
    log = tmp_path / "daemon.log"
    daemon = _daemon(path, log)
    try:
        _wait(lambda: _spooled(database) >= 10, 60, "the first spooled rows", log, daemon)
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=10)
        killed_at = _spooled(database)
        assert 0 < killed_at < total, f"kill came too late to be mid-batch: {killed_at}"
        daemon = _daemon(path, log)

        def all_threaded() -> bool:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
                return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] >= total

        _wait(all_threaded, 120, f"{total} messages", log, daemon)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10)
    with sqlite3.connect(database) as db:
        per_id = db.execute("SELECT message_id, COUNT(*) FROM messages GROUP BY message_id").fetchall()
        spooled = db.execute("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM spool").fetchone()
    assert len(per_id) == total and {n for _, n in per_id} == {1}
    assert spooled == (total, total)
    # Every message left INBOX exactly once: moved, none lost, none copied twice.
    assert folder_state(dovecot) == {}
    assert len(folder_state(dovecot, "Done")) == total
    print(f"killed with {killed_at}/{total} spooled")
