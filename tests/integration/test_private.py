"""Private by default: files 0600/0700, the example secret refused outside --dev, warnings for
readable secrets, relay password_file, storage under systemd's StateDirectory, and the unit."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import smtplib
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from click.testing import CliRunner

from mailgate import config as config_mod
from mailgate import daemon
from mailgate.cli.main import main
from mailgate.daemon import started

from .conftest import REPO, SUPPORT, mail, run_cli_sync, send, wait_until, write_config
from .sink import Sink, relay_section

EXAMPLE_SECRET = "change-me-to-a-long-random-string"


def with_attachment(message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice Customer <alice@customer.test>"
    msg["To"] = SUPPORT
    msg["Subject"] = "My passport scan"
    msg["Message-ID"] = message_id
    msg.set_content("Here is the scan you asked for.\n")
    msg.add_attachment(b"%PDF-1.4 private " * 50, maintype="application", subtype="pdf", filename="passport.pdf")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def modes(root: Path) -> dict[str, int]:
    """Every file and folder mailgate made under root, relative name → permission bits."""
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def assert_private(found: dict[str, int]) -> None:
    loose = {name: f"{mode:04o}" for name, mode in found.items() if mode & 0o077}
    assert not loose, f"readable by others: {loose}"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise TimeoutError(f"waited for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Files mailgate creates ----------------------------------------------------------------------


def test_the_daemon_creates_private_files_whatever_the_umask(tmp_path: Path) -> None:
    """`mailgate run` from a shell with umask 022 made the database, its -wal/-shm and the
    attachments 0644/0755: every local user could read the customers' mail. Also: `run --dev`
    accepts the example secret, and a config holding it inline, readable by others, is logged."""
    data = tmp_path / "data"
    port = free_port()
    config = write_config(tmp_path, storage='attachments = "data/files"')
    text = config.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"')
    text = text.replace('"mailgate.sqlite3"', '"data/mailgate.sqlite3"')
    text = re.sub(r'secret = "[^"]*"', f'secret = "{EXAMPLE_SECRET}"', text)
    config.write_text(text)
    config.chmod(0o644)
    log = tmp_path / "daemon.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(config), "run", "--dev"],
            stdin=subprocess.DEVNULL, stdout=handle, stderr=handle, start_new_session=True, umask=0o022,
        )
    try:
        wait_for(lambda: _listening(port) or process.poll() is not None, "the daemon to listen")
        assert process.poll() is None, log.read_text()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("alice@customer.test", [SUPPORT], with_attachment("<scan@customer.test>"))
        db = data / "mailgate.sqlite3"
        wait_for(lambda: _tickets(db) == 1, "the ticket")
        wait_for(lambda: any((data / "files").rglob("*")), "the attachment")
        found = modes(data)
        assert {"mailgate.sqlite3", "mailgate.sqlite3-wal", "mailgate.sqlite3-shm", "files"} <= set(found), found
        assert any(mode == 0o600 and "files/" in name for name, mode in found.items()), found
        assert found["files"] == 0o700 and found["mailgate.sqlite3"] == 0o600
        assert_private(found)
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
    finally:
        process.terminate()
        process.wait(timeout=30)
    lines = [line for line in log.read_text().splitlines() if "config.insecure" in line]
    assert len(lines) == 1 and "gateway.secret inline" in lines[0] and "0644" in lines[0], log.read_text()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _tickets(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.asyncio
async def test_an_embedded_daemon_keeps_its_files_private_too(tmp_path: Path) -> None:
    """The store and the attachments set their modes themselves: a daemon started from Python (a
    library user, a process with umask 022) must not leave customers' files readable either."""
    config = config_mod.load(write_config(tmp_path, storage='attachments = "files"'))
    async with started(config) as running:
        await send(running.smtp_port, with_attachment("<embedded@customer.test>"))
        await wait_until(lambda: [p for p in (tmp_path / "files").rglob("*") if p.is_file()], what="an attachment file")
        found = {k: v for k, v in modes(tmp_path).items() if k.startswith(("files", "mailgate.sqlite3"))}
    assert "mailgate.sqlite3" in found and "files" in found
    assert_private(found)


# --- The example secret ---------------------------------------------------------------------------


