"""MAIL FROM and RCPT TO arguments on the short path read exactly as aiosmtpd's own parser reads them."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import SMTP

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
