"""Shortcuts on the per-mail path read exactly what the general code they skip would read."""

from __future__ import annotations

import itertools
from email.utils import parseaddr

import lxml.html
import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from mailgate.mail import quote_html, quote_phrases
from mailgate.mail.text import tree_text
from mailgate.outgoing import relay
from mailgate.outgoing.templates import SHIPPED, _paragraphs, _paragraphs_html

LOCALS = ["a", "a.b", "first.last+tag", "x_y", "a=b", "A-Z9", "o'brien", "a..b", ".a", "a.", "-", "", "jörg", "a b",
          '"q q"', "a(c)", "a<b"]
DOMAINS = ["example.test", "mail-1.example.test", "b", "x..y", "[192.0.2.1]", "xn--bcher-kva.test", "bücher.test",
           ".x", "x.", ""]


def _mailbox_slowly(address: str) -> relay.Mailbox | None:
    """relay.mailbox without its shortcut: the parseaddr round trip decides (CVE-2023-27043)."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or relay._UNSAFE.search(address) or relay._invisible(address):
        return None
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    spec = f"{local}@{domain}"
    return relay.Mailbox(spec, not spec.isascii()) if parseaddr(spec)[1] == spec else None


def test_relay_mailboxes_are_what_the_parseaddr_check_gives() -> None:
    for local, domain in itertools.product(LOCALS, DOMAINS):
        address = f"{local}@{domain}"
        assert relay.mailbox(address) == _mailbox_slowly(address), address


@pytest.mark.parametrize("text", [
    "Hello <b>&amp; 'quoted' \"words\"\nsecond line\n\nnext paragraph\n",
    "one line only\n",
    "\n\n  \n\nafter blank paragraphs\r\nwith a CRLF\u2028and a line separator\n\n\n",
    "<script>alert(1)</script>\n\n&lt;already&gt;\n",
])
def test_the_layout_writes_what_its_line_loop_wrote(text: str) -> None:
    # The shipped layout's earlier form, kept here as the reference for byte-identical output.
    loop = ('{% for paragraph in paragraphs %}\n<p>{% for line in paragraph %}{{ line }}{% if not loop.last %}<br>\n'
            '{% endif %}{% endfor %}</p>\n{% endfor %}')
    env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
    shipped = (SHIPPED / "_layout.html").read_text(encoding="utf-8")
    data = {"language": "en", "subject": "Ü <s>", "paragraphs": _paragraphs(text),
            "paragraphs_html": _paragraphs_html(text)}
    expected = env.from_string(shipped.replace(
        "{% for paragraph in paragraphs_html %}\n<p>{{ paragraph }}</p>\n{% endfor %}", loop)).render(data)
    assert "{% for line in paragraph %}" not in shipped
    assert env.from_string(shipped).render(data) == expected


def _without_quotes_every_expression(html: str) -> str | None:
    """quote_html.html_without_quotes as it ran before its needles: every expression over the tree."""
    root = lxml.html.fromstring(html)
    cut = False
    for xpath in quote_phrases.HTML_CUT_FROM:
        for el in root.xpath(xpath)[:1]:
            quote_html._remove_from(el)
            cut = True
    for xpath in quote_phrases.HTML_REMOVE:
        for el in root.xpath(xpath):
            if el.getparent() is not None:
                el.drop_tree()
                cut = True
    return tree_text(root) if cut else None


@pytest.mark.parametrize("html", [
    '<div>Thanks!<div class="gmail_quote">On Mon, Ann wrote:<blockquote>old words</blockquote></div></div>',
    '<div>Hi</div><div id="divRplyFwdMsg"><b>From:</b> x</div><div>old</div>',
    '<p>Thanks</p><blockquote type="cite">old</blockquote><p>after</p>',
    '<p>Thanks</p><div class="moz-cite-prefix">On x wrote:</div><blockquote>y</blockquote>',
    '<p>a</p><div class="yahoo_quoted_x">q</div><div id="yahoo_quoted_123">q</div>',
    '<p>a</p><div style="border:none; border-top:solid #E1E1E1 1.0pt">From: q</div><p>old</p>',
    '<p>a</p><div class="x  gmail_signature\n y">sig</div><hr id="stopSpelling">old',
    '<p>a</p><div class="OutlookMessageHeader">h</div><div ID="appendonsend"></div><p>old</p>',
    '<p>a</p><div id="AOLMsgPart_2">q</div><div class="protonmail_quote">p</div><div class="zmail_extra">z</div>',
    '<p>a</p><blockquote type="CITE">another case</blockquote><div class="&#103;mail_quote">an entity</div>',
    "<p>No quote at all, only <a href='https://example.test/'>a link</a>.</p>",
])
def test_quote_containers_are_cut_as_every_expression_cut_them(html: str) -> None:
    assert quote_html.html_without_quotes(html) == _without_quotes_every_expression(html)