def example_copy(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    shutil.copy(REPO / "config.example.toml", path)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    path.chmod(0o600)
    return path


def test_the_example_secret_is_refused_outside_dev(tmp_path: Path) -> None:
    path = example_copy(tmp_path)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("secret ="))
    for command in (["check-config"], ["run"]):
        result = run_cli_sync(path, *command)
        assert result.exit_code == 1, result.output
        assert f"{path}:{line}: gateway.secret: replace the example secret: e.g. `openssl rand -hex 32`" in result.output
    result = run_cli_sync(path, "check-config", "--dev")
    assert result.exit_code == 0, result.output
    assert "ok (2 support addresses)" in result.output and "warning" not in result.output


def test_the_example_secret_in_a_secret_file_is_refused_too(tmp_path: Path) -> None:
    path = example_copy(tmp_path)
    (tmp_path / "secret").write_text(EXAMPLE_SECRET + "\n")
    (tmp_path / "secret").chmod(0o600)
    path.write_text(path.read_text().replace(f'secret = "{EXAMPLE_SECRET}"', 'secret_file = "secret"'))
    result = run_cli_sync(path, "check-config")
    assert result.exit_code == 1 and ": gateway.secret_file: replace the example secret" in result.output


@pytest.mark.asyncio
async def test_a_reload_to_the_example_secret_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    async with started(config_mod.load(path)) as running:
        path.write_text(re.sub(r'secret = "[^"]*"', f'secret = "{EXAMPLE_SECRET}"', path.read_text()))
        assert daemon.reload(running) is False
        assert running.config.secret_bytes() != EXAMPLE_SECRET.encode()


# --- Readable secrets -----------------------------------------------------------------------------


def test_check_config_warns_of_secrets_other_users_can_read(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.chmod(0o640)
    result = run_cli_sync(path, "check-config")
    assert result.exit_code == 0, result.output
    assert f"warning: {path} holds gateway.secret inline and is readable by its group (mode 0640)" in result.output
    path.chmod(0o600)
    result = run_cli_sync(path, "check-config")
    assert result.exit_code == 0 and "warning" not in result.output, result.output

    # A secret in a file: the config may be group-readable (root:mailgate 0640), the file not world-readable.
    secret = tmp_path / "secret"
    secret.write_text("a-real-secret-0123456789abcdef\n")
    secret.chmod(0o644)
    path.write_text(re.sub(r'secret = "[^"]*"', 'secret_file = "secret"', path.read_text()))
    path.chmod(0o640)
    result = run_cli_sync(path, "check-config")
    assert result.exit_code == 0, result.output
    assert f"warning: gateway.secret_file {secret} is readable by every local user (mode 0644)" in result.output
    secret.chmod(0o640)
    result = run_cli_sync(path, "check-config")
    assert result.exit_code == 0 and "warning" not in result.output, result.output


# --- [relay] password_file ------------------------------------------------------------------------


@pytest_asyncio.fixture
async def auth_sink() -> AsyncIterator[tuple[Sink, list[tuple[str, str]], set[str]]]:
    """A relay sink on loopback that wants AUTH: records each login, accepts only `good` passwords."""
    logins: list[tuple[str, str]] = []
    good: set[str] = set()

    def authenticator(server: SMTP, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        logins.append((login, password))
        return AuthResult(success=password in good)

    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="relay.test", decode_data=False, loop=loop, authenticator=authenticator,
                     auth_require_tls=False),
        host="127.0.0.1", port=0,
    )
    sink.port = int(server.sockets[0].getsockname()[1])
    try:
        yield sink, logins, good
    finally:
        server.close()


