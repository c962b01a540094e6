"""Ingest throughput: SMTP as deployed (p50/p99 to 250), parse+store alone, a bare-stdlib baseline, 100k tickets, 200 rules.

Run: python bench/ingest.py [--limit N] [--clients C] [--rules-limit N] [--rules-rounds R]

- SMTP: the corpus sent to a daemon on config.example.toml (queues, agents, acknowledgements and
  notifications to a relay sink), as bench/e2e.py runs it; rates until every mail is ticketed
  (smtp_msgs_per_s) and until the outbox is empty (smtp_delivered_msgs_per_s).
- "ingest" and the 100k-ticket comparison spool the corpus as *imported* mail: PARSE+STORE ONLY,
  NO OUTGOING MAIL (imported mail is never acknowledged nor notified, about three quarters of the
  work a deployment does per mail). They isolate parsing, threading and the store's indexes; for
  what a deployment sees use the SMTP figures here or bench/e2e.py (--stored-tickets for a grown store).
The routing figures come from bench/rules.py's functions (200 rules matching nothing beside none).
Prints figures as it goes; the last line is one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailgate import config as config_mod  # noqa: E402
from mailgate.models import Source  # noqa: E402
from mailgate.pipeline.process import Processor  # noqa: E402
from mailgate.sources import pipe  # noqa: E402
from mailgate.store import store_for  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import e2e  # noqa: E402  (bench/e2e.py)
import rules as routing_bench  # noqa: E402  (bench/rules.py)
from e2e_mail import SUPPORT, Mail, corpus_mails  # noqa: E402


def write_config(folder: Path, port: int = 0) -> Path:
    path = folder / "config.toml"
    path.write_text(
        '[gateway]\naddresses = ["support@example.test"]\nsecret = "bench-secret-0123456789"\n'
        f'[storage]\ndatabase = "mailgate.sqlite3"\n[smtp]\nlisten = "127.0.0.1:{port}"\n'
        "max_message_size = 10485760\n"
    )
    return path


def baseline(mails: list[bytes], folder: Path) -> float:
    """Bare stdlib parse + one SQLite insert (and commit) per message, WAL, synchronous=NORMAL."""
    db = sqlite3.connect(folder / "baseline.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, message_id TEXT, subject TEXT, raw BLOB)")
    start = time.perf_counter()
    for raw in mails:
        msg = message_from_bytes(raw, policy=compat32)
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO m (message_id, subject, raw) VALUES (?, ?, ?)",
            (str(msg.get("message-id", "")), str(msg.get("subject", "")), raw),
        )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return len(mails) / elapsed


async def ingest_in_process(config_path: Path, mails: list[bytes]) -> float:
    """What `mailgate ingest --mbox` does: spool in batches, then parse/thread/store each."""
    config = config_mod.load(config_path)
    async with store_for(config) as store:
        start = time.perf_counter()
        await pipe.store_messages(
            store, iter([(str(i), m) for i, m in enumerate(mails)]),
            mail_from="", rcpt_to=("support@example.test",), source=Source.IMPORT, imported=True,
        )
        await Processor(config, store).drain()
        return len(mails) / (time.perf_counter() - start)


def pipe_processes(config_path: Path, mails: list[bytes]) -> float:
    """One `mailgate ingest` process per message, as an MTA pipe runs it."""
    start = time.perf_counter()
    for raw in mails:
        subprocess.run(
            [sys.executable, "-m", "mailgate", "--config", str(config_path), "--log-level", "ERROR", "ingest"],
            input=raw, check=True, capture_output=True,
        )
    return len(mails) / (time.perf_counter() - start)


def smtp_path(folder: Path, mails: list[bytes], clients: int) -> tuple[e2e.Round, e2e.Round]:
    """The corpus over SMTP to a daemon on the example config (agents, acknowledgements, a relay sink),
    then to bench/e2e.py's trivial server: (mailgate, trivial)."""
    # CRLF on the wire, as a real MTA sends it (smtplib sends bytes unchanged).
    wire = [Mail(f"corpus{i}@customer.test", [SUPPORT], m.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            for i, m in enumerate(mails)]
    ours = e2e.mailgate_round(folder, ("list", wire), len({m.raw for m in wire}), clients)
    return ours, e2e.trivial_round(folder, wire, clients)


def fill_100k(db_path: Path, tickets: int) -> None:
    """Tickets with a contact, a party, a message and its Message-ID each, as a busy year leaves them."""
    db = sqlite3.connect(db_path, isolation_level=None)
    now = "2026-01-01T00:00:00+00:00"
    db.execute("BEGIN")
    db.executemany("INSERT INTO contacts (id, name, created_at) VALUES (?, ?, ?)",
                   ((i, f"Customer {i}", now) for i in range(1, tickets + 1)))
    db.executemany("INSERT INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
                   ((f"c{i}@customers.test", i, now) for i in range(1, tickets + 1)))
    db.executemany(
        "INSERT INTO tickets (id, number, subject, contact_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        ((i, 1000 + i, f"case {i}", i, now, now) for i in range(1, tickets + 1)))
    db.executemany("INSERT INTO ticket_parties (ticket_id, address, role) VALUES (?, ?, 'requester')",
                   ((i, f"c{i}@customers.test") for i in range(1, tickets + 1)))
    db.executemany(
        "INSERT INTO messages (id, ticket_id, direction, message_id, content_key, recipients, kind,"
        " thread_rule, created_at, text, reply_text) VALUES (?, ?, 'in', ?, ?, '{}', 'message', 'new', ?, ?, ?)",
        ((i, i, f"m{i}@customers.test", f"{i:064x}", now, "hello " * 40, "hello") for i in range(1, tickets + 1)))
    db.executemany("INSERT OR IGNORE INTO message_ids (message_id, ticket_id) VALUES (?, ?)",
                   ((f"m{i}@customers.test", i) for i in range(1, tickets + 1)))
    db.execute("COMMIT")
    db.close()


def routing(limit: int, rounds: int) -> dict[str, float]:
    """bench/rules.py's measurement: best-of-rounds drain rate with none and with 200 rules."""
    mails = routing_bench.corpus_mails(limit) or routing_bench.generated_mails(limit)
    extra = routing_bench.two_hundred_rules()
    best = {"none": 0.0, "200": 0.0}
    for _ in range(rounds):
        for label, rules_toml in (("none", ""), ("200", extra)):  # interleaved: drift hits both sides
            best[label] = max(best[label], asyncio.run(routing_bench.ingest_rate(rules_toml, mails)))
    return {
        "rules_mails": len(mails),
        "rate_no_rules": round(best["none"], 1),
        "rate_200_rules": round(best["200"], 1),
        "rules_200_vs_none": round(best["200"] / best["none"], 3),
        "route_us_no_rules": round(routing_bench.route_cost_us("", mails), 1),
        "route_us_200_rules": round(routing_bench.route_cost_us(extra, mails), 1),
    }


async def prepare(config_path: Path) -> None:
    async with store_for(config_mod.load(config_path)):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=1200, help="corpus mails to use")
    parser.add_argument("--clients", type=int, default=4, help="concurrent SMTP connections")
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets in the grown store")
    parser.add_argument("--rules-limit", type=int, default=600, help="mails per routing round")
    parser.add_argument("--rules-rounds", type=int, default=2, help="routing rounds (best counts)")
    args = parser.parse_args()
    mails = corpus_mails(args.limit)
    print(f"corpus mails: {len(mails)}, {sum(map(len, mails)) / 1024 / 1024:.1f} MiB")
    work = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    try:
        for name in ("baseline", "ingest", "smtp", "empty", "grown"):
            (work / name).mkdir()
        base = baseline(mails, work / "baseline")
        print(f"baseline (stdlib parse + 1 insert/commit each): {base:.0f} msgs/s")
        ingest_rate = asyncio.run(ingest_in_process(write_config(work / "ingest"), mails))
        print(f"ingest as imported mail (parse+store only, no outgoing mail; in process): {ingest_rate:.0f} msgs/s")
        pipe_rate = pipe_processes(write_config(work / "ingest"), mails[:30])
        print(f"ingest as one process per message (MTA pipe, no agents): {pipe_rate:.1f} msgs/s")
        smtp, trivial = smtp_path(work / "smtp", mails, args.clients)
        smtp_rate, smtp_accept_rate = smtp.rate("ticketed") or 0.0, smtp.rate("accept") or 0.0
        smtp_delivered_rate = smtp.rate("delivered") or 0.0
        p50, p99 = smtp.pct(50), smtp.pct(99)
        print(f"smtp on the example config ({args.clients} clients, agents, acknowledgements), until ticketed: "
              f"{smtp_rate:.0f} msgs/s; until the outbox is empty: {smtp_delivered_rate:.0f} msgs/s; "
              f"accepted: {smtp_accept_rate:.0f} msgs/s ({smtp_accept_rate / (trivial.rate('accept') or 1):.2f} of "
              f"a trivial server); time to 250 p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
              f"{smtp.extra['sent_per_mail']} mails sent per mail")
        # Threading cost as the store grows: the same mails into an empty store and into 100k tickets.
        empty_cfg = write_config(work / "empty")
        asyncio.run(prepare(empty_cfg))
        grown_cfg = write_config(work / "grown")
        asyncio.run(prepare(grown_cfg))
        t0 = time.perf_counter()
        fill_100k(work / "grown" / "mailgate.sqlite3", args.tickets)
        print(f"filled {args.tickets} tickets in {time.perf_counter() - t0:.1f} s")
        pristine_empty = (work / "empty" / "mailgate.sqlite3").read_bytes()
        shutil.copy(work / "grown" / "mailgate.sqlite3", work / "grown.sqlite3.orig")
        # Best of three, the two stores taking turns: disk and page-cache noise on a shared machine
        # otherwise lands on whichever store ran at a bad moment.
        runs = {"empty": 0.0, "grown": 0.0}
        for _ in range(3):
            for name, cfg in (("empty", empty_cfg), ("grown", grown_cfg)):
                db_file = work / name / "mailgate.sqlite3"
                for suffix in ("-wal", "-shm"):
                    Path(str(db_file) + suffix).unlink(missing_ok=True)
                shutil.rmtree(work / name / "mailgate.sqlite3.attachments", ignore_errors=True)
                if name == "empty":
                    db_file.write_bytes(pristine_empty)
                else:
                    shutil.copy(work / "grown.sqlite3.orig", db_file)
                runs[name] = max(runs[name], asyncio.run(ingest_in_process(cfg, mails)))
        ratio_100k = runs["grown"] / runs["empty"]
        print(f"parse+store only (imported, no outgoing mail) into an empty store: {runs['empty']:.0f} msgs/s; "
              f"with {args.tickets} tickets: "
              f"{runs['grown']:.0f} msgs/s ({ratio_100k:.2f})")
        routed = routing(args.rules_limit, args.rules_rounds)
        print(f"drain with no rules: {routed['rate_no_rules']:.0f} msgs/s; with 200 rules: "
              f"{routed['rate_200_rules']:.0f} msgs/s ({routed['rules_200_vs_none']:.2f}); rules.route() "
              f"{routed['route_us_no_rules']:.0f} µs/mail with none, {routed['route_us_200_rules']:.0f} with 200")
        figures = {
            "corpus_mails": len(mails),
            "baseline_msgs_per_s": round(base, 1),
            "measures": {"ingest_*, rate_*": "parse+store only, no outgoing mail (imported)",
                         "smtp_*": "config.example.toml with agents and acknowledgements, relay sink up"},
            "ingest_msgs_per_s": round(ingest_rate, 1),
            "ingest_pipe_process_msgs_per_s": round(pipe_rate, 2),
            "smtp_msgs_per_s": round(smtp_rate, 1),
            "smtp_accept_msgs_per_s": round(smtp_accept_rate, 1),
            "smtp_delivered_msgs_per_s": round(smtp_delivered_rate, 1),
            "smtp_accept_vs_trivial": round(smtp_accept_rate / (trivial.rate("accept") or 1), 3),
            "smtp_sent_per_mail": smtp.extra["sent_per_mail"],
            "smtp_vs_baseline": round(smtp_rate / base, 3),
            "ingest_vs_baseline": round(ingest_rate / base, 3),
            "smtp_p50_ms": round(p50, 2),
            "smtp_p99_ms": round(p99, 2),
            "rate_empty_msgs_per_s": round(runs["empty"], 1),
            "rate_100k_msgs_per_s": round(runs["grown"], 1),
            "rate_100k_vs_empty": round(ratio_100k, 3),
            **routed,
        }
        print(json.dumps(figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
