"""A grown store for bench/e2e.py: a year of tickets written straight into a migrated database.

Rows as the daemon leaves them (a contact and its address, the ticket with its queue, status and
assignee, the requester as a party, the customer's mail and the acknowledgement as messages with
their Message-IDs, the routing decision, an `opened` event), in one transaction: 100k tickets take
seconds, where sending them as mail would take a quarter of an hour. The tickets' Message-IDs and
addresses never meet the bench's mail, so what changes is only how much the indexes hold.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailgate import config as config_mod  # noqa: E402
from mailgate.store import store_for  # noqa: E402

STATUSES = ["closed"] * 14 + ["resolved"] * 3 + ["pending", "open", "new"]
QUEUES = {"general": ["anna", "ben"], "billing": ["cecilia"]}


def migrate(config_path: Path) -> Path:
    """Create the config's database at today's schema; return its path."""

    async def opened() -> Path:
        config = config_mod.load(config_path)
        async with store_for(config):
            return config.database_path

    return asyncio.run(opened())


def fill(db_path: Path, tickets: int, open_on_agent: int, agent: str = "anna", first_number: int = 1000) -> None:
    """`tickets` tickets, the last `open_on_agent` of them open and assigned to `agent` in her queue."""
    rnd = random.Random(7)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    base = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM tickets").fetchone()[0])
    number = max(first_number, int(db.execute("SELECT COALESCE(MAX(number), 0) FROM tickets").fetchone()[0]) + 1)
    rows: dict[str, list[tuple[object, ...]]] = {k: [] for k in (
        "contacts", "addresses", "tickets", "parties", "messages", "ids", "routing", "events")}
    for n in range(tickets):
        tid = base + n + 1
        at = (start + timedelta(seconds=300 * n)).isoformat()
        address = f"stored{tid}@customers.example"
        if n >= tickets - open_on_agent:
            queue, status, assignee = next(q for q, members in QUEUES.items() if agent in members), "open", agent
        else:
            queue = "billing" if rnd.random() < 0.25 else "general"
            status, assignee = rnd.choice(STATUSES), rnd.choice(QUEUES[queue])
        subject = f"Stored case {tid}: {rnd.choice(['printer', 'invoice', 'login', 'delivery'])}"
        rows["contacts"].append((tid, f"Stored Customer {tid}", at))
        rows["addresses"].append((address, tid, at))
        rows["tickets"].append((tid, number + n, subject, status, queue, assignee, tid, at, at))
        rows["parties"].append((tid, address, "requester"))
        inbound, ack = f"s{tid}@customers.example", f"ack.{tid}@example.test"
        text = f"Hello,\n\nsomething about case {tid} is broken again.\n\nRegards,\nStored Customer {tid}\n"
        rows["messages"].append((2 * tid - 1, tid, "in", inbound, f"{2 * tid - 1:064x}", None, f"Stored Customer {tid}",
                                 address, subject, text, text.split("\n\nRegards")[0], "new", at))
        rows["messages"].append((2 * tid, tid, "out", ack, f"{2 * tid:064x}", inbound, "Example Support",
                                 "support@example.test", "Re: " + subject, "We got your mail.", "", "outbound", at))
        rows["ids"] += [(inbound, tid, 0), (ack, tid, 1)]
        rows["routing"].append((tid, at, json.dumps([{"rule": "-", "queue": queue}])))
        rows["events"].append((tid, at, f"customer:{address}", "opened", "{}"))
    db.executemany("INSERT INTO contacts (id, name, created_at) VALUES (?, ?, ?)", rows["contacts"])
    db.executemany("INSERT INTO contact_addresses (address, contact_id, created_at) VALUES (?, ?, ?)",
                   rows["addresses"])
    db.executemany("INSERT INTO tickets (id, number, subject, status, queue, assignee, contact_id, created_at,"
                   " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows["tickets"])
    db.executemany("INSERT INTO ticket_parties (ticket_id, address, role) VALUES (?, ?, ?)", rows["parties"])
    db.executemany("INSERT INTO messages (id, ticket_id, direction, message_id, content_key, in_reply_to, from_name,"
                   " from_address, recipients, subject, text, reply_text, kind, thread_rule, created_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, 'message', ?, ?)", rows["messages"])
    db.executemany("INSERT OR IGNORE INTO message_ids (message_id, ticket_id, outbound) VALUES (?, ?, ?)", rows["ids"])
    db.executemany("INSERT INTO ticket_routing (ticket_id, decided_at, trace) VALUES (?, ?, ?)", rows["routing"])
    db.executemany("INSERT INTO events (ticket_id, at, actor, kind, data) VALUES (?, ?, ?, ?, ?)", rows["events"])
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
