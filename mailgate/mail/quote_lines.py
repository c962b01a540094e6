"""Give every line of a mail a kind: empty, text, quoted, boundary, signature delimiter, mobile signature.

  e empty · t text · q quoted (">", or "| " as some webmail and Usenet-era clients quote) ·
  b boundary: attribution ("On … wrote:", "2013/7/20 Ann <ann@example.com>"), separator
  ("-----Original Message-----"), header block ("From:/Sent:/To:") · s signature delimiter
  ("-- ", "__________") · m mobile or app sign-off ("Sent from my iPhone", "Lähetetty iPhonesta").

Work is line by line with bounded windows; no regex ever sees more than one short line or a
joined attribution of at most _MAX_ATTRIBUTION characters, so 750 KB quotes stay linear.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeAlias

from mailgate.mail import quote_phrases as P

_MAX_ATTRIBUTION = 400  # a wrapped attribution with long names and addresses stays below this
_MAX_WINDOW = 6  # physical lines an attribution may wrap over (blank lines included)
_LONG_LINE = 1000  # lines longer than this are never markers (base64, long quotes)
_MAX_HEADER_BLOCK = 16  # From/Sent/To/Cc/Subject with wrapped values fit; bounds the scan

_Trie: TypeAlias = dict[str, "_Trie"]


def _norm(s: str) -> str:
    """Casefolded, whitespace collapsed, French " :" and full-width "：" as ":", curly apostrophes straight."""
    s = " ".join(s.replace("’", "'").replace("：", ":").casefold().split())
    return s.replace(" :", ":")


def _alternation(words: Sequence[str]) -> str:
    """The words as one regex, factored into a trie on shared prefixes.

    Python's re tries every branch of a flat alternation at every position; with nineteen
    languages' phrases that made each search the costliest step of a line. A trie matches the
    same strings, branching once per distinct next character. Callers only ask whether a phrase
    is there, never which one matched, so the order of branches does not matter.
    """
    trie: _Trie = {}
    for word in set(words):
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here
    return _trie_regex(trie)


def _trie_regex(node: _Trie) -> str:
    branches = [re.escape(ch) + _trie_regex(child) for ch, child in node.items() if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" not in node:
        return body
    return "(?:" + body + ")?" if len(branches) == 1 else body[:-1] + "|)"


def _phrase(spaced: Sequence[str], unspaced: Sequence[str]) -> str:
    """Spaced languages' phrases after a word boundary; Chinese and Japanese ones after anything."""
    return rf"(?:(?<!\w)(?:{_alternation(spaced)})" + (rf"|(?:{_alternation(unspaced)})" if unspaced else "") + ")"


