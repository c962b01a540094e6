"""The monitoring side of the daemon: a tiny HTTP listener (GET /metrics, GET /healthz) and the systemd watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST

from mailgate.runners import Spawn, health
from mailgate.runners.metrics import Metrics
from mailgate.runners.parts import Parts

log = logging.getLogger("mailgate.monitor")

# Scrapers and probes send a request line and a few headers; anything longer, slower or more
# numerous is not one of them, and must not hold the daemon's loop or memory.
MAX_LINE = 8192
MAX_HEADERS = 100
READ_TIMEOUT = 10.0
MAX_CLIENTS = 16
PATHS = ("/metrics", "/healthz")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Monitor:
    """What start() opened, for stop(); tests find the bound port here."""

    server: asyncio.Server | None = None
    watchdog: health.Watchdog | None = None

    @property
    def http_port(self) -> int | None:
        if self.server is None or not self.server.sockets:
            return None
        return int(self.server.sockets[0].getsockname()[1])


async def start(running: Parts, spawn: Spawn) -> Monitor:
    """The listener when [http] listen is set; the watchdog when systemd asked for one."""
    monitor = Monitor()
    listen = running.config.http.listen
    if listen is not None:
        handler = _Handler(running)
        monitor.server = await asyncio.start_server(handler.serve, listen.host, listen.port, limit=MAX_LINE)
        log.info("http.listening address=%s:%s paths=%s", listen.host, monitor.http_port, ",".join(PATHS))
    interval = health.watchdog_interval()
    if interval is not None:
        monitor.watchdog = health.Watchdog(running, interval)
        monitor.watchdog.start(spawn)
    return monitor


async def stop(monitor: Monitor | None) -> None:
    if monitor is None:
        return
    if monitor.watchdog is not None:
        await monitor.watchdog.stop()
    if monitor.server is not None:
        monitor.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(monitor.server.wait_closed(), timeout=5)


class _Handler:
    def __init__(self, running: Parts) -> None:
        self.running = running
        self.metrics = Metrics(running)
        self._clients = 0
        self._healthy: bool | None = None  # the last verdict, so a change is logged once

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients += 1
        try:
            if self._clients > MAX_CLIENTS:
                return  # closed without a word: a flood of connections, not a monitoring system
            async with asyncio.timeout(READ_TIMEOUT):
                status, ctype, body = await self._answer(reader)
            writer.write(_head(status, ctype, len(body)) + body)
            async with asyncio.timeout(READ_TIMEOUT):
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a slow or vanished client: nothing to answer
        except Exception as exc:  # a bug in one answer must not stop the listener
            log.error("http.failed error=%s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        finally:
            self._clients -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        try:
            line = await reader.readuntil(b"\n")
            for _ in range(MAX_HEADERS):
                if (await reader.readuntil(b"\n")).strip() == b"":
                    break
            else:
                return _text(400, "too many headers")
        except (ValueError, asyncio.LimitOverrunError):
            return _text(400, "request too long")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _text(400, "bad request line")
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method != "GET":
            log.info("http.refused method=%r path=%r", method[:20], target[:100])
            return _text(405, "only GET")
        if target not in PATHS:
            log.info("http.refused method=GET path=%r", target[:100])
            return _text(404, "only /metrics and /healthz")
        try:
            if target == "/metrics":
                return 200, CONTENT_TYPE_LATEST, await self.metrics.render()
            return await self._healthz()
        except Exception as exc:  # the store gone, or a bug: the scraper sees a 500, the operator a line
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            log.error("http.failed path=%s error=%s", target, reason)
            return _text(500, reason)

    async def _healthz(self) -> tuple[int, str, bytes]:
        verdict = await health.check(self.running)
        if verdict.ok != self._healthy:
            if verdict.ok:
                log.info("health.ok")
            else:
                log.warning("health.failing problems=%s", "; ".join(verdict.problems()))
            self._healthy = verdict.ok
        body = json.dumps(verdict.as_json(), sort_keys=True).encode() + b"\n"
        return (200 if verdict.ok else 503), "application/json", body


def _head(status: int, ctype: str, length: int) -> bytes:
    allow = "Allow: GET\r\n" if status == 405 else ""
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\nContent-Length: {length}\r\n"
        f"Cache-Control: no-store\r\nConnection: close\r\n{allow}\r\n"
    ).encode("ascii")


def _text(status: int, message: str) -> tuple[int, str, bytes]:
    return status, "text/plain; charset=utf-8", f"{message}\n".encode()
