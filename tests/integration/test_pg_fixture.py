"""The PostgreSQL the tests start (tests/pg.py) and the `engines` marker: a fresh database per test, both engines run."""

from __future__ import annotations

from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from ..conftest import storage_key, write_config
from ..pg import PgCluster

# Database names the rounds below saw, in the order they ran.
SEEN: list[str] = []


@pytest.mark.asyncio
@pytest.mark.parametrize("round_", [1, 2])
async def test_each_test_gets_a_fresh_database_of_its_own(pg_url: str, pg_cluster: PgCluster, round_: int) -> None:
    connection = await asyncpg.connect(pg_url, timeout=10)
    try:
        # A database shared with the other round would already hold the table: CREATE TABLE fails.
        await connection.execute("CREATE TABLE tickets (id bigint PRIMARY KEY, subject text NOT NULL)")
        await connection.execute("INSERT INTO tickets VALUES (1000, $1)", f"Drucker brennt, Runde {round_}")
        assert await connection.fetchval("SELECT subject FROM tickets WHERE id = 1000") == f"Drucker brennt, Runde {round_}"
        name = await connection.fetchval("SELECT current_database()")
        # A throwaway cluster: loopback only, and no durability to pay for.
        assert await connection.fetchval("SHOW listen_addresses") == "127.0.0.1"
        assert await connection.fetchval("SHOW fsync") == "off"
        assert await connection.fetchval("SHOW server_encoding") == "UTF8"
    finally:
        await connection.close()
    assert pg_url == f"postgresql://mailgate@127.0.0.1:{pg_cluster.port}/{name}"
    if SEEN:
        assert name != SEEN[-1]
        # The earlier round's database was dropped at its teardown.
        listed = pg_cluster.sql(f"SELECT count(*) FROM pg_database WHERE datname = '{SEEN[-1]}'").stdout.strip()
        assert listed == "0"
    SEEN.append(name)


def test_an_unmarked_test_runs_on_sqlite_alone(engine: str, tmp_path: Path) -> None:
    assert engine == "sqlite"
    text = write_config(tmp_path).read_text()
    assert '\n[storage]\ndatabase = "mailgate.sqlite3"\n' in text and "url =" not in text


@pytest.mark.engines
@pytest.mark.asyncio
async def test_a_marked_test_writes_the_store_of_its_engine(engine: str, tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    text = write_config(first).read_text()
    if engine == "sqlite":
        assert '\n[storage]\ndatabase = "mailgate.sqlite3"\n' in text
        assert storage_key(first) == f'database = "{first.resolve() / "mailgate.sqlite3"}"'
        return
    assert "database =" not in text
    (url,) = [line.split('"')[1] for line in text.splitlines() if line.startswith("url = ")]
    # As with one SQLite file per folder: the same folder keeps its database, another gets its own.
    assert url in write_config(first, "# rewritten").read_text()
    assert url not in write_config(second).read_text()
    # A config that names the first one's store shares its database, as daemons sharing one do.
    shared = write_config(second, storage=storage_key(first)).read_text()
    assert shared.count("url = ") == 1 and f'url = "{url}"' in shared
    connection = await asyncpg.connect(url, timeout=10)
    try:
        assert await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await connection.close()


class TestMarkedTogether:
    """`pytestmark` on a class (or a module) marks every test inside it."""

    pytestmark = pytest.mark.engines

    def test_runs_on(self, engine: str) -> None:
        assert engine in ("sqlite", "postgresql")


def test_marked_tests_are_collected_once_per_engine(request: pytest.FixtureRequest) -> None:
    module = request.node.getparent(pytest.Module)
    assert module is not None
    names = [item.name for item in module.collect() if isinstance(item, pytest.Function)]
    assert [n for n in names if n.startswith("test_a_marked_test_")] == [
        "test_a_marked_test_writes_the_store_of_its_engine[sqlite]",
        "test_a_marked_test_writes_the_store_of_its_engine[postgresql]",
    ]
    assert "test_an_unmarked_test_runs_on_sqlite_alone" in names
    inner = [item for item in module.collect() if isinstance(item, pytest.Class)]
    assert [i.name for c in inner for i in c.collect()] == ["test_runs_on[sqlite]", "test_runs_on[postgresql]"]
