"""What outgoing mail needs to know of a ticket: its facts, who follows it, the newest inbound mail."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mailgate.store import Txn, outbox_ids

# What a thread's References keep: RFC 5322 3.6.4 lets a long list be trimmed, and compose keeps
# the first Message-ID and the 19 newest. More of the newest are read in case some are unusable.
RECENT_IDS = 32
# The envelope recipients of the oldest mails tell which support address a ticket was written to.
FIRST_MAILS = 8


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """The ticket's columns outgoing mail uses, with its contact's and its thread's."""

    id: int
    number: int
    subject: str
    status: str
    priority: str
    assignee: str | None
    queue: str | None
    customer_name: str
    customer_address: str
    contact_language: str | None
    ack_suppressed: bool
    quarantined: bool
    detected_language: str | None
    references: tuple[str, ...]  # the ticket's first Message-ID (in or out), then its RECENT_IDS newest
    last_inbound: str | None  # that of the newest customer mail
    written_to: tuple[tuple[str, ...], ...]  # the envelope recipients of its FIRST_MAILS oldest stored mails
    following: tuple[str, ...] = ()  # agent ids following it, sorted
    unfollowed: frozenset[str] = frozenset()  # agent ids who said [unfollow]


_FACTS = (
    "SELECT t.number, t.subject, t.status, t.priority, t.assignee, t.queue, t.ack_suppressed, t.quarantined,"
    " t.detected_language, c.name AS contact_name, c.language AS contact_language,"
    " COALESCE(NULLIF((SELECT address FROM ticket_parties WHERE ticket_id = t.id AND role = 'requester'"
    " ORDER BY address LIMIT 1), ''), (SELECT address FROM contact_addresses WHERE contact_id = t.contact_id"
    " ORDER BY created_at LIMIT 1)) AS customer,"
    " (SELECT json_group_array(json_array(agent, following)) FROM ticket_watchers WHERE ticket_id = t.id)"
    " AS watchers,"
    # Oldest first (the first Message-ID, the written-to address), newest (References), newest inbound.
    " (SELECT json_group_array(json_array(part, id, message_id, rcpt_to)) FROM ("
    " SELECT * FROM (SELECT 'first' AS part, m.id, m.message_id, s.rcpt_to FROM messages m"
    " LEFT JOIN spool s ON s.id = m.spool_id WHERE m.ticket_id = :id AND m.direction IN ('in', 'out')"
    " ORDER BY m.id LIMIT :first) AS a"
    " UNION ALL SELECT * FROM (SELECT 'recent', id, message_id, NULL FROM messages"
    " WHERE ticket_id = :id AND direction IN ('in', 'out') ORDER BY id DESC LIMIT :recent) AS b"
    " UNION ALL SELECT * FROM (SELECT 'inbound', id, message_id, NULL FROM messages"
    " WHERE ticket_id = :id AND direction = 'in' ORDER BY id DESC LIMIT 1) AS c) AS d) AS thread,"
    # The outbox's id counter: the notices written from these facts know their rows' ids (VERP).
    " COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0) AS outbox_seq"
    " FROM tickets t LEFT JOIN contacts c ON c.id = t.contact_id WHERE t.id = :id"
)
# PostgreSQL spells SQLite's JSON aggregates json_agg/json_build_array, and hands out outbox ids from
# its sequence one by one (store/outbox_ids.py), so no counter is read here.
_FACTS_PG = _FACTS.replace("json_group_array(json_array(", "json_agg(json_build_array(").replace(
    "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)", "NULL")


async def facts(tx: Txn, ticket_id: int) -> TicketFacts | None:
    """One statement, whatever the length of the thread: the ticket, its customer, watchers and a bounded thread.

    Every mail mailgate writes reads this once; the thread and the watchers come back as JSON
    arrays of the same row rather than as statements of their own.
    """
    row = await tx.one(
        _FACTS if tx.engine == "sqlite" else _FACTS_PG,
        {"id": ticket_id, "first": FIRST_MAILS, "recent": RECENT_IDS},
    )
    if row is None:
        return None
    outbox_ids.seed(tx, row["outbox_seq"])
    thread = [(str(part), int(i), str(mid), rcpt) for part, i, mid, rcpt in json.loads(row["thread"] or "[]")]
    first = sorted((m for m in thread if m[0] == "first"), key=lambda m: m[1])
    recent = sorted((m for m in thread if m[0] == "recent"), key=lambda m: m[1])
    ids = {m[1]: m[2] for m in [*first[:1], *recent]}
    inbound = [m[2] for m in thread if m[0] == "inbound"]
    watchers = sorted((str(agent), following) for agent, following in json.loads(row["watchers"] or "[]"))
    return TicketFacts(
        id=ticket_id, number=row["number"], subject=row["subject"], status=row["status"], priority=row["priority"],
        assignee=row["assignee"], queue=row["queue"], customer_name=row["contact_name"] or "",
        customer_address=row["customer"] or "", contact_language=row["contact_language"],
        ack_suppressed=bool(row["ack_suppressed"]), quarantined=bool(row["quarantined"]),
        detected_language=row["detected_language"],
        references=tuple(ids[key] for key in sorted(ids)),
        last_inbound=inbound[0] if inbound else None,
        written_to=tuple(_recipients(m[3]) for m in first),
        following=tuple(agent for agent, following in watchers if following),
        unfollowed=frozenset(agent for agent, following in watchers if following == 0),
    )


def _recipients(stored: str | None) -> tuple[str, ...]:
    try:
        found = json.loads(stored) if stored else []
    except ValueError:
        return ()
    return tuple(str(r) for r in found) if isinstance(found, list) else ()


async def cc_parties(tx: Txn, ticket_id: int) -> list[str]:
    rows = await tx.all("SELECT address FROM ticket_parties WHERE ticket_id = ? AND role = 'cc' ORDER BY address",
                        (ticket_id,))
    return [str(r["address"]) for r in rows]


async def newest_inbound_row(tx: Txn, ticket_id: int) -> int | None:
    value = await tx.value(
        "SELECT id FROM messages WHERE ticket_id = ? AND direction = 'in' ORDER BY id DESC LIMIT 1", (ticket_id,)
    )
    return int(value) if value is not None else None


async def wire_of(tx: Txn, message_id: str) -> bytes:
    """The spooled bytes of the newest stored message with this Message-ID (b"" when none)."""
    raw = await tx.value(
        "SELECT s.raw FROM messages m JOIN spool s ON s.id = m.spool_id WHERE m.message_id = ?"
        " ORDER BY m.id DESC LIMIT 1", (message_id,),
    )
    return bytes(raw or b"")
