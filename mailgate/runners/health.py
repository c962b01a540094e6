"""Is the daemon well: store writable, workers alive, relay reachable; the verdict /healthz and the watchdog give."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from mailgate.obs import sd_notify
from mailgate.runners import Spawn
from mailgate.runners.parts import Parts
from mailgate.store import Store, stats

log = logging.getLogger("mailgate.health")

# The write-lock probe waits this long: a store busier than that cannot take mail in time either
# (SMTP intake answers 451 after smtp.busy_timeout, 2 s by default).
STORE_WAIT = 3.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """One look at the daemon: healthy only when the store takes writes and every worker runs."""

    store: str  # "writable", or why not
    workers: dict[str, bool]
    relay: str  # "ok" | "failing" | "unknown" (nothing sent within http.relay_minutes)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.store == "writable" and all(self.workers.values()) and self.relay != "failing"

    def problems(self) -> list[str]:
        found = [] if self.store == "writable" else [f"store: {self.store}"]
        found += [f"worker {name} dead" for name, alive in self.workers.items() if not alive]
        if self.relay == "failing":
            found.append("relay failing")
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "failing",
            "store": self.store,
            "workers": {name: "alive" if alive else "dead" for name, alive in self.workers.items()},
            "relay": self.relay,
            "problems": self.problems(),
            **self.details,
        }


def workers_alive(running: Parts) -> dict[str, bool]:
    """Every loop the daemon cannot work without; a task that ended is a dead worker."""
    worker_task = running.worker_task
    alive = {
        "spool-worker": worker_task is not None and not worker_task.done(),
        "smtp-server": running.server.is_serving(),
    }
    if running.outgoing is not None:
        alive["outbox-sender"] = running.outgoing.sender.alive()
        alive["timers"] = running.outgoing.timers.alive()
    return alive


async def store_writable(store: Store, wait: float = STORE_WAIT) -> str:
    """Take the write lock and let go (BEGIN IMMEDIATE, COMMIT of nothing): proves writes could happen, writes nothing."""
    try:
        async with store.txn(wait=wait):
            pass
    except Exception as exc:  # a full disk, a read-only file, a lock held elsewhere: all mean "not writable"
        return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    return "writable"


def relay_state(running: Parts, window_minutes: float) -> str:
    """From the sender's last attempts: failing when the latest one within the window failed."""
    if running.outgoing is None:
        return "unknown"
    sender = running.outgoing.sender
    since = time.monotonic() - window_minutes * 60
    ok_at, failed_at = sender.relay_ok_at, sender.relay_failed_at
    if failed_at is not None and failed_at >= since and (ok_at is None or failed_at > ok_at):
        return "failing"
    if ok_at is not None and ok_at >= since:
        return "ok"
    return "unknown"


async def check(running: Parts) -> Verdict:
    return Verdict(
        store=await store_writable(running.store),
        workers=workers_alive(running),
        relay=relay_state(running, running.config.http.relay_minutes),
    )


async def status_counts(store: Store) -> dict[str, int]:
    """What systemctl status shows: mail waiting in the spool and outbox, and what failed."""
    async with store.read() as tx:
        found = await stats.waiting(tx)
    return {"spooled": found.spooled, "queued": found.queued, "failed": found.failed}


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec= (WATCHDOG_USEC), when it is meant for this process; else None."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid != str(os.getpid()):  # inherited from a parent that systemd watches, not us
        return None
    return int(usec) / 1_000_000 / 2


class Watchdog:
    """Pings systemd's watchdog only while every worker runs: a hung or dead daemon gets restarted.

    The ping comes from a task on the daemon's loop, so a blocked loop stops it as well; the
    workers are checked each time, so a loop that runs while the spool worker died stops it too.
    STATUS= carries live counts for `systemctl status`.
    """

    def __init__(self, running: Parts, interval: float) -> None:
        self.running = running
        self.interval = interval
        self.pings = 0
        self._task: asyncio.Task[None] | None = None
        self._withheld = False

    def start(self, spawn: Spawn) -> None:
        self._task = spawn(self._loop, "watchdog")
        log.info("watchdog.started interval=%.1fs", self.interval)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # a bug here must not kill the daemon; the missing ping says enough
                log.error("watchdog.failed error=%s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
            await asyncio.sleep(self.interval)

    async def tick(self) -> None:
        dead = [name for name, alive in workers_alive(self.running).items() if not alive]
        try:
            async with asyncio.timeout(self.interval):
                counts = await status_counts(self.running.store)
            status = f"spooled {counts['spooled']}, queued {counts['queued']}, failed {counts['failed']}"
        except Exception as exc:
            status = f"store unavailable: {type(exc).__name__}"
        if dead:
            if not self._withheld:
                log.error("watchdog.withheld dead=%s (systemd restarts the daemon after WatchdogSec)", ",".join(dead))
            self._withheld = True
            sd_notify(f"STATUS=worker dead: {', '.join(dead)}; {status}")
            return
        if self._withheld:
            log.info("watchdog.resumed")
        self._withheld = False
        if sd_notify(f"WATCHDOG=1\nSTATUS={status}"):
            self.pings += 1
