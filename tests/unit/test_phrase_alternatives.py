"""bounce_formats.alternatives: a phrase alternation grouped by first letter finds what the plain one finds."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailgate.mail import bounce_formats as bf
from mailgate.mail.bounce_formats import _top_branches, alternatives

# Shapes the bounce and auto-reply tables use: optional groups, classes (one with "|" and "]"
# inside), anchors under re.M, word boundaries, escapes, a branch that is a prefix of another.
PATTERNS = [
    (r"undeliver|undelivered|delivery (status )?notification|delivery fail|\bbounce|fail(ed|ure)? delivery", re.I),
    (r"mailbox (is )?(full|unavailable)|mail[ .-]?daemon|r[ée]ponse automatique|^\s*auto:|a|ab|b?c", re.I),
    (r"^your mail (sent|attempted to be delivered) on:|-+ ?transcript ?-+|x[|\]]y|\u914d\u4fe1|\(x|y\)", re.I | re.M),
    (r"[^]|]z|q{2}|qq+r|e*f", 0),
]
TEXT = st.text(alphabet="abcdefilmnoqrstuvxyz |]()-:\n.\u00e9\u00c9\u914d\u4fe1ABD", max_size=40)


@pytest.mark.parametrize(("pattern", "flags"), PATTERNS)
def test_the_split_is_at_top_level_bars_only(pattern: str, flags: int) -> None:
    assert "|".join(_top_branches(pattern)) == pattern
    for branch in _top_branches(pattern):
        re.compile(branch, flags)  # a branch cut inside a group or class would not compile alone


@given(text=TEXT, which=st.sampled_from(PATTERNS))
def test_grouped_alternation_finds_what_the_plain_one_finds(text: str, which: tuple[str, int]) -> None:
    pattern, flags = which
    plain = re.compile(pattern, flags)
    grouped = alternatives(pattern, flags)
    assert bool(grouped.search(text)) == bool(plain.search(text))


def test_phrases_in_the_tables_are_found_in_any_case() -> None:
    assert bf.SUBJECT.search("Undeliverable: your order")
    assert bf.SUBJECT.search("DELIVERY STATUS NOTIFICATION (Failure)")
    assert bf.BODY.search("hello\nYour mail sent on: 2026-11-30\n")
    assert not bf.SUBJECT.search("Re: invoice for November")
