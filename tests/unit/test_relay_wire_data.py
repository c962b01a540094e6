"""The DATA bytes and SIZE= the relay puts on the wire are what aiosmtplib's sendmail would have sent."""

from __future__ import annotations

# aiosmtplib's own steps for DATA: the reference these bytes must match (and a change to them shows here).
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from mailgate.outgoing.transaction import wire_data


def sendmail_data(raw: bytes) -> tuple[bytes, int]:
    normalized = normalize_message_line_endings(raw)
    return PERIOD_REGEX.sub(b"..", normalized) + b".\r\n", len(normalized)


CASES = [
    b"Subject: hi\r\n\r\nHello\r\n",
    b"Subject: hi\r\n\r\nNo final line end",
    # A customer's text with lines that start with a dot: a signature separator, an ellipsis,
    # a lone dot (which would end DATA early if it were not doubled).
    b"Subject: dots\r\n\r\n.signature\r\n...and then\r\n.\r\n..\r\nend.\r\n",
    b".starts with a dot\r\n\r\nbody\r\n",
    b"",
    b".",
    # Lone LF and CR (a forwarded original written on Unix or classic Mac OS) become CRLF.
    b"Subject: unix\n\nline one\n.dot line\nline three\n",
    b"Subject: mac\r\rline\r.dot\r",
    b"mixed\r\r\nends\n\r.x\r\n",
    b"Subject: \xc3\xa4\r\n\r\n\xe2\x82\xac 8-bit\r\n.\xc3\xa4\r\n",
]


def test_fixed_cases_match_sendmail() -> None:
    for raw in CASES:
        assert wire_data(raw) == sendmail_data(raw), raw


def test_a_composed_mail_goes_unchanged_but_for_the_dots() -> None:
    raw = b"From: a@example.test\r\nSubject: x\r\n\r\nquote:\r\n.hidden\r\nbye\r\n"
    data, size = wire_data(raw)
    assert size == len(raw)
    assert data == raw.replace(b"\r\n.hidden", b"\r\n..hidden") + b".\r\n"


@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b"\xe9", b" ", b"\r\n."]), max_size=40))
def test_any_mix_of_line_ends_and_dots_matches_sendmail(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    assert wire_data(raw) == sendmail_data(raw)
