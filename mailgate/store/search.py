"""Full-text search over tickets' messages and notes: ranked hits with a snippet of the matching message.

Every statement of the search lives here and in store/sql/0015_search.sql for SQLite, and in
store/search_pg.py and store/sql_pg/0003_search.sql for PostgreSQL (a tsvector column kept by
trigger, a GIN index, ts_rank, ts_headline; the differences are listed there), behind `search()`
with typed values in and out. The filters (_where) are standard SQL both engines run.
What is FTS5-specific:
    search_text          the FTS5 external-content table over messages and its three triggers
    MATCH, rowid         the full-text condition; the index row is the message row
    bm25()               the score, with column weights (subject 4, body 1, sender 2)
    snippet()            the matching words in their context, marked with [ ]
    fts_query()          the FTS5 query language: each person's word a quoted string, "word"* a prefix
    COUNT(*) OVER ()     how many tickets matched in all (standard SQL, PostgreSQL runs it too)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mailgate.models import TicketStatus
from mailgate.store import Txn, search_pg
from mailgate.store.txn import Row

SNIPPET_WORDS = 12
WINDOW = 1000  # matching messages ranked, newest first (see search())
# bm25's column weights: a word in the subject or the sender's name says more than one deep in a body.
WEIGHTS = "4.0, 1.0, 2.0, 2.0"  # subject, text, from_name, from_address
# The marks snippet() puts around a matching word: control characters (STX, ETX) that mail text
# does not carry, so a "[" in a mail is never taken for a mark; shown as [ ].
_MARK, _END = "\x02", "\x03"
DIRECTIONS: dict[str, tuple[str, ...]] = {
    "received": ("in",), "sent": ("out", "agent"), "note": ("note",),
}
# A ticket someone deleted is gone from every listing until restored; asked for by status only.
HIDDEN_STATUSES: tuple[str, ...] = (TicketStatus.DELETED.value,)


@dataclass(frozen=True, slots=True)
class Term:
    """One thing the person looks for: a word, a phrase ("printer toner"), or a word's start (print*)."""

    text: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Filters:
    """What narrows a search; None or empty means any. Dates are ISO instants: since ≤ date < before."""

    statuses: tuple[str, ...] = ()
    queue: str | None = None
    assignee: str | None = None  # "" for tickets nobody has
    tag: str | None = None
    contact: str | None = None  # an address (exact) or a part of a name
    direction: str | None = None  # received | sent | note
    channel: str | None = None
    since: str | None = None
    before: str | None = None
    quarantined: bool = False  # True: only quarantined tickets (hidden otherwise)
    # An agent by mail: only tickets of these queues, or assigned to `seen_by` (None: everything).
    queues_seen: tuple[str, ...] | None = None
    seen_by: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One ticket that matched, with its best-matching message."""

    number: int
    subject: str
    status: str
    queue: str | None
    assignee: str | None
    channel: str
    message_row: int
    direction: str
    from_address: str
    date: str
    snippet: str
    rank: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Found:
    """A page of hits and how many tickets matched in all."""

    hits: list[Hit]
    total: int  # tickets found; with complete False, at least this many (the newest WINDOW messages were ranked)
    complete: bool = True


def fts_query(terms: Sequence[Term]) -> str:
    """The terms as an FTS5 query in which nothing a person types is syntax: each one a quoted string.

    Inside double quotes FTS5 reads no operator (AND, OR, NOT, NEAR, column:, ^, *, parentheses);
    a quote in the text is doubled, which is how FTS5 escapes it.
    """
    parts = []
    for term in terms:
        quoted = '"' + term.text.replace('"', '""') + '"'
        parts.append(quoted + "*" if term.prefix else quoted)
    return " ".join(parts)


def _where(f: Filters) -> tuple[list[str], list[Any]]:
    # A message deleted from its thread (messages delete) is hidden everywhere until retention purges it.
    where: list[str] = ["t.quarantined = ?", "m.deleted_at IS NULL"]
    params: list[Any] = [int(f.quarantined)]
    if f.statuses:
        where.append(f"t.status IN ({_marks(f.statuses)})")
        params += f.statuses
    else:
        where.append(f"t.status NOT IN ({_marks(HIDDEN_STATUSES)})")
        params += HIDDEN_STATUSES
    if f.queue is not None:
        where.append("t.queue = ?")
        params.append(f.queue)
    if f.assignee == "":
        where.append("t.assignee IS NULL")
    elif f.assignee is not None:
        where.append("t.assignee = ?")
        params.append(f.assignee)
    if f.tag is not None:
        where.append("EXISTS (SELECT 1 FROM ticket_tags g WHERE g.ticket_id = t.id AND g.tag = ?)")
        params.append(f.tag)
    if f.contact is not None:
        where.append(
            "(t.contact_id IN (SELECT a.contact_id FROM contact_addresses a WHERE a.address = ?)"
            " OR t.contact_id IN (SELECT c.id FROM contacts c WHERE c.name LIKE ? ESCAPE '\\')"
            " OR EXISTS (SELECT 1 FROM ticket_parties p WHERE p.ticket_id = t.id AND p.address = ?))"
        )
        like = "%" + f.contact.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [f.contact.lower(), like, f.contact.lower()]
    if f.direction is not None:
        directions = DIRECTIONS[f.direction]
        where.append(f"m.direction IN ({_marks(directions)})")
        params += directions
    if f.channel is not None:
        where.append("t.channel = ?")
        params.append(f.channel)
    if f.since is not None:
        where.append("m.created_at >= ?")
        params.append(f.since)
    if f.before is not None:
        where.append("m.created_at < ?")
        params.append(f.before)
    if f.queues_seen is not None:
        where.append(f"(t.queue IN ({_marks(f.queues_seen)}) OR t.assignee = ?)")
        params += [*f.queues_seen, f.seen_by or ""]
    return where, params


async def search(tx: Txn, terms: Sequence[Term], filters: Filters, limit: int = 20, offset: int = 0) -> Found:
    """Tickets whose messages or notes hold every term, best match first (bm25), newest first on ties.

    Ranked are the newest WINDOW matching messages (after the filters): a rare word, a name or an
    order number has fewer matches and is ranked over all of them; a word in every tenth mail of a
    big store would cost a bm25 score and a join for each of its 50,000 messages, and the mail
    looked for is nearly always among the recent ones. `Found.complete` says which it was.
    """
    if tx.engine == "postgresql":
        return await _search_pg(tx, terms, filters, limit, offset)
    query = fts_query(terms)
    if not query:
        return Found([], 0)
    where, params = _where(filters)
    window = max(WINDOW, 5 * (offset + limit))
    # bm25 of a prefix (print*) walks the positions of every word it stands for in every matching
    # message (0.4 s for one common prefix in 500k messages): prefix searches list newest first.
    score = "0.0" if any(t.prefix for t in terms) else f"bm25(search_text, {WEIGHTS})"
    # FTS5 walks the index newest row first (ORDER BY rowid DESC is the index's own order), so the
    # LIMIT stops the scan, the joins and bm25 after `window` rows that pass the filters. Per
    # ticket its best message: with MIN() SQLite takes the other bare columns from that row
    # (PostgreSQL: DISTINCT ON (ticket_id) … ORDER BY ticket_id, score).
    rows = await tx.all(
        "WITH recent AS (SELECT m.id, m.ticket_id, m.direction, m.from_address, m.created_at,"
        f" {score} AS score"
        " FROM search_text s JOIN messages m ON m.id = s.rowid JOIN tickets t ON t.id = m.ticket_id"
        f" WHERE search_text MATCH ? AND {' AND '.join(where)} ORDER BY s.rowid DESC LIMIT ?)"
        " SELECT t.number, t.subject, t.status, t.queue, t.assignee, t.channel, r.id AS message_row, r.direction,"
        " r.from_address, r.created_at, MIN(r.score) AS score,"
        " COUNT(*) OVER () AS tickets, SUM(COUNT(*)) OVER () AS messages"
        " FROM recent r JOIN tickets t ON t.id = r.ticket_id"
        " GROUP BY r.ticket_id ORDER BY score, r.created_at DESC, t.number DESC LIMIT ? OFFSET ?",
        [query, *params, window, limit, offset],
    )
    if not rows:
        return Found([], 0)
    snippets = await _snippets(tx, query, [r["message_row"] for r in rows])
    return _found(rows, snippets, window)


async def _search_pg(tx: Txn, terms: Sequence[Term], filters: Filters, limit: int, offset: int) -> Found:
    """The same search on PostgreSQL: the same words, filters and window (store/search_pg.py)."""
    words = await search_pg.words(tx, terms)
    if not words.query:
        return Found([], 0)
    where, params = _where(filters)
    window = max(WINDOW, 5 * (offset + limit))
    rows = await search_pg.ranked(tx, words, where, params, prefix=any(t.prefix for t in terms),
                                  window=window, limit=limit, offset=offset)
    if not rows:
        return Found([], 0)
    rows_shown = [int(r["message_row"]) for r in rows]
    return _found(rows, await search_pg.snippets(tx, words, rows_shown, SNIPPET_WORDS, _MARK, _END), window)


def _found(rows: Sequence[Row], snippets: dict[int, str], window: int) -> Found:
    hits = [
        Hit(number=r["number"], subject=r["subject"], status=r["status"], queue=r["queue"], assignee=r["assignee"],
            channel=r["channel"], message_row=r["message_row"], direction=r["direction"],
            from_address=r["from_address"] or "", date=r["created_at"],
            snippet=snippets.get(r["message_row"], ""), rank=float(r["score"]))
        for r in rows
    ]
    return Found(hits, int(rows[0]["tickets"]), complete=int(rows[0]["messages"]) < window)


async def _snippets(tx: Txn, query: str, message_rows: Sequence[int]) -> dict[int, str]:
    """The matching words of each shown message in context: from the body, else the subject or sender."""
    # One pass over the matches between the lowest and highest row shown (all within the window):
    # with `rowid IN (…)` FTS5 would run the query once per row, and a prefix query (print*)
    # merges the doclists of every word it stands for each time. The unary + keeps the IN a
    # plain filter.
    rows = await tx.all(
        f"SELECT rowid, snippet(search_text, 1, ?, ?, '…', {SNIPPET_WORDS}) AS body,"
        f" snippet(search_text, -1, ?, ?, '…', {SNIPPET_WORDS}) AS best FROM search_text"
        f" WHERE search_text MATCH ? AND rowid BETWEEN ? AND ? AND +rowid IN ({_marks(message_rows)})",
        [_MARK, _END, _MARK, _END, query, min(message_rows), max(message_rows), *message_rows],
    )
    shown = {}
    for r in rows:
        # The body's snippet when the body matched (it has a mark), else the best column's.
        text = str(r["body"] if _MARK in (r["body"] or "") else r["best"] or "")
        shown[int(r["rowid"])] = " ".join(text.split()).replace(_MARK, "[").replace(_END, "]")
    return shown


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


async def forget_deleted(tx: Txn) -> None:
    """Rewrite the index without the words of deleted and blanked messages (an erasure).

    FTS5 records a deletion as a marker in a new segment; the words stay in the older segments
    until they are merged, readable in the file. 'optimize' merges every segment into one now
    (PostgreSQL: the tsvector goes with its row, and a blanked text's vector is rewritten by the
    trigger; VACUUM reclaims the old row versions). It rewrites the whole index, as the erasure's
    VACUUM rewrites the whole file.
    """
    if tx.engine == "postgresql":
        return
    await tx.execute("INSERT INTO search_text (search_text) VALUES ('optimize')")
