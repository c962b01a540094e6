"""Compiled matchers: equals, glob, regex and keywords, each as cheap as its kind allows."""

from __future__ import annotations

import bisect
import fnmatch
import re
from collections.abc import Callable

from mailgate.config import MatchConfig
from mailgate.rules.facts import WORDS, Facts


class Matcher:
    """A compiled matcher: equals (case-insensitive), glob, regex (search) or keywords (whole words).

    `find` returns the matching text (for traces); `test` only decides, as cheaply as it can.
    """

    def __init__(self, match: MatchConfig) -> None:
        self.how = match.how
        self.find: Callable[[tuple[str, ...]], str | None]
        self.plain: frozenset[str] = frozenset()  # keywords that are single words: set lookups
        self.prefixes: tuple[str, ...] = ()  # "lasku*": a lookup in the sorted words
        self.rest: Callable[[tuple[str, ...]], str | None] | None = None  # phrases, punctuation: a scan
        if match.equals is not None:
            wanted = frozenset(v.casefold() for v in match.equals)
            self.find = lambda values: next((v for v in values if v.casefold() in wanted), None)
            self.text = _list(match.equals)
        elif match.glob is not None:
            self.find = _glob_finder(match.glob)
            self.text = _list(match.glob)
        elif match.regex is not None:
            self.find = _searcher(re.compile(match.regex, re.IGNORECASE))
            self.text = repr(match.regex)
        elif match.keywords is not None:
            keywords = [k.lower() for k in match.keywords if k.strip("*")]
            # "lasku*" matches lasku, laskun, laskussa: Finnish, Polish and Hungarian inflect.
            self.find = _keyword_searcher(keywords)
            self.plain = frozenset(k for k in keywords if WORDS.fullmatch(k))
            self.prefixes = tuple(k[:-1] for k in keywords if k.endswith("*") and WORDS.fullmatch(k[:-1]))
            others = [k for k in keywords if k not in self.plain and k[:-1] not in self.prefixes]
            self.rest = _keyword_searcher(others) if others else None
            self.text = _list(match.keywords)
        else:
            self.find = lambda values: values[0] if values else None
            self.text = ""

    def test(self, facts: Facts, key: str) -> bool:
        if self.how != "keywords":
            return self.find(facts.values(key)) is not None
        if self.plain and not self.plain.isdisjoint(facts.words(key)):
            return True
        if self.prefixes:
            words = facts.sorted_words(key)
            for prefix in self.prefixes:
                i = bisect.bisect_left(words, prefix)
                if i < len(words) and words[i].startswith(prefix):
                    return True
        return self.rest is not None and self.rest(facts.values(key)) is not None


def _glob_finder(globs: tuple[str, ...]) -> Callable[[tuple[str, ...]], str | None]:
    if any(c in g for g in globs for c in "?["):
        pattern = re.compile("|".join(fnmatch.translate(g) for g in globs), re.IGNORECASE)
        return lambda values: next((v for v in values if pattern.match(v)), None)
    # Only '*': match the pieces in order with str.find; fnmatch's ".*" regex backtracks on "*x*".
    pieces = [g.lower().split("*") for g in globs]

    def star(value: str, parts: list[str]) -> bool:
        first, last = parts[0], parts[-1]
        if len(parts) == 1:
            return value == first
        if len(value) < len(first) + len(last) or not value.startswith(first) or not value.endswith(last):
            return False
        at, end = len(first), len(value) - len(last)
        for part in parts[1:-1]:
            found = value.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
        return True

    return lambda values: next((v for v in values if any(star(v.lower(), p) for p in pieces)), None)


def _keyword_searcher(keywords: list[str]) -> Callable[[tuple[str, ...]], str | None]:
    words = [re.escape(k.rstrip("*")) + (r"\w*" if k.endswith("*") else "") for k in keywords]
    return _searcher(re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)", re.IGNORECASE))


def _searcher(pattern: re.Pattern[str]) -> Callable[[tuple[str, ...]], str | None]:
    def find(values: tuple[str, ...]) -> str | None:
        for value in values:
            found = pattern.search(value)
            if found is not None:
                return found.group(0)
        return None

    return find


def _list(values: tuple[str, ...]) -> str:
    return repr(values[0]) if len(values) == 1 else "[" + ", ".join(repr(v) for v in values) + "]"

