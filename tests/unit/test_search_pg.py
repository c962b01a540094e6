"""PostgreSQL search's pure parts: lexemes quoted so no typed text is tsquery syntax, and snippets cut like FTS5's."""

from __future__ import annotations

import pytest

from mailgate.store.search_pg import _quoted, _shown

MARK, END = "\x02", "\x03"


@pytest.mark.parametrize(("lexeme", "quoted"), [
    ("printer", "'printer'"),
    ("o'brien", "'o''brien'"),  # a quote ends a quoted lexeme unless doubled
    ("a\\b", "'a\\\\b'"),  # a backslash escapes the next character inside quotes
    ("&|!<->:*()", "'&|!<->:*()'"),  # operators inside quotes are letters of the lexeme
])
def test_a_lexeme_is_always_quoted(lexeme: str, quoted: str) -> None:
    assert _quoted(lexeme) == quoted


def test_a_snippet_says_where_the_text_was_cut() -> None:
    original = "Bonjour,\n\nla facture affiche un montant  négatif depuis lundi.\n\nÉric\n"
    whole = f"Bonjour, la facture affiche un montant {MARK}négatif{END} depuis lundi. Éric"
    assert _shown(whole, original, MARK, END) == "Bonjour, la facture affiche un montant [négatif] depuis lundi. Éric"
    middle = f"affiche un montant\n {MARK}négatif{END} depuis"
    assert _shown(middle, original, MARK, END) == "…affiche un montant [négatif] depuis…"
    start = f"Bonjour, la {MARK}facture{END}"
    assert _shown(start, original, MARK, END) == "Bonjour, la [facture]…"