_TABLES = P.PHRASES.values()
_WROTE = [_norm(w) for t in _TABLES for w in t.wrote]
_INSIDE = [_norm(w) for t in _TABLES for w in t.wrote_inside]
_SPACED = [_norm(w) for lang, t in P.PHRASES.items() if lang not in P.UNSPACED for w in t.wrote]
_UNSPACED = [_norm(w) for lang, t in P.PHRASES.items() if lang in P.UNSPACED for w in t.wrote]
_WROTE_END = re.compile(rf"{_phrase(_SPACED, _UNSPACED)}:$")
# Zoho: "---- On Tue, 22 Dec 2015 … Sam wrote ----" has no colon; only trusted after a lead.
_WROTE_BARE_END = re.compile(rf"{_phrase(_SPACED, _UNSPACED)}$")
_WROTE_INSIDE = re.compile(rf"(?<!\w)(?:{_alternation(_INSIDE)})(?!\w)")
# Raw lines may hold no-break spaces ("a\u00a0écrit\u00a0:"), so spaces in phrases match any space.
_HINT = re.compile(
    rf"(?:{_alternation(_WROTE + _INSIDE).replace(chr(92) + ' ', chr(92) + 's+')})|{P.GMAIL_DATE_ATTRIBUTION}",
    re.IGNORECASE,
)
_LEAD = re.compile(rf"(?:{_alternation([_norm(w) for t in _TABLES for w in t.leads])})(?!\w)")
_GMAIL_DATE = re.compile(P.GMAIL_DATE_ATTRIBUTION)
_HEADER_ROLE = {_norm(k): role for t in _TABLES for role, keys in t.headers.items() for k in keys}
_SEPARATORS = frozenset(_norm(s) for t in _TABLES for s in t.separators)
_MOBILE = re.compile("|".join(f"(?:{m})" for t in _TABLES for m in t.mobile), re.IGNORECASE)
_TRAILING_LINK = re.compile(P.TRAILING_LINK)
_LINK_ONLY = re.compile(r"<?https?://\S{1,300}>?")
_DATE_FIRST = re.compile(rf"(?:{P.DATE_FIRST})[^@<>\n]{{0,80}}?<?[^\s<>@]{{1,64}}@[^\s<>@]{{1,255}}>?:?")
_DATE_FIRST_START = re.compile(P.DATE_FIRST)
_DATED_SENDER = re.compile(P.DATED_SENDER)
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_WROTE_LAST = frozenset(w[-1] for w in _SPACED + _UNSPACED)
_TAIL = max(map(len, _WROTE)) + 4  # enough of a line's end to hold any phrase, ":" and a boundary
_DIGIT = re.compile(r"\d")

_NOISE = re.compile(f"[{P.NOISE_CHARS}]")


def _clean(raw: str) -> str:
    """The line without noise characters or surrounding space; every noise character is non-ASCII."""
    return (raw if raw.isascii() else _NOISE.sub("", raw)).strip()


def classify_lines(lines: list[str]) -> list[str]:
    n = len(lines)
    kinds = ["t"] * n
    fenced = False
    clean = [_clean(raw) for raw in lines]  # each later pass reads these instead of cleaning again
    for i, line in enumerate(clean):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if not line:
            kinds[i] = "e"
        elif line.startswith(">") and not (i > 0 and kinds[i - 1] == "t" and _is_quoted_wrote(line)):
            kinds[i] = "q"
        elif len(line) > _LONG_LINE:
            continue
        elif line.startswith("|") and "|" not in line.lstrip("| "):
            # "| quoted line" (Outlook Express add-ons, some webmails); a table row or an ASCII
            # box has more bars than the leading ones and stays text.
            kinds[i] = "q"
        elif _is_separator(line):
            kinds[i] = "b"
        elif line == "--" or (len(line) >= 5 and not line.strip("_")):  # "-- " once stripped
            kinds[i] = "s"
        elif _is_mobile(line):
            kinds[i] = "m"
        elif i > 0 and kinds[i - 1] == "m" and _LINK_ONLY.fullmatch(line):
            kinds[i] = "m"  # "Sent from Outlook Mobile" with its link wrapped onto the next line
        elif _GMAIL_DATE.match(line):
            kinds[i] = "b"
            if i + 1 < n and kinds[i + 1] == "t" and lines[i + 1].rstrip().endswith(":") and len(lines[i + 1]) < 120:
                kinds[i + 1] = "b"  # "…GMT+02:00 Long Name <\nnotifications@example.org>:"
    _mark_header_blocks(lines, kinds)
    _mark_attributions(lines, clean, kinds)
    _mark_date_first(lines, clean, kinds)
    _mark_rules_before_boundaries(lines, kinds)
    return kinds


def _is_quoted_wrote(line: str) -> bool:
    """Gmail wraps "<a@x\n> wrote:" (or "<a@x\n>:") so an attribution's end looks quoted."""
    if len(line) >= 40:
        return False
    rest = _norm(line.lstrip("> "))
    return rest == ":" or bool(_WROTE_END.search(rest))


