"""Factories for tests with real parts: a daemon in the test's loop, its relay sink, the CLI against
the test's database, SMTP clients, and one way to wait.

    async def test_x(make_daemon, sink, cli):
        running = await make_daemon(AGENTS)            # serving; stopped at teardown
        await send(running.smtp_port, mail())
        await settle(running)
        await wait_mail(sink, "alice@customer.test", "Printer on fire")
        assert (await cli("tickets", "list", "--json")).json[0]["status"] == "new"
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from click.testing import CliRunner

from mailgate import config as config_mod
from mailgate import spool
from mailgate.clock import Clock
from mailgate.config import Config
from mailgate.daemon import Running, started

# Integration tests import the shared values from here (`from .conftest import SUPPORT, mail, …`),
# next to the running parts, so one import line serves a test module.
from ..conftest import BILLING, CORPUS, REPO, SECRET, SUPPORT, closed_port, mail, write_config
from .sink import AGENTS, Sink, relay_section, running_sink

__all__ = [
    "AGENTS", "BILLING", "CORPUS", "REPO", "SECRET", "SUPPORT", "Cli", "CliResult", "cli_ok", "MakeDaemon", "closed_port",
    "mail", "run_cli", "send", "settle", "smtp_send", "wait_until", "write_config",
]

T = TypeVar("T")


def smtp_send(port: int, raw: bytes, rcpts: list[str], sender: str = "alice@customer.test") -> dict[str, tuple[int, bytes]]:
    """Send over a real SMTP session; return refused recipients (smtplib raises on total failure)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(sender, rcpts, raw)


async def send(port: int, raw: bytes, rcpts: list[str] | None = None, sender: str = "alice@customer.test") -> dict[str, tuple[int, bytes]]:
    return await asyncio.to_thread(smtp_send, port, raw, rcpts or [SUPPORT], sender)


