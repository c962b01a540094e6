"""What unit and integration tests share: config files in a temp folder, well-formed test mail, the store engine.

The running parts (a daemon, its relay sink, the CLI against a database, waiting) are factories in
tests/integration/conftest.py; unit tests never start them. A test or module marked `engines` runs
once per store engine: test_x[sqlite], then test_x[postgresql] on a throwaway cluster (tests/pg.py)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import os
import socket
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.config import Config

from .pg import PgCluster, find_postgres, reap_orphans

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


ENGINES = ("sqlite", "postgresql")
# CI installs PostgreSQL and sets this, so a missing server fails there instead of skipping half a module.
REQUIRE_POSTGRES = os.environ.get("MAILGATE_TEST_REQUIRE_POSTGRES", "") not in ("", "0")
NO_POSTGRES = "PostgreSQL is not installed"


@dataclass
class PgDatabases:
    """The running test's PostgreSQL databases: one per config folder, as SQLite has one file per folder."""

    cluster: PgCluster
    by_folder: dict[Path, str] = field(default_factory=dict)

    def url_for(self, folder: Path) -> str:
        key = folder.resolve()
        if key not in self.by_folder:
            self.by_folder[key] = self.cluster.create_database()
        return self.cluster.url(self.by_folder[key])


# Set while a test runs on the postgresql engine (the `engine` fixture); write_config reads it.
_postgres: PgDatabases | None = None


def storage_key(folder: Path) -> str:
    """The [storage] line naming the store of the config in `folder`, on the running test's engine.

    `write_config(other, storage=storage_key(folder))` makes a second config share the first one's
    database, as several daemons on one database do."""
    if _postgres is not None:
        return f'url = "{_postgres.url_for(folder)}"'
    if _SERVER:
        return f'url = "{_server_database(folder)}"'
    return f'database = "{folder.resolve() / "mailgate.sqlite3"}"'


_databases = itertools.count()
# MAILGATE_TEST_POSTGRES=postgresql://user@127.0.0.1:PORT: the whole run on a PostgreSQL server of
# one's own (each config folder gets a fresh database on it), e.g. while porting a module.
_SERVER = os.environ.get("MAILGATE_TEST_POSTGRES", "")
_server_databases: dict[Path, str] = {}


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


def _server_database(folder: Path) -> str:
    key = folder.resolve()
    if key not in _server_databases:
        _server_databases[key] = fresh_database(_SERVER)
    return _server_databases[key]


def write_config(folder: Path, extra: str = "", *, smtp: str = "", gateway: str = "", storage: str = "") -> Path:
    """A config file for tests: loopback port 0 (the OS picks), SQLite file in the folder (on the
    postgresql engine, a fresh database per folder instead); without a [relay] section in `extra`,
    the relay is a port the test run holds closed (never a real MTA). `storage` that names its own
    `database` or `url` replaces the default one."""
    if "[relay]" not in extra:
        extra += f'\n[relay]\nhost = "127.0.0.1"\nport = {closed_port()}\nsecurity = "none"\ntimeout = 10\n'
    own_store = any(line.split("=")[0].strip() in ("database", "url") for line in storage.splitlines() if "=" in line)
    if own_store:
        store = ""
    elif _postgres is not None:
        store = f'url = "{_postgres.url_for(folder)}"'
    elif _SERVER:
        store = f'url = "{_server_database(folder)}"'
    else:
        store = 'database = "mailgate.sqlite3"'
    path = folder / "config.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [gateway]
            addresses = ["{SUPPORT}", "{BILLING}"]
            secret = "{SECRET}"
            {gateway}

            [storage]
            {store}
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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "engines: run once per store engine, as test_x[sqlite] and test_x[postgresql]")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`@pytest.mark.engines` (or a module's `pytestmark = pytest.mark.engines`) runs the test on each engine."""
    if metafunc.definition.get_closest_marker("engines"):
        metafunc.parametrize("engine", ENGINES, indirect=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL for the whole run, started by the first test that needs it."""
    bindir = find_postgres()
    if bindir is None:
        reason = f"{NO_POSTGRES}: no initdb, pg_ctl and postgres on PATH nor under /usr/lib/postgresql/*/bin"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason}; MAILGATE_TEST_REQUIRE_POSTGRES is set", pytrace=False)
        pytest.skip(reason)
    reap_orphans(bindir)
    cluster = PgCluster(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test, as a URL; dropped after it."""
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


@pytest.fixture(autouse=True)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """The store engine this test runs on: "sqlite" unless the test is marked `engines`."""
    global _postgres
    # MAILGATE_TEST_ENGINE=postgresql runs every test on the throwaway cluster (a whole-suite check).
    name: str = getattr(request, "param", os.environ.get("MAILGATE_TEST_ENGINE", "sqlite"))
    if name != "postgresql":
        yield name
        return
    databases = PgDatabases(request.getfixturevalue("pg_cluster"))
    _postgres = databases
    try:
        yield name
    finally:
        _postgres = None
        for database in databases.by_folder.values():
            databases.cluster.drop_database(database)


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
    the shared mail corpus (a third of the suite) or of PostgreSQL (half of each `engines` module):
    easily missed among the SKIPPED lines."""
    yield
    skipped = [str(getattr(report, "longrepr", "")) for report in terminalreporter.stats.get("skipped", [])]
    missing = sum(1 for reason in skipped if "corpus" in reason.lower())
    if missing:
        terminalreporter.write_line(
            f"{missing} test{'' if missing == 1 else 's'} skipped: the shared mail corpus is not at {CORPUS} "
            f"(set MAILGATE_CORPUS=/path/to/corpus; default ../shared/corpus beside the checkout)",
            yellow=True,
        )
    no_postgres = sum(1 for reason in skipped if NO_POSTGRES in reason)
    if no_postgres:
        terminalreporter.write_line(
            f"{no_postgres} test{'' if no_postgres == 1 else 's'} skipped: {NO_POSTGRES} (Debian: apt-get install "
            "postgresql; a cluster of the test run's own is started, the system one is never used)",
            yellow=True,
        )
