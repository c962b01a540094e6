"""The long-running loops: intake worker, outbox sender, timers, monitoring."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

# Starts one long-running task in the daemon's task group (a name for logs and tests).
Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]], str], "asyncio.Task[None]"]
