"""IMAP intake throughput: mailgate fetching and spooling from a real Dovecot vs a bare imapclient FETCH.

Run: python bench/imap.py [--limit N] [--batch B] [--rounds R]
Both sides fetch the same messages from the same throwaway Dovecot in the same run, connect and
login included, in batches of B. mailgate also commits every batch to the spool, moves its
checkpoint and flags the messages \\Seen; the processing worker (parse, threading) is not part
of this figure (bench/ingest.py measures it). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.dovecot import Dovecot, find_dovecot

from mailgate import config as config_mod
from mailgate.sources.imap import AccountWorker
from mailgate.store import store_for

CORPUS = REPO.parent / "shared" / "corpus"
USER, PASSWORD = "bench", "bench-secret"


def messages(limit: int) -> list[bytes]:
    """Corpus mails under 512 KiB (CRLF), topped up with generated ones; each one distinct."""
    out: list[bytes] = []
    if CORPUS.is_dir():
        for path in sorted(CORPUS.rglob("*.eml")):
            raw = path.read_bytes()
            if 0 < len(raw) < 512 * 1024 and b":" in raw[:200]:
                out.append(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            if len(out) >= limit:
                break
    n = 0
    while len(out) < limit:
        body = (f"Hello, this is question {n}.\r\n" + "Some words about the printer. " * 60 + "\r\n").encode()
        out.append(
            b"From: Alice <alice@customer.test>\r\nTo: support@example.test\r\n"
            + f"Subject: Question {n}\r\nMessage-ID: <bench-{n}@customer.test>\r\n\r\n".encode()
            + body
        )
        n += 1
    # Distinct bytes, so the spool's sha256 dedupe does not shortcut anything.
    return [b"X-Bench-Seq: %d\r\n" % i + raw for i, raw in enumerate(out)]


def fill(server: Dovecot, mails: list[bytes]) -> None:
    client = server.client(USER)
    try:
        for start in range(0, len(mails), 200):
            client.multiappend("INBOX", mails[start : start + 200])
    finally:
        client.logout()


def bare_fetch(server: Dovecot, batch: int) -> tuple[int, float, int]:
    """imapclient alone: login, select, UID SEARCH, UID FETCH (BODY.PEEK[] RFC822.SIZE) in batches."""
    began = time.perf_counter()
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=60)
    client.login(USER, PASSWORD)
    client.select_folder("INBOX")
    uids = client.search("ALL")
    count = size = 0
    for start in range(0, len(uids), batch):
        for data in client.fetch(uids[start : start + batch], ["BODY.PEEK[]", "RFC822.SIZE"]).values():
            count += 1
            size += len(data[b"BODY[]"])
    elapsed = time.perf_counter() - began
    client.logout()
    return count, elapsed, size


async def mailgate_fetch(server: Dovecot, batch: int, total: int, folder: Path) -> tuple[int, float]:
    """mailgate's account worker into a fresh SQLite spool, until every message is committed."""
    path = folder / "config.toml"
    path.write_text(
        '[gateway]\naddresses = ["support@example.test"]\nsecret = "bench-secret-0123456789"\n'
        '[storage]\ndatabase = "mailgate.sqlite3"\n'
        f'[[imap]]\nname = "bench"\nhost = "{server.host}"\nport = {server.port}\nsecurity = "none"\n'
        f'username = "{USER}"\npassword = "{PASSWORD}"\nbatch_size = {batch}\nidle = false\npoll_interval = 3600\n'
    )
    config = config_mod.load(path)
    async with store_for(config) as store:
        worker = AccountWorker(config, config.imap[0], store)
        began = time.perf_counter()
        task = asyncio.create_task(worker.run())
        await worker.wait_until(lambda w: w.stored >= total or w.state == "backoff", timeout=600)
        elapsed = time.perf_counter() - began
        worker.stop()
        await task
        async with store.read() as tx:
            spooled = int(await tx.value("SELECT COUNT(*) FROM spool"))
    return spooled, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binary = find_dovecot()
    if binary is None:
        sys.exit("no dovecot binary (Debian: apt-get install dovecot-imapd)")
    mails = messages(args.limit)
    server = Dovecot(binary, {USER: PASSWORD})
    server.start()
    try:
        fill(server, mails)
        print(f"{len(mails)} messages, {sum(map(len, mails)) / 1e6:.1f} MB in Dovecot; batch {args.batch}")
        bare_rates, mg_rates = [], []
        for round_ in range(args.rounds):
            count, elapsed, size = bare_fetch(server, args.batch)
            bare_rates.append(count / elapsed)
            print(f"round {round_}: bare imapclient FETCH {count} in {elapsed:.2f}s = {count / elapsed:.0f} msg/s ({size / elapsed / 1e6:.1f} MB/s)")
            with tempfile.TemporaryDirectory(prefix="mailgate-bench-") as tmp:
                spooled, elapsed = asyncio.run(mailgate_fetch(server, args.batch, len(mails), Path(tmp)))
            if spooled != len(mails):
                sys.exit(f"mailgate spooled {spooled} of {len(mails)}")
            mg_rates.append(spooled / elapsed)
            print(f"round {round_}: mailgate fetch+spool+flag {spooled} in {elapsed:.2f}s = {spooled / elapsed:.0f} msg/s")
    finally:
        server.cleanup()
    imap_rate, bare_rate = statistics.median(mg_rates), statistics.median(bare_rates)
    print(
        json.dumps(
            {
                "messages": len(mails),
                "batch": args.batch,
                "rounds": args.rounds,
                "imap_msgs_per_s": round(imap_rate, 1),
                "bare_fetch_msgs_per_s": round(bare_rate, 1),
                "imap_vs_bare_fetch": round(imap_rate / bare_rate, 3),
                "target_imap_vs_bare_fetch": 0.6,
            }
        )
    )


if __name__ == "__main__":
    main()
