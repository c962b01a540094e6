"""Statements and write transactions per inbound mail, by pipeline step and by who opened the transaction.

    .venv/bin/python bench/statements.py [--mails 200] [--clients 4]

One daemon in this process on config.example.toml (as bench/e2e.py edits it: queues, agents,
acknowledgements and notifications on; the relay an aiosmtpd sink), bench/e2e_mail.py's generated
mail sent over SMTP. Each step of pipeline.steps.STEPS is wrapped to diff the store's counters, and
each transaction is attributed to its priority (intake: the SMTP spool commit; processing: the
worker's batches, less its steps; background: the outbox sender and timers). The counters are the
ones /metrics shows (mailgate/store/counts.py). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import smtplib
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import e2e  # noqa: E402
import e2e_mail  # noqa: E402

from mailgate import config as config_mod  # noqa: E402
from mailgate.daemon import started  # noqa: E402
from mailgate.pipeline import process  # noqa: E402
from mailgate.pipeline.context import MailContext, Outcome, Step  # noqa: E402
from mailgate.store import Priority, Store, Txn  # noqa: E402
from tests.integration.sink import Sink, running_sink  # noqa: E402

steps: Counter[str] = Counter()
current = ["-"]  # the step running now, for --trace
traced: Counter[tuple[str, str]] = Counter()
by_priority: Counter[str] = Counter()
commits: Counter[str] = Counter()


def counted(step: Step) -> Step:
    async def run(m: MailContext) -> Outcome | None:
        before = m.tx.counts.statements
        current[0] = step.__name__
        try:
            return await step(m)
        finally:
            steps[step.__name__] += m.tx.counts.statements - before
            current[0] = "-"

    run.__name__ = step.__name__
    return run


def attribute(store: Store) -> None:
    """Wrap store.txn: statements and commits per priority (the caller's kind)."""
    txn = store.txn

    @contextlib.asynccontextmanager
    async def wrapped(*, wait: float | None = None, priority: Priority = Priority.BACKGROUND) -> AsyncIterator[Txn]:
        before = wrote = -1
        try:
            async with txn(wait=wait, priority=priority) as tx:
                # Counted from inside: while this one waited for the lock, others ran.
                before, wrote = store.counts.statements, store.counts.write_transactions
                yield tx
        finally:
            if before >= 0:
                by_priority[priority.name.lower()] += store.counts.statements - before
                commits[priority.name.lower()] += store.counts.write_transactions - wrote

    store.txn = wrapped  # type: ignore[method-assign]


def trace() -> None:
    """Count each statement's text by the step that ran it (outside steps: "-")."""
    for name in ("execute", "rowcount", "one", "all", "value", "executemany"):
        method = getattr(Txn, name)

        def wrapped(self: Txn, sql: str, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            traced[(current[0], " ".join(sql.split())[:110])] += 1
            return _method(self, sql, *args, **kwargs)

        setattr(Txn, name, wrapped)


def send_share(port: int, mails: list[e2e_mail.Mail]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as conn:
        for mail in mails:
            conn.sendmail(mail.mail_from, mail.rcpt_to, mail.raw)


async def run(count: int, clients: int) -> dict[str, Any]:
    process.STEPS = tuple(counted(s) for s in process.STEPS)  # type: ignore[misc]
    mails = [e2e_mail.generated(7, i) for i in range(count)]
    with tempfile.TemporaryDirectory() as folder:
        async with running_sink(Sink()) as sink:
            path = e2e.bench_config(Path(folder), e2e.free_port(), sink.port, e2e.free_port(), clients)
            async with started(config_mod.load(path)) as running:
                store = running.store
                attribute(store)
                start = store.counts.statements, store.counts.write_transactions
                shares = [mails[n::clients] for n in range(clients)]
                await asyncio.gather(*(asyncio.to_thread(send_share, running.smtp_port, s) for s in shares))
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    async with store.read() as tx:
                        left = await tx.value("SELECT COUNT(*) FROM spool WHERE state = 'received'")
                        unsent = await tx.value("SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'sending')")
                    if not left and not unsent:
                        break
                    await asyncio.sleep(0.2)
                statements = store.counts.statements - start[0]
                writes = store.counts.write_transactions - start[1]
                async with store.read() as tx:
                    sent = await tx.value("SELECT COUNT(*) FROM outbox WHERE state = 'sent'")
    per = {name: round(n / count, 2) for name, n in steps.items()}
    processing = by_priority["processing"] - sum(steps.values())
    return {
        "mails": count, "outgoing_per_mail": round(sent / count, 2),
        "statements_per_mail": round(statements / count, 2), "write_txns_per_mail": round(writes / count, 2),
        "steps": per, "processing_outside_steps": round(processing / count, 2),
        "by_priority": {k: round(v / count, 2) for k, v in by_priority.items()},
        "commits_by_priority": {k: round(v / count, 2) for k, v in commits.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--trace", action="store_true", help="print each statement's count by step")
    args = parser.parse_args()
    if args.trace:
        trace()
    result = asyncio.run(run(args.mails, args.clients))
    for (step, sql), n in sorted(traced.items()):
        print(f"{step:16} {n / args.mails:6.2f}  {sql}")
    for key, value in result.items():
        print(f"{key}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