def _is_mobile(line: str) -> bool:
    """A mobile or app sign-off ("Sent from my iPad"), its link and full stop set aside."""
    if len(line) > 400:
        return False
    if len(line) > 20 and (line.endswith((">", ")", "]")) or "://" in line):
        line = _TRAILING_LINK.sub("", line)
    line = line.rstrip(" .!")
    return 0 < len(line) <= 100 and bool(_MOBILE.fullmatch(line))


def _is_separator(line: str) -> bool:
    if "--" not in line and "__" not in line and not line.endswith((":", "：")):
        return False
    words = _norm(line.replace("：", ":").strip(" -_=*:>"))
    return words in _SEPARATORS


def _header_role(line: str) -> str | None:
    head, colon, _ = line[:40].replace("：", ":").partition(":")
    if not colon:
        return None
    return _HEADER_ROLE.get(_norm(head.strip(" *\t>")))


def _mark_header_blocks(lines: list[str], kinds: list[str]) -> None:
    """Mark "From: …/Sent: …/To: …" runs (any language): a sender and two of date/to/subject.

    Two roles are not enough: "From: Monday 10:00 / To: Tuesday 12:00" is a room booking.
    """
    n = len(lines)
    i = 0
    while i < n:
        if kinds[i] != "t" or _header_role(lines[i]) is None:
            i += 1
            continue
        roles: set[str] = set()
        j = i
        last = i
        while j < n and j - last <= 2 and j - i < _MAX_HEADER_BLOCK and kinds[j] in ("t", "e"):
            role = _header_role(lines[j]) if kinds[j] == "t" else None
            if role is not None:
                roles.add(role)
                last = j
            elif kinds[j] == "e" and len(roles) >= 2:
                break  # the blank line after a header block ends it
            j += 1
        if "from" in roles and len(roles - {"other"}) >= 3:
            for k in range(i, last + 1):
                kinds[k] = "b"
            i = last + 1
        else:
            i += 1


def _mark_attributions(lines: list[str], clean: list[str], kinds: list[str]) -> None:
    """Mark "On <date>, <name> wrote:" lines, also when the client wrapped them over lines."""
    n = len(lines)
    # The phrase hint is the costly test, so it runs last and only on the window of a line that
    # could end an attribution; eligibility is fixed by the kinds before any line is marked.
    eligible = [k in ("t", "q") for k in kinds]
    hint: dict[int, bool] = {}

    def hinted(i: int) -> bool:
        found = hint.get(i)
        if found is None:
            found = hint[i] = eligible[i] and len(lines[i]) <= _LONG_LINE and bool(_HINT.search(lines[i]))
        return found

    for j in range(n):
        if kinds[j] != "t":
            continue
        end = lines[j].strip().rstrip(" -*").replace("：", ":")
        # The phrase must end the line, so its tail is enough (as in _is_attribution).
        if not end.endswith(":") and not _ends_bare_phrase(end):
            continue
        if not any(hinted(i) for i in range(max(0, j - _MAX_WINDOW + 1), j + 1)):
            continue
        start = _attribution_start(clean, kinds, j)
        if start is not None:
            for k in range(start, j + 1):
                kinds[k] = "b"


def _ends_bare_phrase(end: str) -> bool:
    """Whether the normalized line ends with a "wrote" phrase and no colon (Zoho's "… Sam wrote ----")."""
    # Most lines end with a character no phrase ends with; that is decided on the last character
    # alone, before the whole line is normalized (the last character survives _norm unchanged
    # but for case folding and the straightened apostrophe).
    last = end.rstrip()[-1:].replace("’", "'").casefold()[-1:]
    return last in _WROTE_LAST and bool(_WROTE_BARE_END.search(_norm(end)[-_TAIL:]))


