"""Quoted history in HTML: blockquotes and the quote containers mail clients write."""

from __future__ import annotations

import re

import lxml.html
from lxml import etree
from lxml.html import HtmlElement

from mailgate.mail import quote_phrases as P
from mailgate.mail.text import html_to_text, tree_text


def quoted_html_text(html: str) -> str | None:
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


_LITERAL = re.compile(r"'([^']*)'")


def _needle(xpath: str) -> str | None:
    """Text an id, class or type attribute must contain for the expression to match: its last
    quoted word. None when the expression rewrites the attribute first (translate) or has none."""
    if "translate(" in xpath or not set(re.findall(r"@([a-z-]+)", xpath)) <= {"id", "class", "type"}:
        return None
    words = [word.strip() for word in _LITERAL.findall(xpath) if word.strip()]
    return words[-1] if words else None


# Compiled once, each with its needle: every expression walks the whole tree, and most mail has
# none of these containers, so one walk for the attribute values spares the other sixteen.
_CUT_FROM = tuple((etree.XPath(x), _needle(x)) for x in P.HTML_CUT_FROM)
_REMOVE = tuple((etree.XPath(x), _needle(x)) for x in P.HTML_REMOVE)
_ATTRIBUTES = etree.XPath("//@id | //@class | //@type")


def html_without_quotes(html: str) -> str | None:
    """The HTML as text with quote containers cut, or None when it has no known container."""
    try:
        root = lxml.html.fromstring(html)
    except Exception:  # empty document, NUL bytes, an encoding declaration inside a str
        return None
    cut = False
    present = "\n".join(_ATTRIBUTES(root))
    for find, needle in _CUT_FROM:
        if needle is not None and needle not in present:
            continue
        for el in find(root)[:1]:  # the first marker ends the reply; later ones go with it
            _remove_from(el)
            cut = True
    for find, needle in _REMOVE:
        if needle is not None and needle not in present:
            continue
        for el in find(root):
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
