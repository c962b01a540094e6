"""Cut the new part of a reply from its quoted history and signature.

Every line gets a kind (quote_lines), the kinds decide what is kept (quote_select), and an HTML
part's quote containers are cut where a client marked them (quote_html).
"""

from __future__ import annotations

from mailgate.mail import quote_select
from mailgate.mail.quote_html import html_without_quotes, quoted_html_text
from mailgate.mail.quote_select import Cut
from mailgate.mail.text import HTML_LAYOUT_LIMIT, strip_tags

__all__ = ["Cut", "new_text", "read", "reply_text"]

# A reply's new text sits above its quoted history. Past this many characters only the head is
# classified: a 30 MB log pasted into a mail took seconds per parse when every line was.
_WINDOW = 200_000
_HTML_LIMIT = HTML_LAYOUT_LIMIT  # larger HTML costs seconds in lxml + inscriptis; the plain text is cut instead
_NOTHING = Cut("", None, "none")


def reply_text(text: str, html: str | None = None) -> str:
    """The new text of a reply: no quoted history, no signature; never empty for a non-empty mail."""
    return read(text, html).text


def read(text: str, html: str | None = None) -> Cut:
    """The reply's new text, the sign-off cut from it and the quote style (top, bottom, inline, none)."""
    # Each path degrades on hostile input instead of raising: the caller keeps the full body.
    try:
        if len(text) > _WINDOW:
            head = text[:_WINDOW].rsplit("\n", 1)[0]
            got = quote_select.read(head)
            # Nothing to cut in the head: the whole mail is new text.
            plain = got if got.text != head.strip() else Cut(text.strip(), None, "none")
        else:
            plain = quote_select.read(text)
    except Exception:
        plain = _NOTHING
    if html and len(html) <= _HTML_LIMIT and plain.style != "inline":
        from_html = _from_html(html, plain)
        if from_html.text:
            return Cut(from_html.text, from_html.signature or plain.signature,
                       from_html.style if from_html.style != "none" else _html_style(plain))  # fmt: skip
    if not plain.text:
        return Cut(text.strip(), None, "none")  # all quote: nothing is cut, the mail is kept whole
    return plain


def _from_html(html: str, plain: Cut) -> Cut:
    """The cut from the HTML: an inline answer between blockquotes, else the text outside the quote containers."""
    try:
        # Laying the HTML out again costs as much as the first time; it can only help when words
        # follow a blockquote (an answer between quotes) or when the text part showed no quote.
        last = html.lower().rfind("</blockquote")
        worth = last >= 0 and (plain.style == "none" or bool(strip_tags(html[last:]).strip()))
        quoted = quoted_html_text(html) if worth else None
        by_blockquote = quote_select.read(quoted[:_WINDOW]) if quoted is not None else _NOTHING
        if by_blockquote.style == "inline":
            # Apple Mail and Thunderbird answer between <blockquote type="cite"> parts; their text
            # alternative, when there is one, may not mark the quote at all.
            return by_blockquote
        # Trust the HTML when a client-written container marks the quote: that is structure the
        # client put there, independent of language, while the text path guesses from phrases.
        # Without such a container the text part is better (the sender's own line breaks, no
        # HTML→text artefacts), so it wins.
        html_text = html_without_quotes(html)
        if html_text is not None:
            return quote_select.read(_flush_left(html_text))
        if by_blockquote.style == "top" and plain.style == "none":
            # A plain <blockquote> under the new words, in a client or language the phrase tables
            # do not know (the text made from such HTML has no ">" to go by): the quoted history.
            return by_blockquote
        return _NOTHING
    except Exception:
        return _NOTHING


def _html_style(plain: Cut) -> str:
    """The style when an HTML container was cut: the text part's, or "top" (the container was below)."""
    return plain.style if plain.style != "none" else "top"


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
            cut = quote_select.cut(head, answering=True, keep_signature=keep_signature)
            # Nothing cut in the head: a long answer (a pasted log), every word of it the agent's.
            plain = text.strip() if cut == head.strip() else cut
        else:
            plain = quote_select.cut(text, answering=True, keep_signature=keep_signature)
    except Exception:
        plain = ""
    if not plain and html and len(html) <= _HTML_LIMIT and not any(line.lstrip().startswith(">") for line in text.splitlines()):
        # An HTML-only answer: its text was made from the HTML, where quotes are blockquotes and
        # no line says ">", so words below or between the quote looked like part of the history.
        try:
            quoted = quoted_html_text(html)
            plain = quote_select.cut(quoted[:_WINDOW], answering=True, keep_signature=keep_signature) if quoted else ""
        except Exception:
            plain = ""
    if any(line.startswith(">") for line in plain.splitlines()):
        # An inline answer: the HTML path drops whole quote containers, questions and all.
        return plain
    if html and len(html) <= _HTML_LIMIT:
        try:
            html_text = html_without_quotes(html)
            from_html = quote_select.cut(_flush_left(html_text), answering=True, keep_signature=keep_signature) \
                if html_text is not None else ""
        except Exception:
            from_html = ""
        if from_html:
            # The same words either way: a text part keeps the writer's own paragraphs (Outlook on
            # the web writes them as bare <div>s, no blank line between); a text the converter made
            # from the HTML comes indented, and the flush-left HTML cut reads better.
            same = plain.split() == from_html.split()
            return plain if same and not any(line.startswith(" ") for line in plain.splitlines()) else from_html
    return plain


def _flush_left(text: str) -> str:
    """The text made from HTML without the indentation of nested blocks.

    The converter indents a block inside another by two spaces a level, and Gmail writes each
    line of a reply as a <div> inside <div dir="ltr">: the words came out shifted right, all but
    the first line. In a mail's HTML that is layout, never the writer's words.
    """
    return "\n".join(line.lstrip(" ") for line in text.splitlines())