def _attribution_start(clean: list[str], kinds: list[str], j: int) -> int | None:
    """The line above j where an attribution ending at j begins.

    The nearest plausible start wins, except that a start with a lead word ("On", "Am") or a
    date further up wins over it when no sentence lies between: "On …, Ann via Forum <" /
    "info@example.org> wrote:" starts at "On", not at the address.
    """
    parts: list[str] = []
    size = 0
    found: int | None = None
    quote_follows = _quote_follows(kinds, j)
    for i in range(j, max(-1, j - _MAX_WINDOW), -1):
        if kinds[i] == "e":
            continue
        if kinds[i] != "t" and i != j:
            break
        line = clean[i]
        if i == j:
            line = line.lstrip("> ")  # "> wrote:" continuation (embedded_email_12)
        if found is not None and line.endswith((".", "!", "?")):
            break  # a sentence above the attribution is reply text
        parts.insert(0, line)
        size += len(line) + 1
        if size > _MAX_ATTRIBUTION:
            break
        if line[:1] in "<>([" or line.casefold().startswith("mailto:"):
            continue  # a wrapped address is never where an attribution starts
        s = _norm(" ".join(parts))
        if _is_attribution(s, quote_follows=quote_follows):
            if _LEAD.match(s.strip(" -*")) or line[:1].isdigit():
                return i  # "On …", "Am …", or a date first: "02.04.2012 14:20 …", "2015. jan. 5."
            if found is None:
                found = i
    return found


def _quote_follows(kinds: list[str], j: int) -> bool:
    for k in range(j + 1, min(len(kinds), j + 4)):
        if kinds[k] != "e":
            return kinds[k] == "q"
    return False


def _is_attribution(s: str, *, quote_follows: bool) -> bool:
    s = s.strip(" -*")
    lead = bool(_LEAD.match(s))
    if _WROTE_END.search(s[-_TAIL:]):  # the phrase ends the line: no need to scan all of it
        phrase = True
    elif s.endswith(":"):
        phrase = bool(_WROTE_INSIDE.search(s))
    else:
        phrase = lead and bool(_WROTE_BARE_END.search(s))
    if not phrase:
        return False
    evidence = lead or quote_follows or "@" in s or bool(_DIGIT.search(s))
    # "wrote:" alone is no attribution; something must name who wrote.
    return evidence and len(s.split()) >= 2


def _mark_rules_before_boundaries(lines: list[str], kinds: list[str]) -> None:
    """A rule of dashes right above a boundary belongs to it (Outlook's " -----------")."""
    n = len(lines)
    for i in range(n):
        if kinds[i] not in ("t", "s"):
            continue
        line = lines[i].strip().strip("*")
        if len(line) < 2 or line.strip("-_=~ "):
            continue
        j = i + 1
        while j < n and kinds[j] == "e" and j - i <= 3:
            j += 1
        if j < n and kinds[j] == "b":
            kinds[i] = "b"


def _mark_date_first(lines: list[str], clean: list[str], kinds: list[str]) -> None:
    """Mark attributions without a verb: "2013/7/20 Ann <ann@example.com>", then the quote.

    Without a colon at its end such a line is an attribution only when quoted lines follow.
    A line with a year and a time that ends in "<address>:" is one too, date first or not (mail.ru:
    "Среда, 5 июня 2013, 13:20 +04:00 от Ann <ann@example.com>:").
    """
    n = len(lines)
    for i in range(n):
        if kinds[i] != "t" or len(lines[i]) > 300:
            continue
        line = clean[i]
        if line.endswith((">:", ">：")) and _YEAR.search(line) and _DATED_SENDER.fullmatch(line.replace("：", ":")):
            kinds[i] = "b"
            continue
        if not line[:1].isdigit() or not _DATE_FIRST_START.match(line):
            continue
        end = i
        if line.endswith("<") and i + 1 < n and kinds[i + 1] == "t" and len(lines[i + 1]) < 300:
            end = i + 1  # "2013/7/20 Ann Example <" / "ann@example.com>" wrapped by the client
            line += lines[i + 1].strip()
        if not _DATE_FIRST.fullmatch(line.replace("：", ":")):
            continue
        if line.endswith((":", "：")) or _quote_follows(kinds, end):
            for k in range(i, end + 1):
                kinds[k] = "b"
