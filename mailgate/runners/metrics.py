"""Prometheus metrics, computed at scrape time from one read transaction and the workers' live state."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mailgate.runners import health
from mailgate.runners.parts import Parts
from mailgate.store import Store, Txn, stats
from mailgate.store.counts import Counts

# A `_created` series per counter doubles what is stored and means nothing for totals we
# derive from the database.
disable_created_metrics()  # type: ignore[no-untyped-call]

# States that always appear (as 0), so an alert on "failed > 0" has a series before the first failure.
OUTBOX_STATES = ("queued", "sending", "sent", "failed", "held", "cancelled")
IMAP_STATES = ("connecting", "idle", "polling", "fetching", "backoff", "auth-failed", "stopped")


@dataclass
class _Tally:
    """A running count per label over rows with growing ids: only rows added since the last scrape are read."""

    table: str
    column: str
    last_id: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    async def update(self, tx: Txn) -> None:
        added, self.last_id = await stats.added_since(tx, self.table, self.column, self.last_id)
        for label, n in added.items():
            key = label or "none"
            self.counts[key] = self.counts.get(key, 0) + n


@dataclass(frozen=True, slots=True)
class Snapshot:
    received: dict[str, int]
    opened: dict[str, int]
    spool: dict[str, int]
    outbox: dict[str, int]
    oldest_queued_seconds: float
    imap: dict[str, int]
    sla_breached: dict[str, int]
    store: Counts
    web_accepted: int = 0
    web_refused: dict[str, int] = field(default_factory=dict)


class Metrics:
    """Holds the running tallies between scrapes; render() is what GET /metrics answers."""

    def __init__(self, running: Parts) -> None:
        self.running = running
        self._received = _Tally("spool", "source")
        self._opened = _Tally("tickets", "queue")

    async def snapshot(self, store: Store) -> Snapshot:
        async with store.read() as tx:
            await self._received.update(tx)
            await self._opened.update(tx)
            pending = await stats.spool_count(tx, "received")
            dead = await stats.spool_count(tx, "dead")
            outbox = await stats.outbox_by_state(tx)
            oldest = await stats.oldest_queued(tx)
            imap = await stats.imap_by_state(tx)
            breached = await stats.sla_breached(tx)
        web = self.running.web.counts if self.running.web is not None else None
        age = 0.0
        if oldest:
            age = max(0.0, (store.clock.now() - datetime.fromisoformat(oldest)).total_seconds())
        return Snapshot(
            received=dict(self._received.counts),
            opened=dict(self._opened.counts),
            spool={"received": pending, "dead": dead},
            outbox=outbox,
            oldest_queued_seconds=age,
            imap=imap,
            sla_breached=breached,
            # Read after this scrape's own snapshot: its few statements are in the totals it reports.
            store=Counts(**vars(store.counts)),
            web_accepted=web.accepted if web is not None else 0,
            web_refused=dict(web.refused) if web is not None else {},
        )

    async def render(self) -> bytes:
        snap = await self.snapshot(self.running.store)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(snap, self.running))
        # process_cpu_seconds_total, process_resident_memory_bytes …, from /proc (Linux only; elsewhere
        # it adds nothing). A fresh registry each scrape has no default collectors, so it is named here.
        ProcessCollector(registry=registry)
        return generate_latest(registry)


class _Families(Collector):
    """The metric families of one scrape (a fresh registry each time: nothing stale survives)."""

    def __init__(self, snap: Snapshot, running: Parts) -> None:
        self.snap = snap
        self.running = running

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snap = self.snap
        received = CounterMetricFamily("mailgate_mails_received", "Mails spooled, by source.", labels=["source"])
        for source, n in sorted(snap.received.items()):
            received.add_metric([source], n)
        yield received
        opened = CounterMetricFamily("mailgate_tickets_opened", "Tickets opened, by queue.", labels=["queue"])
        for queue, n in sorted(snap.opened.items()):
            opened.add_metric([queue], n)
        yield opened
        spool = GaugeMetricFamily("mailgate_spool_rows", "Spool rows waiting (received) or given up (dead).",
                                  labels=["state"])
        for state, n in snap.spool.items():
            spool.add_metric([state], n)
        yield spool
        outbox = GaugeMetricFamily("mailgate_outbox_rows", "Outbox rows, by state.", labels=["state"])
        for state in sorted(set(OUTBOX_STATES) | set(snap.outbox)):
            outbox.add_metric([state], snap.outbox.get(state, 0))
        yield outbox
        yield GaugeMetricFamily("mailgate_outbox_oldest_queued_seconds",
                                "Age of the oldest queued outbox row (0: none).", value=snap.oldest_queued_seconds)
        sender = self.running.outgoing.sender if self.running.outgoing is not None else None
        yield CounterMetricFamily("mailgate_relay_failures", "Attempts the relay itself failed (no session, 421, auth).",
                                  value=sender.relay_failures if sender is not None else 0)
        imap = GaugeMetricFamily("mailgate_imap_accounts", "IMAP accounts, by state.", labels=["state"])
        for state in sorted(set(IMAP_STATES) | set(snap.imap)):
            imap.add_metric([state], snap.imap.get(state, 0))
        yield imap
        sla = GaugeMetricFamily("mailgate_sla_breached_tickets", "Tickets whose SLA deadline passed, by kind.",
                                labels=["kind"])
        for kind, n in snap.sla_breached.items():
            sla.add_metric([kind], n)
        yield sla
        counts = snap.store
        yield CounterMetricFamily("mailgate_store_statements", "SQL statements run (executemany: one per row).",
                                  value=counts.statements)
        yield CounterMetricFamily("mailgate_store_write_transactions", "Write transactions committed.",
                                  value=counts.write_transactions)
        yield CounterMetricFamily("mailgate_store_read_transactions", "Read transactions (snapshots) opened.",
                                  value=counts.read_transactions)
        yield CounterMetricFamily("mailgate_web_accepted", "Web form and API posts stored as mail (POST /v1/tickets).",
                                  value=snap.web_accepted)
        refused = CounterMetricFamily("mailgate_web_refused", "Web posts turned away, by reason.", labels=["reason"])
        for reason, n in sorted(snap.web_refused.items()):  # every reason from the start, while [web] listens
            refused.add_metric([reason], n)
        yield refused
        up = GaugeMetricFamily("mailgate_worker_up", "1 while the worker runs.", labels=["kind"])
        for name, alive in health.workers_alive(self.running).items():
            up.add_metric([name], 1 if alive else 0)
        yield up
