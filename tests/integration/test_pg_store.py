"""The PostgreSQL store as operators meet it: migrations once, a newer schema refused, passwords kept out
of URLs, a server that drops the connection, a database name that is not there."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from mailgate import config as config_mod
from mailgate.config import ConfigError
from mailgate.daemon import started
from mailgate.store import StoreUnavailable, TransientError, newest_schema, store_for

from .conftest import SUPPORT, mail, run_cli_sync, send, settle, write_config


@pytest.mark.asyncio
async def test_daemons_starting_together_migrate_once(tmp_path: Path, pg_url: str) -> None:
    config = config_mod.load(write_config(tmp_path, storage=f'url = "{pg_url}"'))
    stores = [store_for(config) for _ in range(4)]
    opened = await asyncio.gather(*(s.open() for s in stores))
    try:
        conn = await asyncpg.connect(pg_url)
        try:
            versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY version")]
        finally:
            await conn.close()
        # Each migration once, though four stores raced to it (an advisory lock, not luck).
        assert versions == sorted(set(versions)) and versions[-1] == newest_schema("postgresql")
        assert [await s.schema_version() for s in opened] == [versions[-1]] * 4
    finally:
        for s in opened:
            await s.close()


@pytest.mark.asyncio
async def test_a_database_written_by_a_newer_mailgate_is_refused(tmp_path: Path, pg_url: str) -> None:
    config_path = write_config(tmp_path, storage=f'url = "{pg_url}"')
    async with store_for(config_mod.load(config_path)):
        pass
    newer = newest_schema("postgresql") + 5
    conn = await asyncpg.connect(pg_url)
    await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", newer)
    await conn.close()
    run = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mailgate", "--config", str(config_path), "run"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )
    assert run.returncode == 78, run.stderr  # EX_CONFIG: a restart cannot fix it
    assert f"schema {newer}, this one knows {newest_schema('postgresql')}" in run.stderr.decode()
    status = await asyncio.to_thread(run_cli_sync, config_path, "db", "status")
    assert status.exit_code == 78 and "written by a newer mailgate" in status.output


def test_a_password_in_the_url_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, storage='url = "postgresql://mailgate:hunter2@127.0.0.1:1/helpdesk"')
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    text = str(caught.value)
    assert "storage.url" in text and "password_file" in text and "hunter2" not in text
    assert f"{path}:" in text


def test_url_and_database_together_are_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, storage='database = "a.sqlite3"\nurl = "postgresql://mailgate@127.0.0.1/helpdesk"')
    with pytest.raises(ConfigError, match="either 'url' or 'database'"):
        config_mod.load(path)


def test_a_sqlite_url_is_the_database_path(tmp_path: Path) -> None:
    config = config_mod.load(write_config(tmp_path, storage='url = "sqlite:///data/helpdesk.sqlite3"'))
    assert config.storage.engine == "sqlite" and config.database_path == tmp_path / "data" / "helpdesk.sqlite3"


@pytest.mark.asyncio
async def test_the_password_comes_from_the_named_environment_variable(tmp_path: Path, pg_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_mod.load(write_config(tmp_path, storage=f'url = "{pg_url}"\npassword_env = "MAILGATE_DB_PW"'))
    with pytest.raises(StoreUnavailable, match="MAILGATE_DB_PW"):
        store_for(config)
    monkeypatch.setenv("MAILGATE_DB_PW", "s3cret")
    async with store_for(config) as store:
        assert await store.schema_version() == newest_schema("postgresql")
        assert "s3cret" not in store.where


@pytest.mark.asyncio
async def test_a_missing_database_is_a_clear_error(tmp_path: Path, pg_url: str) -> None:
    config = config_mod.load(write_config(tmp_path, storage=f'url = "{pg_url}_nowhere"'))
    with pytest.raises(StoreUnavailable, match="cannot connect to postgresql://"):
        await store_for(config).open()


@pytest.mark.asyncio
async def test_a_connection_the_server_dropped_is_opened_again_and_no_mail_is_lost(tmp_path: Path, pg_url: str) -> None:
    config = config_mod.load(write_config(tmp_path, storage=f'url = "{pg_url}"'))
    async with started(config) as running:
        await send(running.smtp_port, mail(subject="before the restart", message_id="<a@customer.test>"))
        await settle(running)
        # What a PostgreSQL restart or a failover does to every client: its sessions end.
        admin = await asyncpg.connect(pg_url)
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        await admin.close()
        # The first try after it may be refused with 451 (the sender retries); no 250 without a commit.
        for _attempt in range(20):
            try:
                await send(running.smtp_port, mail(subject="after the restart", message_id="<b@customer.test>"),
                           [SUPPORT])
                break
            except Exception:
                await asyncio.sleep(0.2)
        else:
            raise AssertionError("the store never came back")
        await settle(running)
        async with running.store.read() as tx:
            subjects = sorted(r[0] for r in await tx.all("SELECT subject FROM tickets"))
        assert subjects == ["after the restart", "before the restart"]


@pytest.mark.asyncio
async def test_after_a_restart_the_store_listens_again_for_other_daemons_work(tmp_path: Path, pg_url: str) -> None:
    config = config_mod.load(write_config(tmp_path, storage=f'url = "{pg_url}"'))
    heard: list[frozenset[str]] = []
    woken = asyncio.Event()

    def on_commit(touched: frozenset[str]) -> None:
        heard.append(touched)
        woken.set()

    async with store_for(config) as daemon, store_for(config) as cli:
        daemon.on_commit = on_commit
        admin = await asyncpg.connect(pg_url)
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                            " AND application_name = 'mailgate'")
        await admin.close()
        # The daemon's next transaction finds its sessions gone, opens them again and listens again,
        # then wakes its runners once for whatever was queued while nobody listened.
        for _attempt in range(50):
            with contextlib.suppress(StoreUnavailable, TransientError):
                async with daemon.read() as tx:
                    await tx.value("SELECT 1")
                break
        async with asyncio.timeout(20):
            await woken.wait()
        assert heard[-1] == {"outbox", "timers"}
        woken.clear()
        heard.clear()
        async with cli.txn() as tx:  # another process (the CLI) queues mail
            tx.touch("outbox")
        async with asyncio.timeout(20):
            await woken.wait()
        assert heard == [frozenset({"outbox"})]
