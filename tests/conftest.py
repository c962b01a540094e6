"""What unit and integration tests share: config files in a temp folder and well-formed test mail.

The running parts (a daemon, its relay sink, the CLI against a database, waiting) are factories in
tests/integration/conftest.py; unit tests never start them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import os
import socket
import textwrap
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.config import Config

REPO = Path(__file__).resolve().parents[1]
# Real-world mail from public test suites; MAILGATE_CORPUS points elsewhere when it is not beside the checkout.
CORPUS = Path(os.environ.get("MAILGATE_CORPUS") or REPO.parent / "shared" / "corpus")
SECRET = "test-secret-0123456789abcdef"
SUPPORT = "support@example.test"
BILLING = "billing@example.test"


@functools.cache
def _held_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def closed_port() -> int:
    """A loopback port this test run holds bound and never listens on: a connection is refused at once.

    The [relay] default is 127.0.0.1:25; on a machine with a local MTA, a daemon started by a test
    delivered its acknowledgements there and tests failed depending on the MTA's answers."""
    port: int = _held_port().getsockname()[1]
    return port


_databases = itertools.count()


def fresh_database(server: str) -> str:
    """A new, empty database on a PostgreSQL server the tests own: its URL."""
    import asyncpg

    name = f"mailgate_{os.getpid()}_{next(_databases)}"

    async def create() -> None:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    # A thread of its own: write_config is also called from tests whose event loop is running.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, create()).result()
    return f"{server}/{name}"


def write_config(folder: Path, extra: str = "", *, smtp: str = "", gateway: str = "", storage: str = "") -> Path:
    """A config file for tests: loopback port 0 (the OS picks), SQLite file in the folder; without a
    [relay] section in `extra`, the relay is a port the test run holds closed (never a real MTA)."""
    if "[relay]" not in extra:
        extra += f'\n[relay]\nhost = "127.0.0.1"\nport = {closed_port()}\nsecurity = "none"\ntimeout = 10\n'
    path = folder / "config.toml"
    database = 'database = "mailgate.sqlite3"'
    server = os.environ.get("MAILGATE_TEST_POSTGRES")
    if server and "url =" not in storage:
        # The whole suite on PostgreSQL: MAILGATE_TEST_POSTGRES=postgresql://user@127.0.0.1:PORT names a
        # server the test run may create databases on; each config gets a fresh one.
        database = f'url = "{fresh_database(server)}"'
    path.write_text(
        textwrap.dedent(
            f"""\
            [gateway]
            addresses = ["{SUPPORT}", "{BILLING}"]
            secret = "{SECRET}"
            {gateway}

            [storage]
            {database}
            {storage}

            [smtp]
            listen = "127.0.0.1:0"
            {smtp}
            """
        )
        + extra,
        encoding="utf-8",
    )
    return path


def relay_section(port: int, **outbox: object) -> str:
    """TOML for [relay] pointing at a sink, and [outbox] with fast retries for tests."""
    values = {"retry_base": 0.2, "retry_max": 1.0, "send_delay": 30, **outbox}
    lines = [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in values.items()]
    return (
        f'\n[relay]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n'
        + "\n[outbox]\n" + "\n".join(lines) + "\n"
    )


AGENTS = """
[[queues]]
name = "support"
addresses = ["support@example.test"]
members = ["aino"]

[[queues]]
name = "billing"
addresses = ["billing@example.test"]
members = ["bartek"]
language = "pl"

[[agents]]
id = "aino"
name = "Aino Agent"
addresses = ["aino@agents.test"]

[[agents]]
id = "bartek"
name = "Bartek Agent"
addresses = ["bartek@agents.test"]
"""


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    def make(extra: str = "", **sections: str) -> Config:
        return config_mod.load(write_config(tmp_path, extra, **sections))

    return make


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


def mail(
    *,
    sender: str = "Alice Customer <alice@customer.test>",
    to: str = SUPPORT,
    subject: str = "Printer on fire",
    body: str = "Hello,\n\nthe printer is on fire.\n\nAlice\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A well-formed test mail as wire bytes with CRLF line endings."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    """One line at the end of the run (after the short summary) when tests were skipped for want of
    the shared mail corpus: a third of the suite, easily missed among the SKIPPED lines."""
    yield
    skipped = terminalreporter.stats.get("skipped", [])
    missing = sum(1 for report in skipped if "corpus" in str(getattr(report, "longrepr", "")).lower())
    if missing:
        terminalreporter.write_line(
            f"{missing} test{'' if missing == 1 else 's'} skipped: the shared mail corpus is not at {CORPUS} "
            f"(set MAILGATE_CORPUS=/path/to/corpus; default ../shared/corpus beside the checkout)",
            yellow=True,
        )
