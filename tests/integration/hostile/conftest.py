"""Hostile and unusual mail against a running daemon: real SMTP in, an aiosmtpd sink as the relay.

Every test here sends what an attacker (or a broken mailer) would send, through a real SMTP
session, and checks what a person would see: mail still reaching the relay, the ticket with its
sender, nothing reaching the attacker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pytest_asyncio

from mailgate import config as config_mod
from mailgate.config import Config
from mailgate.daemon import Running

from ..conftest import SUPPORT, MakeDaemon, mail, send, settle, write_config
from ..sink import AGENTS, Sink, relay_section, wait_mail

TRUSTED = "mx.example.test"
CUSTOMER = "alice@customer.test"
AINO = "aino@agents.test"


@pytest.fixture
def hostile_config(tmp_path: Path, sink: Sink) -> Callable[..., Config]:
    """A deployment-shaped config: queues, agents, acknowledgements on, the relay a sink."""

    def make(extra: str = "", *, send_delay: float = 0.2, smtp: str = "", gateway: str = "", **outbox: object) -> Config:
        body = relay_section(sink.port, send_delay=send_delay, **outbox) + AGENTS + extra
        gw = f'authserv_id = "{TRUSTED}"\n' + gateway
        return config_mod.load(write_config(tmp_path, body, gateway=gw, smtp=smtp))

    return make


@pytest_asyncio.fixture
async def hostile(hostile_config: Callable[..., Config], make_daemon: MakeDaemon) -> Running:
    """A daemon on the deployment-shaped config, stopped at teardown."""
    return await make_daemon(config=hostile_config())


async def still_flowing(running: Running, sink: Sink, n: int = 0) -> None:
    """An ordinary customer writes after the hostile mail: her acknowledgement must reach the relay."""
    customer = f"bystander{n}@customer.test"
    subject = f"Ordinary question {n}"
    raw = mail(sender=f"Bea Bystander <{customer}>", subject=subject, message_id=f"<bystander{n}@customer.test>")
    await send(running.smtp_port, raw, [SUPPORT], sender=customer)
    await settle(running)
    await wait_mail(sink, customer, subject)
