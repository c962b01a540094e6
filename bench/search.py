"""Search speed: typical queries over a store of 100k tickets and 500k messages, median and p99.

Run: python bench/search.py [--tickets N] [--per-ticket M] [--runs R] [--keep PATH]
     python bench/search.py --engine postgresql --server postgresql://user@127.0.0.1:5432 [--keep DBNAME]
On PostgreSQL the store is a database of that server (mailgate_bench, or --keep's name, reused when
it exists), created afresh otherwise; the search index is the tsvector column and its trigger.
The store is built through the store's own transaction (executemany, one transaction per 10k
tickets), so the FTS5 index is written by the same triggers that keep it in production, row by row
(not rebuilt at the end). Texts come from a help-desk vocabulary with Zipf-like word frequencies
(a few very common words, a long tail of rare ones) in four languages, about 60 words a message.
Each query runs through ops.search.run, snippets included, in a read transaction. The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailgate import config as config_mod  # noqa: E402
from mailgate.ops import search  # noqa: E402
from mailgate.store import store_for  # noqa: E402

CONFIG = """
[gateway]
addresses = ["support@example.test", "billing@example.test"]
secret = "bench-secret-0123456789"

[storage]
{storage}

[smtp]
listen = "127.0.0.1:0"

[[queues]]
name = "support"
addresses = ["support@example.test"]

[[queues]]
name = "billing"
addresses = ["billing@example.test"]

[[agents]]
id = "anna"
name = "Anna"
addresses = ["anna@example.test"]
queues = ["support", "billing"]
"""

DOMAIN = (
    "printer toner paper jam invoice payment refund order delivery shipping password login account reset "
    "email error crash update install license subscription cancel contract price discount laptop screen "
    "keyboard battery charger network wifi router vpn server backup restore database report export import "
    "calendar meeting phone number address change broken slow fast urgent help question problem issue "
    "thanks please regards hello monday friday week month today tomorrow yesterday overdue reminder "
    "lasku maksu tilaus toimitus salasana tulostin kiitos terveisin faktura płatność zamówienie drukarka "
    "dziękuję pozdrawiam számla fizetés rendelés nyomtató köszönöm üdvözlettel café résumé naïve"
).split()
FILLER = ("the a to and of in is it for on that this with we you i our your be have are not can "
          "was at as will please from but by or an if my so do no all has").split()
STATUSES = ("new", "open", "open", "pending", "resolved", "closed", "closed", "closed")
QUERIES = [
    "password",  # one common word (about 4% of messages)
    "printer toner",  # two words
    '"invoice overdue"',  # a phrase
    "printer status:open queue:billing",  # a word with filters
    "router direction:received from:2026-06-01",  # a word, a direction and a date range
    "vexolira",  # a rare word
    "print*",  # a prefix
]


def vocabulary(rng: random.Random, size: int = 30_000) -> list[str]:
    """Made-up words for the long tail: real mail is mostly words that are rare across a help desk."""
    syllables = ["ka", "lo", "mi", "ra", "ve", "xo", "tu", "ne", "si", "po", "da", "li", "ar", "en", "ol", "um"]
    words = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size * 2)}
    return sorted(words)[:size]


class Writer:
    """Message texts with Zipf-like frequencies: filler words, domain words, then the tail."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tail = vocabulary(rng)
        self.tail_cum = list(itertools.accumulate(1 / (i + 1) for i in range(len(self.tail))))
        self.domain_cum = list(itertools.accumulate(1 / (i + 1) ** 0.6 for i in range(len(DOMAIN))))
        self.kind_cum = list(itertools.accumulate((50, 8, 42)))

    def words(self, n: int) -> str:
        rng = self.rng
        kinds = rng.choices((0, 1, 2), cum_weights=self.kind_cum, k=n)
        domain = rng.choices(DOMAIN, cum_weights=self.domain_cum, k=n)
        tail = rng.choices(self.tail, cum_weights=self.tail_cum, k=n)
        return " ".join(rng.choice(FILLER) if k == 0 else domain[i] if k == 1 else tail[i] for i, k in enumerate(kinds))


