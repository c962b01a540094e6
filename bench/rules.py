"""Routing cost: ingest rate through the Processor with 200 rules configured beside the rate with none.

Run: python bench/rules.py [--limit N] [--rounds R]
The 200 rules mix every condition kind and match nothing, so every message is checked against all
of them (the worst case). Each round spools the same mails into a fresh database and times
Processor.drain(); the best round of each side counts. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailgate import config as config_mod  # noqa: E402
from mailgate import rules  # noqa: E402
from mailgate.mail.parse import parse  # noqa: E402
from mailgate.models import Source  # noqa: E402
from mailgate.pipeline.process import Processor  # noqa: E402
from mailgate.sources import pipe  # noqa: E402
from mailgate.store import store_for  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
SKIP_SUFFIXES = {".json", ".yml", ".xml", ".md", ".out", ".html", ".bin"}

BASE = """
[gateway]
addresses = ["support@example.test", "billing@example.test"]
secret = "bench-secret-0123456789"

[storage]
database = "mailgate.sqlite3"

[smtp]
listen = "127.0.0.1:0"

[[queues]]
name = "general"
addresses = ["support@example.test"]

[[queues]]
name = "billing"
addresses = ["billing@example.test"]

[[agents]]
id = "anna"
name = "Anna"
addresses = ["anna@example.test"]
"""


def two_hundred_rules() -> str:
    """200 rules of every kind; the words are made up, so none matches and all are evaluated."""
    out = []
    for i in range(200):
        kind = i % 8
        word = f"zq{i:03d}x"
        if kind == 0:
            cond = f'subject = {{ keywords = ["{word}", "{word}a*", "{word}b", "{word}c", "{word}d"] }}'
        elif kind == 1:
            cond = f'sender_domain = {{ glob = ["{word}.example", "*.{word}.example"] }}'
        elif kind == 2:
            cond = f'body = {{ regex = "order\\\\s+#{word}-\\\\d+" }}'
        elif kind == 3:
            cond = f'header = {{ name = "X-{word}", equals = "yes" }}'
        elif kind == 4:
            cond = f'any = [ {{ subject = {{ keywords = ["{word}"] }} }}, {{ body = {{ keywords = ["{word}"] }} }} ]'
        elif kind == 5:
            cond = f'sender = "{word}@customer.example"\nnot = {{ kind = "bounce" }}'
        elif kind == 6:
            cond = f'all = [ {{ language = "hu" }}, {{ subject = {{ regex = "^{word}" }} }} ]'
        else:
            cond = f'recipient = "billing@example.test"\nsubject = {{ glob = "*{word}*" }}'
        action = ('queue = "billing"', 'priority = "high"', 'tags = ["t' + str(i) + '"]', 'assignee = "anna"')[i % 4]
        out.append(f'\n[[rules]]\nname = "rule-{i:03d}"\n{cond}\n{action}\n')
    return "".join(out)


def corpus_mails(limit: int) -> list[bytes]:
    out = []
    for path in sorted(CORPUS.rglob("*")) if CORPUS.exists() else []:
        if not path.is_file() or path.suffix in SKIP_SUFFIXES or "_decoded" in path.name:
            continue
        raw = path.read_bytes()
        if 0 < len(raw) < 512 * 1024 and b":" in raw[:200]:
            out.append(raw)
        if len(out) >= limit:
            break
    # Fresh Message-IDs: every mail opens a new ticket, which is where rules run.
    return [b"Message-ID: <bench-%d@bench.example>\r\n" % i + raw for i, raw in enumerate(out)]


def generated_mails(count: int) -> list[bytes]:
    body = "Hello,\r\n\r\nthe printer in room %d is on fire again. Could you please help?\r\n\r\nAlice\r\n"
    return [
        (
            f"From: Alice <alice{i}@customer.example>\r\nTo: support@example.test\r\nSubject: Printer {i}\r\n"
            f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <gen-{i}@customer.example>\r\n\r\n"
        ).encode() + (body % i).encode()
        for i in range(count)
    ]


async def ingest_rate(extra: str, mails: list[bytes]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(BASE + extra, encoding="utf-8")
        config = config_mod.load(path)
        async with store_for(config) as store:
            await pipe.store_messages(
                store, iter([(str(i), m) for i, m in enumerate(mails)]),
                mail_from="", rcpt_to=("support@example.test",), source=Source.IMPORT, imported=True,
            )
            processor = Processor(config, store)
            start = time.perf_counter()
            handled = await processor.drain()
            elapsed = time.perf_counter() - start
            async with store.read() as tx:
                tickets = await tx.value("SELECT COUNT(*) FROM tickets")
            assert handled == len(mails), (handled, len(mails))
            assert tickets, "no tickets made"
            return handled / elapsed


def route_cost_us(extra: str, mails: list[bytes]) -> float:
    """Microseconds per mail for rules.route() alone (parse excluded)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(BASE + extra, encoding="utf-8")
        ruleset = rules.compile_rules(config_mod.load(path))
    parsed = [parse(m) for m in mails]
    start = time.perf_counter()
    for mail in parsed:
        rules.route(ruleset, mail, ("support@example.test",)).to_json(full=False)
    return (time.perf_counter() - start) / len(parsed) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=600, help="mails per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    mails = corpus_mails(args.limit) or generated_mails(args.limit)
    source = "corpus" if CORPUS.exists() else "generated"
    extra = two_hundred_rules()
    print(f"{len(mails)} {source} mails, {args.rounds} rounds each, 200 rules matching nothing")
    best: dict[str, float] = {"none": 0.0, "200": 0.0}
    for round_ in range(args.rounds):
        for label, rules_toml in (("none", ""), ("200", extra)):  # interleaved: drift hits both sides
            rate = asyncio.run(ingest_rate(rules_toml, mails))
            best[label] = max(best[label], rate)
            print(f"round {round_ + 1}: {label:>4} rules {rate:8.1f} mails/s")
    route_none = route_cost_us("", mails)
    route_200 = route_cost_us(extra, mails)
    print(f"rules.route() alone: {route_none:.1f} µs/mail with none, {route_200:.1f} µs/mail with 200")
    print(
        json.dumps(
            {
                "mails": len(mails),
                "rate_no_rules": round(best["none"], 1),
                "rate_200_rules": round(best["200"], 1),
                "rules_200_vs_none": round(best["200"] / best["none"], 3),
                "route_us_no_rules": round(route_none, 1),
                "route_us_200_rules": round(route_200, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
