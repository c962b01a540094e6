"""A reload (SIGHUP) puts [relay] and [outbox] in force for the next mail; what is read only at start is named."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import daemon
from mailgate.daemon import started

from .conftest import MakeDaemon, mail, send, settle, wait_until, write_config
from .sink import AGENTS, Sink, relay_section, running_sink, wait_mail

pytestmark = pytest.mark.asyncio


async def test_a_new_relay_port_takes_the_next_mail(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_sink() as old, running_sink() as new:
        config = config_mod.load(write_config(tmp_path, relay_section(old.port, send_delay=0) + AGENTS))
        async with started(config) as running:
            await send(running.smtp_port, mail(subject="Before", message_id="<before@customer.test>"))
            await wait_mail(old, "alice@customer.test", "Before")
            assert running.outgoing is not None and running.outgoing.sender.config.max_age != 7200

            write_config(tmp_path, relay_section(new.port, send_delay=0, max_age=7200) + AGENTS)
            assert daemon.reload(running) is True
            assert running.outgoing.sender.config.max_age == 7200  # [outbox] is in force too

            await send(running.smtp_port, mail(subject="After", sender="Bob <bob@customer.test>",
                                               message_id="<after@customer.test>"))
            await settle(running)
            await wait_mail(new, "bob@customer.test", "After")
            assert not old.to("bob@customer.test")
            assert not new.to("alice@customer.test")
    assert "config.reloaded" in caplog.text
    assert "config.reload_partial" not in caplog.text  # nothing here needs a restart


async def test_sighup_applies_the_relay_and_names_what_needs_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_sink() as old, running_sink() as new:
        config = config_mod.load(write_config(tmp_path, relay_section(old.port, send_delay=0) + AGENTS))
        async with started(config) as running:
            # The signal handler run() installs, in the test's loop.
            running_loop = asyncio.get_running_loop()
            running_loop.add_signal_handler(signal.SIGHUP, daemon._on_sighup, running)
            try:
                write_config(tmp_path, relay_section(new.port, send_delay=0) + AGENTS,
                             storage="busy_timeout = 5.0")
                os.kill(os.getpid(), signal.SIGHUP)
                await wait_until(lambda: running.config is not config, what="the reload")
            finally:
                running_loop.remove_signal_handler(signal.SIGHUP)
            await send(running.smtp_port, mail(subject="After the signal", message_id="<sig@customer.test>"))
            await wait_mail(new, "alice@customer.test", "After the signal")
            assert not old.received
    partial = [r.getMessage() for r in caplog.records if "config.reload_partial" in r.getMessage()]
    assert partial and "storage" in partial[0] and "relay" not in partial[0]


async def test_more_relay_connections_need_a_restart(
    tmp_path: Path, make_daemon: MakeDaemon, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    running = await make_daemon(AGENTS, send_delay=0)
    config = running.config
    more = relay_section(sink.port, send_delay=0).replace("timeout = 10\n", "timeout = 10\nconnections = 4\n", 1)
    write_config(tmp_path, more + AGENTS)
    with caplog.at_level(logging.WARNING, logger="mailgate.daemon"):
        assert daemon.reload(running) is True
    assert running.outgoing is not None and len(running.outgoing.sender._tasks) == config.relay.connections
    assert any("config.reload_partial needs_restart=relay.connections" in r.getMessage() for r in caplog.records)
