"""Cut the new part of a reply from its quoted history and signature."""

from __future__ import annotations

import re
from collections.abc import Sequence

import lxml.html
from lxml.html import HtmlElement

from mailgate.mail import quote_phrases as P
from mailgate.mail.text import HTML_LAYOUT_LIMIT, html_to_text, tree_text

# How it works: every line gets a kind, then the kinds decide what is kept.
#   e empty · t text · q quoted (">") · b boundary: attribution ("On … wrote:"), separator
#   ("-----Original Message-----"), header block ("From:/Sent:/To:") · s signature delimiter
#   ("-- ", "__________") · m mobile signature ("Sent from my iPhone").
# Work is line by line with bounded windows; no regex ever sees more than one short line or a
# joined attribution of at most _MAX_ATTRIBUTION characters, so 750 KB quotes stay linear.
# The layout rules follow Discourse's email_reply_trimmer (MIT): text, then a boundary, cuts the
# rest; a quote followed by more text is an inline reply and kept.

_MAX_ATTRIBUTION = 400  # a wrapped attribution with long names and addresses stays below this
_MAX_WINDOW = 6  # physical lines an attribution may wrap over (blank lines included)
_LONG_LINE = 1000  # lines longer than this are never markers (base64, long quotes)
_MAX_HEADER_BLOCK = 16  # From/Sent/To/Cc/Subject with wrapped values fit; bounds the scan


def _norm(s: str) -> str:
    """Casefolded, whitespace collapsed, French " :" as ":", curly apostrophes straight."""
    s = " ".join(s.replace("’", "'").casefold().split())
    return s.replace(" :", ":")


