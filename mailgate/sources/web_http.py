"""One HTTP/1.1 exchange on a stream, parsed by h11: a bounded request head, a bounded body, one answer, close."""

from __future__ import annotations

import asyncio
import contextlib
import http
from dataclasses import dataclass, field

import h11

from mailgate.sources.web_form import Refusal

MAX_HEAD = 16 * 1024  # request line and headers together; browsers send 1-3 KiB
_READ = 64 * 1024
# After an early answer (413 before the body was read) the client is usually still sending: closing
# at once makes the kernel answer its data with a reset, which can destroy our answer in its receive
# buffer before it is read (Apache's "lingering close"). So read and drop what comes, within bounds.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Head:
    method: str
    path: str  # without the query
    headers: dict[str, str]  # names lowercased; a repeated header joined with ", " (RFC 9110 5.3)

    def get(self, name: str) -> str:
        return self.headers.get(name, "")

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


class Exchange:
    """The server side of one connection: read() the head, body() if wanted, then send() one answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        # The whole request (head and body) must arrive by then: a client trickling a byte at a
        # time (slowloris) holds a connection slot for at most this long. Storing it is not timed
        # here: a cancelled commit could leave a stored mail answered as a failure.
        self.deadline = asyncio.get_running_loop().time() + timeout

    async def _event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise Refusal(exc.error_status_hint, f"malformed HTTP request: {exc}") from None
            if isinstance(event, h11.Event) or event is h11.PAUSED:
                return event
            async with asyncio.timeout_at(self.deadline):
                data = await self.reader.read(_READ)
            self.conn.receive_data(data)  # NEED_DATA; b"" tells h11 the client closed

    async def head(self) -> Head | None:
        """The request line and headers; None when the client closed without sending one."""
        event = await self._event()
        if not isinstance(event, h11.Request):
            return None
        # h11 bounds only a head still incomplete; one that arrived whole in a single read is checked here.
        if len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers) > MAX_HEAD:
            raise Refusal(431, f"the request line and headers are larger than {MAX_HEAD} bytes")
        headers: dict[str, str] = {}
        for name, value in event.headers:
            key = name.decode("ascii").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        target = event.target.decode("ascii", "replace")
        return Head(event.method.decode("ascii", "replace"), target.split("?", 1)[0], headers)

    async def body(self, limit: int) -> bytes:
        """The whole body (chunked or not), or Refusal(413) as soon as it passes `limit` bytes."""
        if self.conn.client_is_waiting_for_100_continue:  # curl asks first for bodies over 1 KiB
            self.writer.write(self.conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")) or b"")
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise Refusal(413, f"the request body is larger than {limit} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise Refusal(400, "the request ended before its body did")

    async def send(self, answer: Answer, timeout: float) -> None:
        reason = http.HTTPStatus(answer.status).phrase.encode()
        headers = [("content-type", answer.content_type), ("content-length", str(len(answer.body))),
                   ("cache-control", "no-store"), ("x-content-type-options", "nosniff"), ("connection", "close"),
                   *answer.headers]
        try:
            data = self.conn.send(h11.Response(status_code=answer.status, headers=headers, reason=reason)) or b""
            if answer.body:
                data += self.conn.send(h11.Data(data=answer.body)) or b""
            data += self.conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            # h11 refuses to answer a request it could not even read; the status line is still owed.
            head = f"HTTP/1.1 {answer.status} {reason.decode()}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
            data = head.encode("latin-1") + b"\r\n" + answer.body
        self.writer.write(data)
        async with asyncio.timeout(timeout):
            await self.writer.drain()

    async def close(self) -> None:
        """Close; first drain a request body still on its way (see _LINGER_SECONDS)."""
        if self.conn.their_state in (h11.SEND_BODY, h11.IDLE, h11.ERROR) and not self.reader.at_eof():
            with contextlib.suppress(Exception):
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                async with asyncio.timeout(_LINGER_SECONDS):
                    dropped = 0
                    while dropped < _LINGER_BYTES:
                        chunk = await self.reader.read(_READ)
                        if not chunk:
                            break
                        dropped += len(chunk)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