async def build(config: config_mod.Config, tickets: int, per_ticket: int, seed: int) -> int:
    rng = random.Random(seed)
    writer = Writer(rng)
    contacts = max(tickets // 5, 1)
    messages = 0
    async with store_for(config) as store:
        async with store.txn() as tx:
            await tx.executemany(
                "INSERT INTO contacts (id, name, created_at) VALUES (?, ?, ?)",
                [(c, f"{writer.words(1).title()} {writer.words(1).title()}", "2026-01-01T00:00:00+00:00")
                 for c in range(1, contacts + 1)])
            await tx.executemany(
                "INSERT INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
                [(f"c{c}@customer{c % 97}.test", c, "2026-01-01T00:00:00+00:00") for c in range(1, contacts + 1)])
        for start in range(0, tickets, 10_000):
            ticket_rows, message_rows = [], []
            for t in range(start + 1, min(start + 10_000, tickets) + 1):
                day = f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00+00:00"
                subject = writer.words(rng.randint(2, 7)).capitalize()
                contact = rng.randint(1, contacts)
                ticket_rows.append((t, 1000 + t, subject, rng.choice(STATUSES), rng.choice(("support", "billing")),
                                    rng.choice((None, "anna")), contact, day, day))
                for m in range(per_ticket):
                    direction = "in" if m % 2 == 0 else rng.choice(("agent", "note", "out"))
                    sender = (f"c{contact}@customer{contact % 97}.test" if direction == "in" else "anna@example.test")
                    message_rows.append((t, direction, f"<{t}.{m}@bench.test>", f"{t}.{m}", sender,
                                         ("Re: " if m else "") + subject, writer.words(rng.randint(20, 100)), day))
            async with store.txn() as tx:
                await tx.executemany(
                    "INSERT INTO tickets (id, number, subject, status, queue, assignee, contact_id, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ticket_rows)
                await tx.executemany(
                    "INSERT INTO messages (ticket_id, direction, message_id, content_key, from_address, subject,"
                    " text, reply_text, recipients, kind, thread_rule, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, '', '{}', 'message', 'new', ?)", message_rows)
            messages += len(message_rows)
            print(f"built {min(start + 10_000, tickets)} tickets, {messages} messages", file=sys.stderr)
    return messages


async def measure(config: config_mod.Config, runs: int) -> tuple[dict[str, list[float]], list[float]]:
    """Wall-clock times per query, and the CPU times of all: on a shared machine the wall clock
    also counts the time other processes held the core, the CPU time only the query's own work."""
    times: dict[str, list[float]] = {q: [] for q in QUERIES}
    cpu: list[float] = []
    async with store_for(config) as store:
        for _ in range(runs):
            for q in QUERIES:
                query = search.check(config, search.parse(q))
                async with store.read() as tx:
                    began, began_cpu = time.perf_counter(), time.process_time()
                    await search.run(tx, query, 20)
                    times[q].append((time.perf_counter() - began) * 1000)
                    cpu.append((time.process_time() - began_cpu) * 1000)
    return times, cpu


def postgres_database(server: str, name: str, reuse: bool) -> bool:
    """Create the bench's database on the server (dropped first unless reused); True if it was reused."""
    import asyncpg  # type: ignore[import-untyped]

    async def prepare() -> bool:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if exists and reuse:
                return True
            if exists:
                await conn.execute(f'DROP DATABASE "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
            return False
        finally:
            await conn.close()

    return asyncio.run(prepare())


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=100_000)
    ap.add_argument("--per-ticket", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", default=None,
                    help="build (or reuse) the store at this path (PostgreSQL: this database name)")
    ap.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--server", default=None, help="PostgreSQL: postgresql://user@host:port (no database)")
    args = ap.parse_args()
    if args.engine == "postgresql" and not args.server:
        ap.error("--engine postgresql needs --server postgresql://user@host:port")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.engine == "postgresql":
            name = args.keep or "mailgate_bench"
            reuse = postgres_database(args.server.rstrip("/"), name, reuse=args.keep is not None)
            storage = f'url = "{args.server.rstrip("/")}/{name}"'
        else:
            db = Path(args.keep) if args.keep else folder / "bench.sqlite3"
            reuse = db.exists()
            storage = f'database = "{db}"'
        (folder / "config.toml").write_text(CONFIG.format(storage=storage), encoding="utf-8")
        config = config_mod.load(folder / "config.toml")
        began = time.perf_counter()
        messages = args.tickets * args.per_ticket if reuse else asyncio.run(
            build(config, args.tickets, args.per_ticket, args.seed))
        built_s = time.perf_counter() - began
        times, cpu = asyncio.run(measure(config, args.runs))
        everything = [t for ts in times.values() for t in ts]
        for q, ts in times.items():
            print(f"{q:<45} p50 {statistics.median(ts):7.2f} ms  p99 {p99(ts):7.2f} ms", file=sys.stderr)
        print(json.dumps({
            "engine": args.engine, "tickets": args.tickets, "messages": messages, "build_s": round(built_s, 1), "reused": reuse,
            "queries": {q: round(statistics.median(ts), 2) for q, ts in times.items()},
            "p50_ms": round(statistics.median(everything), 2), "p99_ms": round(p99(everything), 2),
            "max_ms": round(max(everything), 2), "cpu_p50_ms": round(statistics.median(cpu), 2),
            "cpu_p99_ms": round(p99(cpu), 2), "runs": args.runs,
        }))


if __name__ == "__main__":
    main()