def _alternation(words: Sequence[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_TABLES = P.PHRASES.values()
_WROTE = [_norm(w) for t in _TABLES for w in t.wrote]
_INSIDE = [_norm(w) for t in _TABLES for w in t.wrote_inside]
_WROTE_END = re.compile(rf"(?<!\w)(?:{_alternation(_WROTE)}):$")
# Zoho: "---- On Tue, 22 Dec 2015 … Sam wrote ----" has no colon; only trusted after a lead.
_WROTE_BARE_END = re.compile(rf"(?<!\w)(?:{_alternation(_WROTE)})$")
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
_TAIL = max(map(len, _WROTE)) + 4  # enough of a line's end to hold any phrase, ":" and a boundary
_DIGIT = re.compile(r"\d")
_DASH_SIGNOFF = re.compile(P.DASH_SIGNOFF)
_NOISE = str.maketrans("", "", P.NOISE_CHARS)


# A reply's new text sits above its quoted history. Past this many characters only the head is
# classified: a 30 MB log pasted into a mail took seconds per parse when every line was.
_WINDOW = 200_000
_HTML_LIMIT = HTML_LAYOUT_LIMIT  # larger HTML costs seconds in lxml + inscriptis; the plain text is cut instead


def reply_text(text: str, html: str | None = None) -> str:
    """The new text of a reply: no quoted history, no signature; never empty for a non-empty mail."""
    # Each path degrades on hostile input instead of raising: the caller keeps the full body.
    try:
        if len(text) > _WINDOW:
            head = text[:_WINDOW].rsplit("\n", 1)[0]
            cut = _cut(head)
            # Nothing to cut in the head: the whole mail is new text.
            plain = cut if cut != head.strip() else text.strip()
        else:
            plain = _cut(text)
    except Exception:
        plain = ""
    if html and len(html) <= _HTML_LIMIT:
        # Trust the HTML when a client-written container marks the quote: that is structure the
        # client put there, independent of language, while the text path guesses from phrases.
        # Without such a container the text part is better (the sender's own line breaks, no
        # HTML→text artefacts), so it wins.
        try:
            html_text = _html_without_quotes(html)
            from_html = _cut(html_text) if html_text is not None else ""
        except Exception:
            from_html = ""
        if from_html:
            return from_html
    return plain or text.strip()


def new_text(text: str, html: str | None = None, *, keep_signature: bool = False) -> str:
    """What someone answering our own mail added to it: above, below or between the quoted lines.

    The same cut as reply_text, with two differences for an answer to a mail mailgate wrote (an
    agent's reply to a notification): a mail of only quoted history is empty, not kept whole, and
    unquoted text after a leading attribution or header block is the answered mail itself (Outlook
    quotes without ">"), never new words. Between quoted lines (an inline answer) the quoted
    lines stay, as "> " lines: an answer without its question cannot be read. With keep_signature,
    the block under a "-- " delimiter stays (without the delimiter line).
    """
    try:
        if len(text) > _WINDOW:
            head = text[:_WINDOW].rsplit("\n", 1)[0]
            cut = _cut(head, answering=True, keep_signature=keep_signature)
            # Nothing cut in the head: a long answer (a pasted log), every word of it the agent's.
            plain = text.strip() if cut == head.strip() else cut
        else:
            plain = _cut(text, answering=True, keep_signature=keep_signature)
    except Exception:
        plain = ""
    if not plain and html and len(html) <= _HTML_LIMIT and not any(line.lstrip().startswith(">") for line in text.splitlines()):
        # An HTML-only answer: its text was made from the HTML, where quotes are blockquotes and
        # no line says ">", so words below or between the quote looked like part of the history.
        try:
            quoted = _quoted_html_text(html)
            plain = _cut(quoted[:_WINDOW], answering=True, keep_signature=keep_signature) if quoted else ""
        except Exception:
            plain = ""
    if any(line.startswith(">") for line in plain.splitlines()):
        # An inline answer: the HTML path drops whole quote containers, questions and all.
        return plain
    if html and len(html) <= _HTML_LIMIT:
        try:
            html_text = _html_without_quotes(html)
            from_html = _cut(html_text, answering=True, keep_signature=keep_signature) if html_text is not None else ""
        except Exception:
            from_html = ""
        if from_html:
            return from_html
    return plain


def _quoted_html_text(html: str) -> str | None:
    """The HTML as text, each outermost blockquote's lines marked "> " as a plain-text client quotes them.

    None without a blockquote. Lines lose their leading spaces: the converter indents nested
    blocks, which in a mail's HTML is layout, never the writer's words.
    """
    root = lxml.html.document_fromstring(html)
    outer = [el for el in root.iter("blockquote") if not any(a.tag == "blockquote" for a in el.iterancestors())]
    if not outer:
        return None
    for el in outer:
        inner = html_to_text(lxml.html.tostring(el, encoding="unicode", with_tail=False))
        pre = lxml.html.Element("pre")
        pre.text = "\n".join(f"> {line.strip()}" if line.strip() else ">" for line in inner.splitlines())
        pre.tail = el.tail
        parent = el.getparent()
        if parent is not None:
            parent.replace(el, pre)
    converted = html_to_text(lxml.html.tostring(root, encoding="unicode"))
    return "\n".join(line.strip() for line in converted.splitlines())


def _cut(text: str, *, answering: bool = False, keep_signature: bool = False) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kinds = _classify(lines)
    keep = _select(kinds, answering=answering, keep_signature=keep_signature)
    kept = [lines[i].rstrip() for i in keep]
    kept = _drop_signoff(kept)
    return "\n".join(kept).strip()


# --- classification -------------------------------------------------------------------------


def _classify(lines: list[str]) -> list[str]:
    n = len(lines)
    kinds = ["t"] * n
    fenced = False
    for i, raw in enumerate(lines):
        line = raw.translate(_NOISE).strip()
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
        elif _is_separator(line):
            kinds[i] = "b"
        elif line == "--" or (len(line) >= 5 and not line.strip("_")):  # "-- " once stripped
            kinds[i] = "s"
        elif len(line) <= 100 and _MOBILE.fullmatch(line):
            kinds[i] = "m"
        elif _GMAIL_DATE.match(line):
            kinds[i] = "b"
            if i + 1 < n and kinds[i + 1] == "t" and lines[i + 1].rstrip().endswith(":") and len(lines[i + 1]) < 120:
                kinds[i + 1] = "b"  # "…GMT+02:00 Long Name <\nnotifications@example.org>:"
    _mark_header_blocks(lines, kinds)
    _mark_attributions(lines, kinds)
    _mark_rules_before_boundaries(lines, kinds)
    return kinds


def _is_quoted_wrote(line: str) -> bool:
    """Gmail wraps "<a@x\n> wrote:" (or "<a@x\n>:") so an attribution's end looks quoted."""
    if len(line) >= 40:
        return False
    rest = _norm(line.lstrip("> "))
    return rest == ":" or bool(_WROTE_END.search(rest))


def _is_separator(line: str) -> bool:
    if "--" not in line and "__" not in line and not line.endswith(":"):
        return False
    words = _norm(line.strip(" -_=*:>"))
    return words in _SEPARATORS


def _header_role(line: str) -> str | None:
    head, colon, _ = line[:40].partition(":")
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


def _mark_attributions(lines: list[str], kinds: list[str]) -> None:
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
        end = lines[j].strip().rstrip(" -*")
        # The phrase must end the line, so its tail is enough (as in _is_attribution).
        if not end.endswith(":") and not _WROTE_BARE_END.search(_norm(end)[-_TAIL:]):
            continue
        if not any(hinted(i) for i in range(max(0, j - _MAX_WINDOW + 1), j + 1)):
            continue
        start = _attribution_start(lines, kinds, j)
        if start is not None:
            for k in range(start, j + 1):
                kinds[k] = "b"


def _attribution_start(lines: list[str], kinds: list[str], j: int) -> int | None:
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
        line = lines[i].translate(_NOISE).strip()
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


# --- selection ------------------------------------------------------------------------------


def _select(kinds: list[str], *, answering: bool = False, keep_signature: bool = False) -> list[int]:
    """Indexes of the lines that make the new part of the reply."""
    idx = [i for i, k in enumerate(kinds) if k != "m"]  # mobile signatures go wherever they are
    first_text = next((p for p, i in enumerate(idx) if kinds[i] == "t"), None)
    if first_text is None:
        return []
    if answering and "b" in (lead_kinds := [kinds[i] for i in idx[:first_text] if kinds[i] != "e"]) \
            and lead_kinds[-1] == "b":
        # "From:/Sent:/To:" or "On … wrote:" and then unquoted lines: the answered mail, quoted the
        # Outlook way; whoever answers it wrote above (nothing, here) - the rest is history.
        return []
    # A signature delimiter after the first words ends the reply.
    for p in range(first_text, len(idx)):
        if kinds[idx[p]] == "s":
            block = _signature_block(kinds, idx, p) if keep_signature else []
            idx = idx[:p] + block
            break
    lead, rest = idx[:first_text], idx[first_text:]
    # Leading boundary or quote, then text: a bottom-posted reply, or a forward without comment.
    # Keep the leading quote only when the rest is an inline reply (quote, answer, quote, answer).
    keep = [i for i in lead if kinds[i] in ("q", "e")] if _is_inline(kinds, rest) else []
    # Text, then a boundary: everything from the boundary on is history - unless a quote follows
    # with answers below it and no further boundary (an inline reply after "On … wrote:").
    for p, i in enumerate(rest):
        if kinds[i] != "b":
            continue
        after = [k for k in rest[p:] if kinds[k] not in ("b", "e")]
        if after and kinds[after[0]] == "q" and _is_inline(kinds, after) and "b" not in _tail_kinds(kinds, rest, p):
            rest = [k for k in rest if kinds[k] != "b"]
        else:
            rest = rest[:p]
        break
    keep += rest
    while keep and kinds[keep[-1]] in ("e", "q", "b", "s"):
        keep.pop()
    return keep


def _signature_block(kinds: list[str], idx: list[int], p: int) -> list[int]:
    """The lines under the delimiter at idx[p], up to quoted history or the next boundary."""
    block: list[int] = []
    for i in idx[p + 1:]:
        if kinds[i] not in ("t", "e"):
            break
        block.append(i)
    return block


def _is_inline(kinds: list[str], idx: list[int]) -> bool:
    """A quote with new text after it: the writer answers between the quoted lines."""
    seen_quote = False
    for i in idx:
        if kinds[i] == "q":
            seen_quote = True
        elif kinds[i] == "t" and seen_quote:
            return True
    return False


def _tail_kinds(kinds: list[str], rest: list[int], p: int) -> str:
    """Kinds after the boundary run that starts at rest[p]."""
    q = p
    while q < len(rest) and kinds[rest[q]] in ("b", "e"):
        q += 1
    return "".join(kinds[i] for i in rest[q:])


def _drop_signoff(kept: list[str]) -> list[str]:
    """Drop a "-Ann Example" sign-off after a blank line at the end (github email_1_1)."""
    last = len(kept) - 1
    while last >= 0 and not kept[last].strip():
        last -= 1
    if last < 2:
        return kept
    line = kept[last].strip()
    if not kept[last - 1].strip() and _DASH_SIGNOFF.fullmatch(line) and all(w[0].isupper() for w in line[1:].split()):
        return kept[:last]
    return kept


# --- HTML -----------------------------------------------------------------------------------


def _html_without_quotes(html: str) -> str | None:
    """The HTML as text with quote containers cut, or None when it has no known container."""
    try:
        root = lxml.html.fromstring(html)
    except Exception:  # empty document, NUL bytes, an encoding declaration inside a str
        return None
    cut = False
    for xpath in P.HTML_CUT_FROM:
        for el in root.xpath(xpath)[:1]:  # the first marker ends the reply; later ones go with it
            _remove_from(el)
            cut = True
    for xpath in P.HTML_REMOVE:
        for el in root.xpath(xpath):
            if el.getparent() is not None:
                el.drop_tree()  # lxml.html: removes the element, keeps the text after it
                cut = True
    if not cut:
        return None
    # Targets are added after the cut: a link in the quoted history never reaches the reply text.
    return tree_text(root)


def _remove_from(el: HtmlElement) -> None:
    """Remove el and everything after it in document order."""
    node = el
    while (parent := node.getparent()) is not None:
        for sibling in list(node.itersiblings()):
            parent.remove(sibling)
        node.tail = None
        node = parent
    parent = el.getparent()
    if parent is not None:
        parent.remove(el)
