"""Make mail text safe to show and store: HTML sanitized (nh3), HTML as plain text (inscriptis), names cleaned."""

from __future__ import annotations

import html as html_lib
import re
import textwrap
import unicodedata
from urllib.parse import parse_qs, unquote, urlsplit

import lxml.html
import nh3
from inscriptis import Inscriptis
from lxml.etree import ParserError
from lxml.html import HtmlElement

from mailgate.mail.charsets import scrub

# Inline images in HTML mail point at their MIME part with cid: URLs (RFC 2392).
_URL_SCHEMES = frozenset(nh3.ALLOWED_URL_SCHEMES) | {"cid"}

# inscriptis builds an lxml tree and a layout model: about 0.6 s and 0.3 GB per MB of HTML, so a
# 20 MB HTML-only mail held the worker for 24-49 s and about 1 GB while every other mail waited.
# Real HTML bodies are far below this; bigger ones (order lists, log dumps, pasted spreadsheets)
# are read by a linear tag stripper instead: every word kept, the table layout lost.
HTML_LAYOUT_LIMIT = 512 * 1024  # characters
# Element nesting this deep is no mail client's work: lxml stops at 256 levels (the body text
# after that is lost) and nh3 (html5ever) spends seconds per 100 KB on deeply nested blocks.
HTML_DEPTH_LIMIT = 200

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
# A tag never runs past the next "<": a missing ">" cannot make one match scan the rest again.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)([^<>]*)>?")
_SKIP_OPEN = re.compile(r"<!--|<(script|style|head|title)\b[^<>]*>?", re.I)
_SKIP_CLOSE = {
    "script": re.compile(r"</script\s*>", re.I),
    "style": re.compile(r"</style\s*>", re.I),
    "head": re.compile(r"</head\s*>", re.I),
    "title": re.compile(r"</title\s*>", re.I),
}
_BLOCK = frozenset(
    {
        "p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
        "blockquote", "pre", "hr", "dd", "dt", "section", "article", "header", "footer", "center",
    }
)  # fmt: skip
_CELL = frozenset({"td", "th"})
_BLOCK_TAG = re.compile(rf"</?(?:{'|'.join(sorted(_BLOCK))})\b[^<>]*>?", re.I)
_CELL_TAG = re.compile(r"<(?:td|th)\b[^<>]*>?", re.I)
_ANY_TAG = re.compile(r"</?[A-Za-z!?][^<>]*>?")
_SPACES = re.compile(r"[ \t\f\v\r\u00a0]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def sanitize_html(html: str) -> str:
    """The HTML with scripts, styles, event handlers and unknown schemes removed."""
    try:
        return nh3.clean(html, url_schemes=set(_URL_SCHEMES))
    except Exception:  # nh3 is Rust underneath; a panic surfaces as an arbitrary exception
        return ""


def too_deep(html: str, limit: int = HTML_DEPTH_LIMIT) -> bool:
    """Whether elements nest deeper than limit (unclosed ones count as open). Linear time."""
    if html.count("<") <= limit:
        return False
    depth = 0
    for match in _TAG.finditer(html):
        if match.group(1):
            depth = max(depth - 1, 0)
        elif match.group(3).endswith("/") or match.group(2).lower() in _VOID:
            continue
        else:
            depth += 1
            if depth > limit:
                return True
    return False


def html_to_text(html: str) -> str:
    """A plain-text rendering of an HTML body, layout kept as far as text allows (and size allows)."""
    if not html.strip():
        return ""
    if len(html) > HTML_LAYOUT_LIMIT or too_deep(html):
        return strip_tags(html)
    try:
        text = tree_text(_tree(html))
    except Exception:  # lxml rejects some inputs (NUL bytes, broken encodings declarations)
        try:
            text = tree_text(_tree(html.replace("\x00", "")))
        except Exception:
            return strip_tags(html)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


_XML_DECLARATION = re.compile(r"^<\?xml [^>]+?\?>")


def _tree(html: str) -> HtmlElement:
    # As inscriptis' get_text: a whole document (a fragment's synthetic wrapper would be styled
    # and indent the text), and unparseable markup read as preformatted text.
    html = _XML_DECLARATION.sub("", html.strip(), count=1)
    try:
        return lxml.html.document_fromstring(html)
    except ParserError:
        return lxml.html.document_fromstring("<pre>" + html + "</pre>")


def tree_text(root: HtmlElement) -> str:
    """The text of a parsed HTML tree (changed in place), each link followed by its target."""
    show_link_targets(root)
    # inscriptis' relaxed profile indents a <p> inside a <div> by two spaces; Outlook wraps every
    # paragraph so (div.WordSection1), which shifted whole mails right. Only the common margin goes:
    # list and table indentation stays.
    return textwrap.dedent(str(Inscriptis(root).get_text()))


# HTML-only mail (Outlook, marketing tools, web forms) says "See the <a>export page</a>." and the
# address lives only in href: plain text without it loses what the customer pointed at. Targets
# are written as "export page [https://…]": readable in a notification and in a quoted reply,
# where markdown's "[text](url)" (inscriptis' display_links) reads as noise and footnotes get
# separated from their words once an agent cuts the quote.
_SHOWN_SCHEMES = ("http://", "https://", "ftp://")
_LINK_NOISE = re.compile(r"[\x00-\x20\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+")
_BARE = re.compile(r"^(?:https?://|ftp://|mailto:|tel:)?(?:www\.)?", re.I)
LINK_TARGET_LIMIT = 2000  # characters; longer hrefs are tracking blobs or data, not addresses to read


def link_target(href: str, label: str) -> str | None:
    """What to show after a link's words: its address, or None (no words, same as the words, not a place)."""
    # Clients wrap long hrefs over lines and senders hide bidi or zero-width characters in them.
    target = _LINK_NOISE.sub("", href)
    lower = target.lower()
    if lower.startswith("mailto:"):
        target = _LINK_NOISE.sub("", unquote(target[7:].split("?", 1)[0]))
    elif lower.startswith("tel:"):
        target = target[4:]
    elif not lower.startswith(_SHOWN_SCHEMES):
        return None  # javascript:, data:, cid:, "#anchor", relative paths: nowhere a reader can go
    else:
        unwrapped = _unwrap_safelink(target)
        if unwrapped is None:
            return None
        target = unwrapped
    if not target or len(target) > LINK_TARGET_LIMIT or "[" in target or "]" in target:
        return None
    words = " ".join(label.split())
    if not words:
        return None  # an image or an empty anchor: its target alone is newsletter noise
    bare = _bare(target)
    if bare and bare in _bare(words):
        return None  # the words already are the address ("https://x/y", "www.x/y", "alice@x")
    return target


def _unwrap_safelink(target: str) -> str | None:
    """Microsoft 365 rewrites every link in mail it delivers to a Safe Links redirect (about 300
    characters of tracking); the address the writer meant is its url= parameter."""
    if ".safelinks.protection.outlook.com" not in target.lower():
        return target
    try:
        parts = urlsplit(target)
        if not (parts.hostname or "").endswith(".safelinks.protection.outlook.com"):
            return target
        inner = parse_qs(parts.query).get("url", [""])[0]
    except ValueError:  # "https://[::1" and other broken hosts: shown as written
        return target
    inner = _LINK_NOISE.sub("", inner)
    return inner if inner.lower().startswith(_SHOWN_SCHEMES) else None


def _bare(text: str) -> str:
    return _BARE.sub("", _LINK_NOISE.sub("", text.casefold())).rstrip("/.")


def show_link_targets(root: HtmlElement) -> None:
    """Write each link's target after its words, in the tree itself (only what is left of it is shown)."""
    for anchor in root.iter("a"):
        href = anchor.get("href")
        if not href:
            continue
        target = link_target(href, anchor.text_content())
        if target is not None:
            anchor.tail = f" [{target}]" + (anchor.tail or "")


def strip_tags(html: str) -> str:
    """Plain text of HTML in one linear pass: markup, scripts, styles and comments dropped, entities read."""
    out: list[str] = []
    pos = 0
    end = len(html)
    while pos < end:
        skip = _SKIP_OPEN.search(html, pos)
        stop = skip.start() if skip else end
        out.append(_text_between(html, pos, stop))
        if skip is None:
            break
        if skip.group(0) == "<!--":
            close = html.find("-->", skip.end())
            pos = end if close < 0 else close + 3
        else:
            found = _SKIP_CLOSE[skip.group(1).lower()].search(html, skip.end())
            pos = end if found is None else found.end()
    text = _SPACES.sub(" ", "".join(out))
    lines = (line.strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def _text_between(html: str, start: int, stop: int) -> str:
    # Whole-string substitutions run in C; a Python step per tag cost 3 s on a 20 MB body.
    chunk = html[start:stop].replace("\n", " ")
    chunk = _BLOCK_TAG.sub("\n", chunk)
    chunk = _CELL_TAG.sub(" ", chunk)
    chunk = _ANY_TAG.sub("", chunk)
    return html_lib.unescape(chunk) if "&" in chunk else chunk


# Characters that change how a name is shown without being part of it: bidi embeddings,
# overrides and isolates (U+202E turns "invoice\u202efdp.exe" into "invoiceexe.pdf" on screen),
# other format characters (zero-width space, BOM, tag characters), controls and line separators.
# ZWJ and ZWNJ stay: emoji sequences and Persian or Indic names need them.
_KEEP_FORMAT = frozenset({"\u200c", "\u200d"})
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def visible_name(name: str) -> str:
    """A sender-chosen name (attachment file name) with invisible and reordering characters removed."""
    name = scrub(name)
    if name.isascii():
        cleaned = "".join(c for c in name if " " <= c <= "~")
    else:
        cleaned = "".join(
            c for c in name if c in _KEEP_FORMAT or unicodedata.category(c) not in _HIDDEN_CATEGORIES
        )
    return cleaned.strip()
