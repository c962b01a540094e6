"""The parts of a running daemon that health checks, metrics and the watchdog look at."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from mailgate.config import Config
from mailgate.runners.outgoing import Outgoing
from mailgate.store import Store


class Listening(Protocol):
    """The SMTP/LMTP listener, as far as health checks ask it."""

    def is_serving(self) -> bool: ...


class WebCounting(Protocol):
    """The web intake's counters (sources/web_counts.py), as /metrics reads them."""

    @property
    def accepted(self) -> int: ...

    @property
    def refused(self) -> Mapping[str, int]: ...


class WebIntake(Protocol):
    """The [web] listener, as far as /metrics asks it."""

    @property
    def counts(self) -> WebCounting: ...


class Parts(Protocol):
    """A running daemon as its monitoring sees it (the daemon's Running is one)."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    @property
    def server(self) -> Listening: ...

    @property
    def worker_task(self) -> asyncio.Task[None] | None: ...

    @property
    def outgoing(self) -> Outgoing | None: ...

    @property
    def web(self) -> WebIntake | None: ...
