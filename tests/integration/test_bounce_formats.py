"""Bounces in formats without a delivery report, sent over SMTP: stored as bounces, never acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..unit.test_bounce_formats import kddi, sendmail5, verizon_vtext
from .conftest import Cli, MakeDaemon, send, settle
from .sink import AGENTS, Sink

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = pytest.mark.engines


@pytest.mark.asyncio
async def test_format_bounces_are_stored_as_bounces_and_get_no_acknowledgement(
    make_daemon: MakeDaemon, sink: Sink
) -> None:
    running = await make_daemon(AGENTS)
    for raw in (kddi(), sendmail5(), verizon_vtext()):
        codes = await send(running.smtp_port, raw.replace(b"\n", b"\r\n"), sender="")
        assert all(code == 250 for code, _ in codes.values())
    await settle(running)
    async with running.store.read() as tx:
        rows = await tx.all("SELECT from_address, kind FROM messages WHERE direction = 'in' ORDER BY id")
        acks = await tx.value("SELECT COUNT(*) FROM outbox WHERE kind = 'ack'")
    assert [(r[0], r[1]) for r in rows] == [
        ("no-reply@0123456789.dion.ne.jp", "bounce"),
        ("mailer-daemon@relay.example.org", "bounce"),
        ("post_master@vtext.example.com", "bounce"),
    ]
    assert acks == 0
    assert not sink.to("no-reply@0123456789.dion.ne.jp") and not sink.to("post_master@vtext.example.com")


@pytest.mark.asyncio
async def test_parse_names_the_addresses_a_bounce_reports_failed(cli: Cli, tmp_path: Path) -> None:
    bounce = tmp_path / "bounce.eml"
    bounce.write_bytes(sendmail5())
    parsed = (await cli("parse", "--json", str(bounce))).json
    assert (parsed["kind"], parsed["bounced_recipients"]) == ("bounce", ["jsmith@example.org"])
    assert "Bounced:     jsmith@example.org" in (await cli("parse", str(bounce))).stdout

    letter = tmp_path / "letter.eml"  # a person's mail that mentions an address is no bounce
    letter.write_bytes(b"From: ann@customer.test\nTo: support@help.example.com\nSubject: Hello\n\n"
                       b"Please write to jsmith@example.org instead.\n")
    assert (await cli("parse", "--json", str(letter))).json["bounced_recipients"] == []