async def settle(running: Running, timeout: float = 10) -> None:
    """Wait until the worker has processed everything spooled so far (its idle event, then the spool's count)."""
    async with asyncio.timeout(timeout):
        while True:
            running.worker.wake()
            running.worker.idle.clear()
            await running.worker.idle.wait()
            if not (await spool.counts(running.store)).get("received"):
                return


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 20,
    wake: asyncio.Event | None = None,
    what: str = "",
) -> T:
    """The predicate's first truthy value. With `wake` (an event the daemon or the sink sets on a
    change) it waits on that event between checks; otherwise it looks again every 20 ms. The timeout
    is only a guard against a hang, generous for a loaded CI machine; never an assertion on speed."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                if wake is not None:
                    wake.clear()
                value = predicate()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value  # type: ignore[return-value]
                if wake is not None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):  # a change the event does not signal still counts
                            await wake.wait()
                else:
                    await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"still not true after {timeout} s: {what or predicate}") from None


@dataclass(frozen=True)
class CliResult:
    """What one `mailgate …` command did: exit code, stdout, stderr, and stdout read as JSON."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def json(self) -> Any:
        """The command's JSON: the whole of stdout, or its last line for commands that print one object a line."""
        text = self.stdout.strip()
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return json.loads(text.splitlines()[-1])

    @property
    def lines(self) -> list[Any]:
        """stdout as JSON lines (parse --json, spool list …)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def _config_path(target: Running | Config | Path) -> Path:
    if isinstance(target, Running):
        target = target.config
    if isinstance(target, Config):
        assert target.source is not None, "a config loaded from a file: the CLI reads it again"
        return Path(target.source)
    return target


def run_cli_sync(target: Running | Config | Path, *args: str, input: str | bytes | None = None) -> CliResult:
    """`mailgate --config <target's file> ARGS` in this process (click's CliRunner)."""
    from mailgate.cli.main import main

    result = CliRunner().invoke(main, ["--config", str(_config_path(target)), *args], input=input)
    return CliResult(result.exit_code, result.stdout, result.stderr)


async def run_cli(target: Running | Config | Path, *args: str, input: str | bytes | None = None) -> CliResult:
    """The same from async tests: on a thread, because each command runs its own event loop while the
    test's loop keeps the daemon serving."""
    return await asyncio.to_thread(run_cli_sync, target, *args, input=input)


async def cli_ok(target: Running | Config | Path, *args: str) -> CliResult:
    """A command that must succeed: how a test changes state the way an operator or agent would."""
    result = await run_cli(target, *args)
    assert result.exit_code == 0, f"mailgate {' '.join(args)}: exit {result.exit_code}\n{result.output}"
    return result


class Cli:
    """The `cli` fixture: `await cli("tickets", "list", "--json")` against the test's config, which is
    the last daemon's from make_daemon, else the `config` fixture's; `config=` names another."""

    def __init__(self, default: Callable[[], Config]) -> None:
        self._default = default

    async def __call__(self, *args: str, config: Running | Config | Path | None = None, input: str | None = None) -> CliResult:
        return await run_cli(config or self._default(), *args, input=input)

    def sync(self, *args: str, config: Running | Config | Path | None = None, input: str | None = None) -> CliResult:
        return run_cli_sync(config or self._default(), *args, input=input)


@pytest_asyncio.fixture
async def sink() -> AsyncIterator[Sink]:
    """An aiosmtpd sink on 127.0.0.1 standing in for the relay."""
    async with running_sink() as s:
        yield s


@pytest_asyncio.fixture
async def daemon(config: Config) -> AsyncIterator[Running]:
    """A daemon on the plain test config (its relay a closed port: no mail leaves)."""
    async with started(config) as running:
        yield running


MakeDaemon = Callable[..., Awaitable[Running]]


@pytest.fixture
def started_daemons() -> list[Running]:
    """The daemons make_daemon started in this test, oldest first (the CLI fixture uses the last)."""
    return []


@pytest_asyncio.fixture
async def make_daemon(tmp_path: Path, sink: Sink, started_daemons: list[Running]) -> AsyncIterator[MakeDaemon]:
    """A factory of running daemons relaying to the `sink` fixture, each stopped at teardown.

    `await make_daemon(extra)` writes a config (queues and agents from `extra`, [relay] the sink,
    fast outbox retries); `relay=False` leaves the relay a closed port, for tests that compare rows
    before and after and must not see delivery events arrive in between; `config=` starts an existing one; `clock=` hands the daemon a clock
    (mailgate.clock.ManualClock) so a test moves time instead of rewriting rows; `**outbox` sets
    [outbox] keys (send_delay=0.2 …). Each further daemon of a test gets a folder of its own."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(
            extra: str = "",
            *,
            config: Config | None = None,
            clock: Clock | None = None,
            relay: bool = True,
            smtp: str = "",
            gateway: str = "",
            storage: str = "",
            **outbox: object,
        ) -> Running:
            if config is None:
                folder = tmp_path if not started_daemons else tmp_path / f"daemon{len(started_daemons) + 1}"
                folder.mkdir(exist_ok=True)
                body = (relay_section(sink.port, **outbox) if relay and "[relay]" not in extra else "") + extra
                config = config_mod.load(write_config(folder, body, smtp=smtp, gateway=gateway, storage=storage))
            # The daemon takes a clock once its owner hands one down; until then only a test that
            # moves time needs it, and passes it explicitly.
            running = await stack.enter_async_context(started(config, clock=clock) if clock else started(config))  # type: ignore[call-arg]
            started_daemons.append(running)
            return running

        yield make


@pytest.fixture
def cli(request: pytest.FixtureRequest, started_daemons: list[Running]) -> Cli:
    """Run `mailgate` commands against the test's config (see Cli)."""

    def default() -> Config:
        if started_daemons:
            return started_daemons[-1].config
        config: Config = request.getfixturevalue("config")
        return config

    return Cli(default)
