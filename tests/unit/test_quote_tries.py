"""The phrase tries in quote_lines match exactly the strings the flat alternations they replace did."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mailgate.mail import quote_lines as Q
from mailgate.mail import quote_phrases as P


def _flat(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


def _every_phrase() -> list[str]:
    return sorted({Q._norm(w) for t in P.PHRASES.values() for w in (*t.wrote, *t.wrote_inside, *t.leads)})


PHRASES = _every_phrase()
# Small alphabets make shared prefixes, words that are prefixes of others and the empty word common.
WORDS = st.lists(st.text(alphabet="ab :.\u00e9\u5199", max_size=5), max_size=8)


@given(words=WORDS, probe=st.text(alphabet="ab :.\u00e9\u5199x", max_size=8))
def test_trie_matches_the_same_strings_as_the_flat_alternation(words: list[str], probe: str) -> None:
    trie = re.compile(f"(?:{Q._alternation(words)})")
    flat = re.compile(f"(?:{_flat(words)})")
    assert bool(trie.fullmatch(probe)) == bool(flat.fullmatch(probe))
    assert bool(trie.search(probe)) == bool(flat.search(probe))


def test_every_table_phrase_and_nothing_shorter_is_matched() -> None:
    whole = re.compile(f"(?:{Q._alternation(PHRASES)})")
    for phrase in PHRASES:
        assert whole.fullmatch(phrase), phrase
        if phrase[:-1] not in PHRASES:
            assert not whole.fullmatch(phrase[:-1]), phrase


@given(before=st.text(max_size=30), phrase=st.sampled_from(PHRASES), after=st.sampled_from(["", ":", " x", "-", "\u00a0:"]))
def test_line_tests_agree_with_the_flat_patterns(before: str, phrase: str, after: str) -> None:
    line = before + phrase + after
    flat_end = re.compile(rf"(?:(?<!\w)(?:{_flat(Q._SPACED)})|(?:{_flat(Q._UNSPACED)})):$")
    assert bool(Q._WROTE_END.search(line)) == bool(flat_end.search(line))
    flat_inside = re.compile(rf"(?<!\w)(?:{_flat(Q._INSIDE)})(?!\w)")
    assert bool(Q._WROTE_INSIDE.search(line)) == bool(flat_inside.search(line))
    hint = _flat(Q._WROTE + Q._INSIDE).replace("\\ ", "\\s+")
    flat_hint = re.compile(rf"(?:{hint})|{P.GMAIL_DATE_ATTRIBUTION}", re.IGNORECASE)
    assert bool(Q._HINT.search(line)) == bool(flat_hint.search(line))


@given(end=st.text(max_size=40), phrase=st.sampled_from(["", *PHRASES]))
def test_the_last_character_test_never_rules_out_a_bare_phrase(end: str, phrase: str) -> None:
    line = (end + phrase).strip().rstrip(" -*").replace("\uff1a", ":")
    full = bool(Q._WROTE_BARE_END.search(Q._norm(line)[-Q._TAIL :]))
    assert Q._ends_bare_phrase(line) == full


def test_noise_characters_are_removed_as_before() -> None:
    table = str.maketrans("", "", P.NOISE_CHARS)
    for line in ["plain", " \u200bOn Mon, Ann wrote:\u2060 ", "\u1427", "caf\u00e9\ufeff", ""]:
        assert Q._clean(line) == line.translate(table).strip()
