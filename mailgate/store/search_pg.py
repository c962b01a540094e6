"""Full-text search on PostgreSQL: the statements store/search.py runs when tx.engine is "postgresql".

The index is a tsvector column on messages kept by a trigger (store/sql_pg/0003_search.sql) over
words folded by one SQL function, mailgate_search_words(): lower case, no diacritics, punctuation a
space, as SQLite's unicode61 remove_diacritics 2 reads them. The person's words go through the same
function on the server, so index and query always agree, and the words are FTS5's (punctuation is
told by Unicode block where unicode61 reads each character's category: a rare symbol, e.g. in
Letterlike Symbols, can be a letter here and a space there). Where the answers differ:
    rank        ts_rank of the terms ORed (how often each occurs, weighted subject 1.0, sender 0.5,
                text 0.25, divided by 1 + log of the length) instead of bm25: the same tickets, in
                an order that can differ where scores are close (no inverse document frequency),
                and on another scale (both: lower is better). ts_rank_cd and ts_rank of the ANDed
                query score by the distance between the words, far from bm25: on a generated store
                their top 20 shared 470 of 554 tickets with SQLite's, the ORed terms 518
    snippet     ts_headline: up to SNIPPET_WORDS words around the marked ones, as FTS5's snippet()
    long texts  only a text's first 100,000 characters are indexed (a tsvector holds 1 MB at most)
    positions   a word after the 16,383rd of a text counts as the 16,383rd: a phrase that far into a
                very long mail may go unfound
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mailgate.store.txn import Row, Txn

# ts_rank's weights for the labels D, C, B, A: text C, sender B, subject A, as bm25's 1, 2, 4.
WEIGHTS = "{0.1, 0.25, 0.5, 1.0}"
INDEXED = 100_000  # characters of a text in its tsvector (0003_search.sql: a tsvector holds 1 MB at most)


class Word(Protocol):
    """A term of the search (store.search.Term): a word or phrase, perhaps a word's start."""

    @property
    def text(self) -> str: ...

    @property
    def prefix(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Words:
    """The person's terms as the index reads them: a tsquery, and its lexemes for marking a snippet."""

    query: str  # for to_tsquery('simple', …); empty when no term holds a word
    rank: str  # the same terms ORed, for ts_rank (see ranked())
    exact: list[str]
    prefixes: list[str]


def _quoted(lexeme: str) -> str:
    """A lexeme quoted for to_tsquery: inside quotes nothing is an operator (&, |, !, <->, :*, parentheses)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


async def words(tx: Txn, terms: Sequence[Word]) -> Words:
    """Every term folded by the server's own function and quoted: words ANDed, a phrase's words in
    order (<->), the last word of a prefix term a prefix (:*). Never the raw text as a query."""
    rows = await tx.all(
        "SELECT mailgate_search_words(u.x) AS words FROM unnest(?::text[]) WITH ORDINALITY AS u(x, n) ORDER BY u.n",
        [[t.text for t in terms]],
    )
    parts: list[str] = []
    exact: list[str] = []
    prefixes: list[str] = []
    for term, row in zip(terms, rows, strict=True):
        lexemes = str(row["words"] or "").split()
        if not lexemes:  # nothing FTS5 would read as a word either
            continue
        quoted = [_quoted(lexeme) for lexeme in lexemes]
        if term.prefix:
            quoted[-1] += ":*"
            prefixes.append(lexemes[-1])
            lexemes = lexemes[:-1]
        exact += lexemes
        parts.append("(" + " <-> ".join(quoted) + ")")
    return Words(" & ".join(parts), " | ".join(parts), exact, prefixes)


async def ranked(tx: Txn, found: Words, where: Sequence[str], params: Sequence[Any], *, prefix: bool,
                 window: int, limit: int, offset: int) -> list[Row]:
    """Per ticket its best message among the newest `window` matches, best first, as search.search().

    The GIN index gives the matching rows; ORDER BY m.id DESC LIMIT keeps the newest `window` of
    those that pass the filters, as FTS5's walk of its rowids does. DISTINCT ON takes each ticket's
    best-scoring message where SQLite takes the bare columns of MIN()'s row. The filters come
    before @@: PostgreSQL keeps the written order among conditions of equal cost, and a date or a
    direction is compared before a message's tsvector is read from its TOAST pages.
    """
    # A prefix lists newest first, as on SQLite (there bm25 of a prefix is the slow part).
    score = "0.0::real" if prefix else f"-ts_rank('{WEIGHTS}'::real[], m.search_vector, q.r, 1)"
    return await tx.all(
        "WITH q AS (SELECT to_tsquery('simple', ?) AS q, to_tsquery('simple', ?) AS r),"
        " recent AS (SELECT m.id, m.ticket_id, m.direction, m.from_address, m.created_at,"
        f" {score} AS score FROM messages m JOIN tickets t ON t.id = m.ticket_id CROSS JOIN q"
        f" WHERE {' AND '.join(where)} AND m.search_vector @@ q.q ORDER BY m.id DESC LIMIT ?),"
        " best AS (SELECT DISTINCT ON (r.ticket_id) r.* FROM recent r"
        " ORDER BY r.ticket_id, r.score, r.created_at DESC, r.id DESC)"
        " SELECT t.number, t.subject, t.status, t.queue, t.assignee, t.channel, b.id AS message_row, b.direction,"
        " b.from_address, b.created_at, b.score, COUNT(*) OVER () AS tickets,"
        " (SELECT COUNT(*) FROM recent) AS messages"
        " FROM best b JOIN tickets t ON t.id = b.ticket_id"
        " ORDER BY b.score, b.created_at DESC, t.number DESC LIMIT ? OFFSET ?",
        [found.query, found.rank, *params, window, limit, offset],
    )


async def snippets(tx: Txn, found: Words, message_rows: Sequence[int], words: int,
                   mark: str, end: str) -> dict[int, str]:
    """The matching words of each shown message in context, as written (accents, capitals): from the
    body, else the subject, else the sender. ts_headline marks the lexemes of the original text
    whose folded words are those looked for (mailgate_search_marks)."""
    options = f"StartSel={mark}, StopSel={end}, MaxWords={words}, MinWords={max(1, words // 2)}, ShortWord=0"
    headline = ("ts_headline('simple', {0}, mailgate_search_marks(to_tsvector('simple', {0}),"
                " p.exact, p.prefixes), p.options)")
    sender = "m.from_name || ' ' || m.from_address"
    body = f"left(m.text, {INDEXED})"  # the words the index holds; to_tsvector of more could fail
    rows = await tx.all(
        "WITH p AS (SELECT ?::text[] AS exact, ?::text[] AS prefixes, ?::text AS options)"
        f" SELECT m.id, {body} AS text, m.subject, {sender} AS sender, {headline.format(body)} AS body_mark,"
        f" {headline.format('m.subject')} AS subject_mark, {headline.format(sender)} AS sender_mark"
        f" FROM messages m CROSS JOIN p WHERE m.id IN ({', '.join('?' for _ in message_rows)})",
        [found.exact, found.prefixes, options, *message_rows],
    )
    shown = {}
    for r in rows:
        for column in ("body", "subject", "sender"):
            marked = str(r[column + "_mark"] or "")
            if mark in marked:
                shown[int(r["id"])] = _shown(marked, str(r["text" if column == "body" else column] or ""), mark, end)
                break
    return shown


def _shown(marked: str, original: str, mark: str, end: str) -> str:
    """One line with [ ] marks, and "…" where the words were cut from a longer text (as snippet())."""
    text = " ".join(marked.split())
    plain = text.replace(mark, "").replace(end, "")
    whole = " ".join(original.split())
    if not whole.startswith(plain):
        text = "…" + text
    if not whole.endswith(plain):
        text += "…"
    return text.replace(mark, "[").replace(end, "]")
