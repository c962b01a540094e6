"""Reused relay sessions: a NOOP probes only one idle long enough for the relay to have dropped it."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailgate.config import RelayConfig
from mailgate.outgoing.relay import Relay

from .conftest import mail
from .sink import Sink, running_sink

pytestmark = pytest.mark.asyncio


class CountingSink(Sink):
    """The sink, counting the NOOPs and sessions it sees."""

    noops: int = 0
    sessions: int = 0

    async def handle_NOOP(self, server: SMTP, session: Session, envelope: Envelope, arg: str) -> str:
        self.noops += 1
        return "250 OK"

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses


async def test_a_fresh_or_just_used_session_gets_no_noop() -> None:
    async with running_sink(CountingSink()) as sink:
        assert isinstance(sink, CountingSink)
        relay = Relay(RelayConfig(port=sink.port, connections=1, timeout=10), "mailgate.test")
        try:
            for i in range(5):
                result = await relay.send("bounces@example.test", f"c{i}@customer.test", mail(subject=f"n{i}"))
                assert result.ok, result
            await sink.wait_count(5)
        finally:
            await relay.close()
    assert sink.sessions == 1  # one session carried all five
    assert sink.noops == 0


async def test_a_session_idle_past_the_threshold_is_probed_first() -> None:
    async with running_sink(CountingSink()) as sink:
        assert isinstance(sink, CountingSink)
        relay = Relay(RelayConfig(port=sink.port, connections=1, timeout=10), "mailgate.test")
        try:
            assert (await relay.send("bounces@example.test", "a@customer.test", mail())).ok
            assert sink.noops == 0
            relay.idle_probe = 0.0  # every idle session now counts as old enough to have been dropped
            assert (await relay.send("bounces@example.test", "b@customer.test", mail())).ok
            await sink.wait_count(2)
        finally:
            await relay.close()
    assert sink.noops == 1
    assert sink.sessions == 1
