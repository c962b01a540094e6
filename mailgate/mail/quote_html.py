"""Quoted history in HTML: blockquotes and the quote containers mail clients write."""

from __future__ import annotations

import lxml.html
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


def html_without_quotes(html: str) -> str | None:
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
