"""Shortcuts on the per-mail path read exactly what the general code they skip would read."""

from __future__ import annotations

import itertools
from email.utils import parseaddr
from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import SMTP
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from mailgate.outgoing import relay
from mailgate.outgoing.templates import SHIPPED, _paragraphs, _paragraphs_html
from mailgate.sources.smtp import _parsed_address

LOCALS = ["a", "a.b", "first.last+tag", "x_y", "a=b", "A-Z9", "o'brien", "a..b", ".a", "a.", "-", "", "jörg", "a b",
          '"q q"', "a(c)", "a<b"]
DOMAINS = ["example.test", "mail-1.example.test", "b", "x..y", "[192.0.2.1]", "xn--bcher-kva.test", "bücher.test",
           ".x", "x.", ""]


def _aiosmtpd(arg: str, limit: int = 64) -> object:
    try:
        return SMTP._getaddr(SimpleNamespace(local_part_limit=limit), arg)  # type: ignore[arg-type]
    except Exception as exc:  # the header parser trips on some garbage ("<a@>"); the session answers 500 then
        return type(exc)


def _ours(arg: str, limit: int = 64) -> object:
    _parsed_address.cache_clear()
    try:
        return _parsed_address(arg, limit)
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("params", ["", " ", " SIZE=1234", "  SIZE=1234 BODY=8BITMIME ", "\tSMTPUTF8",
                                    " (comment) SIZE=1", " SIZE=1 (x)", "x", "SIZE=1"])
def test_envelope_addresses_read_as_aiosmtpd_reads_them(params: str) -> None:
    for local, domain in itertools.product(LOCALS, DOMAINS):
        for arg in (f"<{local}@{domain}>{params}", f"{local}@{domain}{params}", f" <{local}@{domain}>{params}"):
            assert _ours(arg) == _aiosmtpd(arg), arg
    assert _ours("<>" + params) == _aiosmtpd("<>" + params)


def test_a_local_part_over_the_limit_is_refused_on_the_short_path_too() -> None:
    arg = f"<{'a' * 65}@example.test>"
    assert _ours(arg) == _aiosmtpd(arg) == (None, None)
    assert _ours(arg, 0) == _aiosmtpd(arg, 0) == (arg[1:-1], "")


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
