"""The factories in conftest do what they promise: daemons per test, the CLI on the right config, waiting."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import AGENTS, SUPPORT, Cli, MakeDaemon, mail, send, settle, wait_until
from .sink import Sink, wait_mail


@pytest.mark.asyncio
async def test_make_daemon_relays_to_the_sink_and_the_cli_reads_its_database(
    make_daemon: MakeDaemon, sink: Sink, cli: Cli
) -> None:
    running = await make_daemon(AGENTS, send_delay=0.2)
    await send(running.smtp_port, mail(message_id="<f1@customer.test>"), [SUPPORT])
    await settle(running)
    await wait_mail(sink, "alice@customer.test", "Printer on fire")
    listed = await cli("tickets", "list", "--json")
    assert listed.exit_code == 0 and [t["number"] for t in listed.json] == [1000]
    refused = await cli("tickets", "show", "4242", "--json")
    assert refused.exit_code == 1 and refused.json == {"ok": False, "error": "no ticket #4242"}


@pytest.mark.asyncio
async def test_a_second_daemon_gets_its_own_folder_and_the_cli_follows_the_last(
    make_daemon: MakeDaemon, cli: Cli
) -> None:
    first = await make_daemon(AGENTS)
    second = await make_daemon(AGENTS)
    assert first.config.database_path != second.config.database_path
    await send(first.smtp_port, mail(message_id="<f2@customer.test>"), [SUPPORT])
    await settle(first)
    assert (await cli("tickets", "list", "--json")).json == []
    assert len((await cli("tickets", "list", "--json", config=first)).json) == 1


@pytest.mark.asyncio
async def test_wait_until_returns_the_value_or_names_what_never_came() -> None:
    event = asyncio.Event()
    box: list[int] = []

    async def later() -> None:
        box.append(7)
        event.set()

    asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(later()))
    assert await wait_until(lambda: box and box[0], wake=event, what="seven") == 7
    with pytest.raises(AssertionError, match="still not true after 0.1 s: a mail that never comes"):
        await wait_until(lambda: False, timeout=0.1, what="a mail that never comes")


@pytest.mark.asyncio
async def test_without_a_daemon_the_cli_runs_on_the_config_fixture(cli: Cli) -> None:
    result = await cli("tickets", "list", "--json")
    assert result.exit_code == 0 and result.json == []


def test_sync_tests_call_the_cli_directly(cli: Cli) -> None:
    assert cli.sync("spool", "status").json == {}