@pytest.mark.asyncio
async def test_relay_password_file_is_read_at_start_and_on_reload(
    tmp_path: Path, auth_sink: tuple[Sink, list[tuple[str, str]], set[str]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sink, logins, good = auth_sink
    secret = tmp_path / "relay-password"
    secret.write_text("first-relay-password\n")
    secret.chmod(0o600)
    relay = relay_section(sink.port, send_delay=0).replace(
        'timeout = 10\n', 'timeout = 10\nusername = "mailgate"\npassword_file = "relay-password"\n', 1)
    path = write_config(tmp_path, relay)
    path.chmod(0o600)
    good.add("first-relay-password")
    async with started(config_mod.load(path)) as running:
        await send(running.smtp_port, mail(subject="First", message_id="<first@customer.test>"))
        await sink.wait_for(lambda r: bool(sink.to("alice@customer.test")), timeout=30)
        assert ("mailgate", "first-relay-password") in logins

        # The provider rotates the password: the operator writes the file and reloads.
        secret.write_text("second-relay-password\n")
        good.clear()
        good.add("second-relay-password")
        assert daemon.reload(running) is True
        await send(running.smtp_port, mail(subject="Second", sender="Bob <bob@customer.test>",
                                           message_id="<second@customer.test>"))
        await sink.wait_for(lambda r: bool(sink.to("bob@customer.test")), timeout=30)
        assert ("mailgate", "second-relay-password") in logins
    assert "relay.reconfigured" in caplog.text
    assert "relay-password\n" not in caplog.text and "first-relay-password" not in caplog.text
    assert "second-relay-password" not in caplog.text and "second-relay-password" not in repr(running.config)


def test_relay_password_file_errors_name_file_line_and_key(tmp_path: Path) -> None:
    relay = '\n[relay]\nhost = "127.0.0.1"\nport = 2526\nusername = "mailgate"\npassword_file = "missing"\n'
    path = write_config(tmp_path, relay)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("password_file"))
    result = run_cli_sync(path, "check-config")
    assert result.exit_code == 1
    assert f"{path}:{line}: relay.password_file: cannot read" in result.output
    both = relay + 'password = "also-here"\n'
    result = run_cli_sync(write_config(tmp_path, both), "check-config")
    assert result.exit_code == 1 and "given two ways" in result.output


# --- Where the data goes --------------------------------------------------------------------------


def test_storage_resolves_under_systemds_state_directory(tmp_path: Path) -> None:
    """Under the unit the config folder (/etc/mailgate) is read-only and $STATE_DIRECTORY is
    /var/lib/mailgate: relative [storage] paths go there; other relative paths stay by the config."""
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    state.mkdir()
    path = write_config(etc, storage='attachments = "var/files"')
    path.write_text(path.read_text().replace('"mailgate.sqlite3"', '"var/mailgate.sqlite3"'))
    path.chmod(0o600)
    env = {"STATE_DIRECTORY": str(state)}
    runner = CliRunner(env=env)
    result = runner.invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["--config", str(path), "ingest", "--sender=alice@customer.test",
                                  f"--recipient={SUPPORT}"], input=mail(message_id="<state@customer.test>"))
    assert result.exit_code == 0, result.output
    assert _tickets(state / "var" / "mailgate.sqlite3") == 1
    assert not (etc / "var").exists()
    listed = runner.invoke(main, ["--config", str(path), "tickets", "list", "--json"])
    assert "Printer on fire" in listed.output
    # Without $STATE_DIRECTORY (a checkout): beside the config file, as before.
    assert config_mod.load(path).database_path == etc / "var" / "mailgate.sqlite3"


def test_check_config_fails_when_the_database_cannot_be_created(tmp_path: Path) -> None:
    """check-config said ok, then `run` exited 75 and systemd restarted it forever."""
    (tmp_path / "blocker").write_text("a file where the data folder should be\n")
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('"mailgate.sqlite3"', '"blocker/db/mailgate.sqlite3"'))
    path.chmod(0o600)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("database ="))
    result = run_cli_sync(path, "check-config")
    assert result.exit_code == 1, result.output
    assert f"{path}:{line}: storage.database: cannot create" in result.output
    assert "blocker is not a folder" in result.output


@pytest.mark.skipif(os.geteuid() == 0,
                    reason="root writes anywhere: a read-only folder cannot be shown")
def test_check_config_fails_on_a_read_only_data_folder(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir(mode=0o500)
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('"mailgate.sqlite3"', '"ro/mailgate.sqlite3"'))
    result = run_cli_sync(path, "check-config")
    assert result.exit_code == 1 and "storage.database: cannot create" in result.output


# --- The systemd unit ------------------------------------------------------------------------------

UNIT = REPO / "systemd" / "mailgate.service"


def test_the_unit_keeps_data_private_where_the_config_expects_it() -> None:
    text = UNIT.read_text()
    for line in ("UMask=0077", "StateDirectory=mailgate", "ConfigurationDirectory=mailgate", "ProtectSystem=strict"):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), line
    assert "ReadWritePaths" not in text  # StateDirectory= already makes /var/lib/mailgate writable


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_rates_the_unit_ok() -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)], capture_output=True, text=True, timeout=120,
    )
    found = re.search(r"Overall exposure level for mailgate\.service: ([0-9.]+)", result.stdout + result.stderr)
    if found is None:
        pytest.skip(f"systemd-analyze cannot rate units offline here: {result.stderr.strip()[:200]}")
    assert float(found.group(1)) <= 2.0, result.stdout
