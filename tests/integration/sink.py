"""An aiosmtpd sink on 127.0.0.1 in the test's loop, standing in for the relay (smarthost)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

# The TOML pieces that point a test config at a sink live with the other config helpers.
from ..conftest import AGENTS, relay_section

__all__ = ["AGENTS", "Received", "Sink", "free_port", "relay_section", "running_sink", "to", "wait_mail"]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def msg(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]

    def header(self, name: str) -> str:
        return str(self.msg[name] or "")

    def text(self) -> str:
        part = self.msg.get_body(("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.msg.get_body(("html",))
        return part.get_content() if part is not None else ""


@dataclass
class Sink:
    """Records what it accepts; can refuse recipients, hold DATA, or answer every mail."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse: Callable[[str], str | None] | None = None  # rcpt → SMTP reply to refuse with, or None
    hold: asyncio.Event | None = None  # DATA waits for it before answering 250
    on_message: Callable[[Received], Awaitable[None]] | None = None
    sessions_in_data: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]) -> str:
        if self.refuse is not None:
            reply = self.refuse(address)
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # Like a real MTA: the mail is queued once DATA ends, before the 250 goes back.
        item = Received(envelope.mail_from or "", list(envelope.rcpt_tos), envelope.original_content or b"")
        self.received.append(item)
        self._changed.set()
        if self.on_message is not None:
            task = asyncio.get_running_loop().create_task(self.on_message(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.hold is not None and not self.hold.is_set():
            # Held: the client sent everything and waits for a 250 that does not come (yet).
            self.sessions_in_data += 1
            self._changed.set()
            try:
                await self.hold.wait()
            finally:
                self.sessions_in_data -= 1
        return "250 2.0.0 OK queued"

    async def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 20) -> list[Received]:
        """Wait until the received list satisfies the predicate (no fixed sleeps)."""
        async with asyncio.timeout(timeout):
            while not predicate(self.received):
                self._changed.clear()
                await self._changed.wait()
        return self.received

    async def wait_count(self, count: int, timeout: float = 20) -> list[Received]:
        return await self.wait_for(lambda r: len(r) >= count, timeout)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address.lower() in (a.lower() for a in r.rcpt_tos)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_sink(sink: Sink | None = None, port: int = 0) -> AsyncIterator[Sink]:
    sink = sink or Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.test", decode_data=False, loop=loop), host="127.0.0.1", port=port or sink.port
    )
    sink.port = int(server.sockets[0].getsockname()[1])
    try:
        yield sink
    finally:
        server.close()
        if sink.hold is not None:
            sink.hold.set()
        for task in list(sink._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), timeout=5)


def to(sink: Sink, address: str, subject: str = "") -> list[Received]:
    return [r for r in sink.to(address) if subject in r.header("Subject")]


async def wait_mail(sink: Sink, address: str, subject: str, count: int = 1) -> Received:
    try:
        await sink.wait_for(lambda r: len(to(sink, address, subject)) >= count)
    except TimeoutError:
        raise AssertionError(f"no {subject!r} for {address}; got {[r.header('Subject') for r in sink.to(address)]}") from None
    return to(sink, address, subject)[count - 1]
