"""Reading a search: words, phrases, prefixes and filters; every word quoted so none is FTS5 syntax."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailgate.config import Config
from mailgate.errors import Refused
from mailgate.ops import search
from mailgate.ops.search import Asked, parse
from mailgate.store.search import Term, fts_query

from ..conftest import AGENTS


def test_words_phrases_and_prefixes() -> None:
    asked = parse('printer  "paper jam" print* Toner')
    assert asked.terms == (Term("printer"), Term("paper jam"), Term("print", prefix=True), Term("Toner"))
    assert asked.filters == ()


def test_filters_are_known_keys_the_rest_is_words() -> None:
    asked = parse('toner status:open Queue:billing from:2026-01-01 to:2026-01-31 contact:"Anna Virtanen" re:invoice')
    assert asked.terms == (Term("toner"), Term("re:invoice"))
    assert asked.filters == (("status", "open"), ("queue", "billing"), ("from", "2026-01-01"), ("to", "2026-01-31"),
                             ("contact", "Anna Virtanen"))
    # Aliases a person reaches for.
    assert parse("x assigned:me in:billing since:2026-01-01").filters == (
        ("assignee", "me"), ("queue", "billing"), ("from", "2026-01-01"))


def test_punctuation_alone_is_no_word_and_quotes_may_be_unbalanced() -> None:
    assert parse('- * " ( ) ^ :').terms == ()
    assert parse('"unbalanced phrase').terms == (Term("unbalanced phrase"),)
    assert parse("x" * 3 + " *").terms == (Term("xxx"),)
    assert len(parse(" ".join(f"w{i}" for i in range(100))).terms) == search.MAX_TERMS


@pytest.mark.parametrize(("terms", "query"), [
    ((Term("printer"),), '"printer"'),
    ((Term('say "hi"'),), '"say ""hi"""'),
    ((Term("NEAR(a"), Term("AND"), Term("b*")), '"NEAR(a" "AND" "b*"'),
    ((Term("print", prefix=True),), '"print"*'),
    ((Term("subject:x"), Term("^y")), '"subject:x" "^y"'),
])
def test_every_term_is_one_quoted_string(terms: tuple[Term, ...], query: str) -> None:
    assert fts_query(terms) == query


@pytest.fixture
def desk(make_config: Callable[..., Config]) -> Config:
    return make_config(AGENTS, gateway='timezone = "Europe/Helsinki"')


def test_filters_checked_against_the_config(desk: Config) -> None:
    aino = desk.agent("aino")
    q = search.check(desk, parse("toner status:open,pending queue:Billing tag:+vip assignee:me direction:in channel:email"),
                     aino)
    f = q.filters
    assert (f.statuses, f.queue, f.tag, f.assignee, f.direction, f.channel) == (
        ("open", "pending"), "billing", "vip", "aino", "received", "email")
    assert f.queues_seen is None  # the CLI sees every ticket
    assert aino is not None
    seen = search.seen_by(desk, q, aino).filters
    assert (seen.queues_seen, seen.seen_by) == (("support",), "aino")


def test_days_are_the_desks_days(desk: Config) -> None:
    f = search.check(desk, parse("x from:2026-01-01 to:2026-01-31")).filters
    # Midnight in Helsinki (UTC+2 in winter), stored as UTC; "to" is inclusive: before the next day.
    assert (f.since, f.before) == ("2025-12-31T22:00:00.000000+00:00", "2026-01-31T22:00:00.000000+00:00")


@pytest.mark.parametrize(("words", "why"), [
    ("x queue:nope", "no queue 'nope' (queues: support, billing)"),
    ("x status:done", "unknown status 'done'"),
    ("x assignee:zed", "no agent 'zed'"),
    ("x assignee:me", "needs to know who you are"),
    ("x direction:up", "unknown direction 'up'"),
    ("x channel:fax", "unknown channel 'fax'"),
    ("x tag:a/b", "is not a tag"),
    ("x from:2026-13-01", "is not a day"),
    ("x from:anna@example.test", "for a sender write contact:ADDRESS"),
    ("x from:2026-02-01 to:2026-01-01", "from: is after to:"),
    ("status:open", "nothing to search for"),
])
def test_wrong_filters_are_refused_with_the_reason(desk: Config, words: str, why: str) -> None:
    with pytest.raises(Refused, match=why.replace("(", r"\(").replace(")", r"\)")):
        search.check(desk, parse(words))


def test_asked_keeps_cli_options_beside_the_words(desk: Config) -> None:
    asked = Asked(parse("toner").terms, (("queue", "billing"),))
    assert search.check(desk, asked).filters.queue == "billing"
