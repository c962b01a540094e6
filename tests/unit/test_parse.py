"""Unit tests for parse(): charsets, guarded headers, identities, bodies, attachments, never raising."""

from __future__ import annotations

import base64
import binascii
import hashlib
import inspect
import re
from datetime import UTC
from email import feedparser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate.mail import mime, quotes
from mailgate.mail.charsets import codec_for, decode_bytes, decode_words
from mailgate.mail.parse import generated_message_id, header, parse
from mailgate.models import MailKind

HEAD = b"From: Alice <alice@example.com>\r\nTo: support@example.org\r\nMessage-ID: <m1@example.com>\r\n"


def mail(headers: bytes, body: bytes = b"hello\r\n") -> bytes:
    return HEAD + headers + b"\r\n" + body


def text_mail(charset: str, body: bytes, cte: str = "8bit") -> bytes:
    return mail(
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n".encode(),
        body,
    )


# --- charsets -----------------------------------------------------------------------------------

SAMPLES = [
    ("utf-8", "Grüße, Zoë – ok"),
    ("utf8", "Grüße"),
    ("iso-8859-1", "Grüße, café"),
    ("latin1", "Grüße"),
    ("iso-8859-2", "Jeżu klątw, spłódź"),
    ("iso-8859-15", "Hyvää päivää €"),
    ("windows-1250", "Příliš žluťoučký kůň"),
    ("windows-1252", "“quoted” – café €"),
    ("iso-2022-jp", "色は匂えど散りぬるを"),
    ("koi8-r", "Съешь же ещё этих мягких"),
    ("gb2312", "石室诗士施氏"),
    ("gbk", "石室诗士施氏"),
    ("gb18030", "石室诗士施氏 📧"),
    ("big5", "中文測試"),
    ("euc-kr", "키스의 고유조건은"),
    ("ks_c_5601-1987", "키스의 고유조건은"),
    ("shift_jis", "色は匂えど"),
    ("tis-620", "เป็นมนุษย์"),
    ("windows-874", "เป็นมนุษย์"),
    ("x-mac-cyrillic", "Привет"),
    ("iso-8859-8-i", "שלום"),
    ("unicode-1-1-utf-7", "Grüße"),
]


@pytest.mark.parametrize(("label", "text"), SAMPLES)
def test_body_charsets(label: str, text: str) -> None:
    codec = codec_for(label)
    assert codec is not None
    encoded = text.encode(codec)
    p = parse(text_mail(label, base64.b64encode(encoded), cte="base64"))
    assert p.text == text
    assert not [d for d in p.defects if d.startswith(("UnknownCharset", "CharsetDecodeError"))]


def test_unknown_charset_falls_back_to_utf8_and_reports() -> None:
    p = parse(text_mail("x-unknown", "Grüße".encode()))
    assert p.text == "Grüße"
    p = parse(text_mail("x-foo", "Grüße".encode()))
    assert p.text == "Grüße"
    assert "UnknownCharset:x-foo" in p.defects


def test_us_ascii_part_with_8bit_bytes_tries_utf8_then_windows_1252() -> None:
    assert parse(text_mail("us-ascii", "Grüße".encode())).text == "Grüße"
    assert parse(text_mail("us-ascii", "Grüße €".encode("cp1252"))).text == "Grüße €"
    assert parse(mail(b"", "café".encode("latin-1"))).text == "café"


def test_mislabelled_latin1_that_is_utf8() -> None:
    assert decode_bytes("Grüße".encode(), "iso-8859-2")[0] == "Grüße".encode().decode("iso-8859-2")
    assert decode_bytes(b"\x81", "latin1")[0] == "\x81"


def test_crlf_normalised() -> None:
    assert parse(mail(b"", b"a\r\nb\rc\n")).text == "a\nb\nc\n"


# --- headers ------------------------------------------------------------------------------------


def test_subject_rfc2047_and_unfolding() -> None:
    p = parse(mail(b"Subject: =?utf-8?q?caf=C3=A9?=\r\n =?utf-8?b?IOKCrA==?= and\r\n\tmore\r\n"))
    assert p.subject == "café € and more"


def test_encoded_word_split_inside_a_character() -> None:
    assert decode_words("=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=") == "café"


def test_8bit_raw_subject_is_kept() -> None:
    p = parse(mail("Subject: Grüße aus Köln\r\n".encode()))
    assert p.subject == "Grüße aus Köln"
    p = parse(text_mail("iso-8859-1", b"x").replace(b"To:", "Subject: Grüße\r\nTo:".encode("latin-1")))
    assert p.subject == "Grüße"
    p = parse(text_mail("koi8-r", b"x").replace(b"To:", "Subject: Привет\r\nTo:".encode("koi8-r")))
    assert p.subject == "Привет"


def test_cve_2023_27043_from_is_not_clean() -> None:
    p = parse(b"From: alice@x.example)<bob@y.example>\r\nTo: a@b.example\r\n\r\nhi\r\n")
    assert p.from_is_clean is False


def test_clean_from() -> None:
    p = parse(mail(b""))
    assert p.from_is_clean is True
    assert p.from_[0].name == "Alice" and p.from_[0].address == "alice@example.com"


@pytest.mark.parametrize(
    "value",
    [
        b"Alice <alice@example.com>, Bob <bob@example.com>",  # two addresses
        b"Alice <alice@example.com> <evil@example.com>",
        b"alice@example.com (comment) <bob@example.com>",
    ],
)
def test_from_not_clean(value: bytes) -> None:
    assert parse(b"From: " + value + b"\r\n\r\nhi").from_is_clean is False


def test_two_from_headers_are_not_clean() -> None:
    assert parse(mail(b"From: Eve <eve@example.com>\r\n")).from_is_clean is False


def test_undisclosed_recipients_does_not_raise() -> None:
    p = parse(b"From: a@example.com\r\nTo: undisclosed-recipients:;>\r\nCc: undisclosed-recipients:;\r\n\r\nhi")
    assert p.to == ()
    assert any(d.startswith("HeaderDecodeError:To") for d in p.defects)


def test_addresses_with_encoded_names_and_comments() -> None:
    p = parse(
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n"
        b'To: "Doe, John" <john@example.com>, jane@example.com (Jane Doe)\r\n'
        b"Cc:  x@example.com \r\n\r\nhi"
    )
    assert [(a.name, a.address) for a in p.from_] == [("Jürgen", "j@example.com")]
    assert [(a.name, a.address) for a in p.to] == [("Doe, John", "john@example.com"), ("Jane Doe", "jane@example.com")]
    assert [a.address for a in p.cc] == ["x@example.com"]


def test_missing_message_id_is_stable() -> None:
    raw = b"From: a@example.com\r\nSubject: x\r\n\r\nhello"
    first, second = parse(raw), parse(raw)
    assert first.message_id_generated and first.message_id == second.message_id
    assert first.message_id.startswith("sha256-") and first.message_id.endswith("@mailgate.invalid")
    assert parse(raw + b"!").message_id != first.message_id
    assert generated_message_id(raw) == first.message_id
    # Another copy of the same mail: trace headers added, LF endings, a trailing blank line.
    copy = b"Received: from relay.test by mx.test\nDelivered-To: s@example.test\n" + raw.replace(b"\r\n", b"\n") + b"\n"
    assert parse(copy).message_id == first.message_id
    assert parse(raw.replace(b"Subject: x", b"Subject: y")).message_id != first.message_id


def test_message_id_unusable_is_generated() -> None:
    assert parse(b"Message-ID: <>\r\n\r\nx").message_id_generated
    assert parse(b"Message-ID:    \r\n\r\nx").message_id_generated


def test_message_id_threading_headers() -> None:
    p = parse(
        b"Message-ID:  <  abc@example.com >\r\n"
        b"In-Reply-To: <p1@example.com> (comment) <p2@example.com>\r\n"
        b"References: <r1@example.com>,<r2@example.com>\r\n <r3@example.com> junk\r\n\r\nx"
    )
    assert p.message_id == "abc@example.com"
    assert p.in_reply_to == "p1@example.com"
    assert p.references == ("r1@example.com", "r2@example.com", "r3@example.com")
    p = parse(b"Message-ID: bare@example.com\r\nReferences: a@example.com b@example.com\r\n\r\nx")
    assert p.message_id == "bare@example.com"
    assert p.references == ("a@example.com", "b@example.com")


def test_date() -> None:
    p = parse(mail(b"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n"))
    assert p.date is not None and p.date.utcoffset() is not None
    assert p.date.astimezone(UTC).hour == 9
    assert parse(mail(b"Date: Mon, 23 Nov 2026 10:00:00 -0000\r\n")).date.tzinfo is not None  # type: ignore[union-attr]
    assert parse(mail(b"Date: yesterday-ish\r\n")).date is None
    assert parse(mail(b"Date: Mon, 23 Nov 99999 10:00:00 +0100\r\n")).date is None


def test_headers_kept_in_order_decoded() -> None:
    p = parse(mail(b"Subject: =?utf-8?q?h=C3=A9?=\r\nX-Thing: 1\r\nX-Thing: 2\r\n"))
    assert p.header("subject") == "hé"
    assert p.header_all("x-thing") == ["1", "2"]
    assert [n for n, _ in p.headers][:3] == ["From", "To", "Message-ID"]


def test_header_helper_never_raises() -> None:
    from email import message_from_bytes
    from email.policy import compat32

    msg = message_from_bytes(b"To: undisclosed-recipients:;>\r\nSubject: caf\xc3\xa9\r\n\r\n", policy=compat32)
    assert header(msg, "to") == "undisclosed-recipients:;>"
    assert header(msg, "subject") == "café"
    assert header(msg, "missing") is None


# --- bodies and attachments ---------------------------------------------------------------------

MULTIPART = b"""From: a@example.com\r
Message-ID: <mp@example.com>\r
Content-Type: multipart/mixed; boundary="B"\r
\r
--B\r
Content-Type: multipart/alternative; boundary="A"\r
\r
--A\r
Content-Type: text/plain; charset=utf-8\r
\r
Plain body\r
--A\r
Content-Type: text/html; charset=utf-8\r
\r
<p onclick="x()">HTML <b>body</b></p><script>alert(1)</script><img src="cid:img1@x">\r
--A--\r
--B\r
Content-Type: image/png\r
Content-ID: <img1@x>\r
Content-Transfer-Encoding: base64\r
\r
iVBORw0KGgo=\r
--B\r
Content-Type: application/octet-stream; name="../../etc/passwd"\r
Content-Disposition: attachment; filename*=UTF-8''%2E%2E%2F%2E%2E%2Fetc%2Fpasswd\r
\r
root\r
--B\r
Content-Type: application/pdf\r
Content-Disposition: attachment; filename="=?utf-8?q?R=C3=A9sum=C3=A9?=.pdf"\r
\r
%PDF\r
--B--\r
"""


def test_multipart_bodies_and_attachments() -> None:
    p = parse(MULTIPART)
    assert p.text == "Plain body"
    assert p.html is not None and "<script>" not in p.html and "onclick" not in p.html
    assert "cid:img1@x" in p.html
    image, passwd, pdf = p.attachments
    assert image.inline and image.content_id == "img1@x" and image.data == b"\x89PNG\r\n\x1a\n"
    assert image.sha256 == hashlib.sha256(image.data).hexdigest() and image.size == 8
    # The name is data only; nothing here writes files.
    assert passwd.filename == "../../etc/passwd" and not passwd.inline and passwd.data == b"root"
    assert pdf.filename == "Résumé.pdf"


def test_text_made_from_html_when_no_text_part() -> None:
    p = parse(mail(b"Content-Type: text/html; charset=utf-8\r\n", b"<p>Hello <b>world</b></p><p>Bye</p>"))
    assert "Hello world" in p.text and "Bye" in p.text
    assert p.html is not None


def test_rfc822_attachment() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\n"
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--X\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: b@example.com\r\nMessage-ID: <inner@example.com>\r\nSubject: inner\r\n\r\ninner body\r\n--X--\r\n"
    )
    p = parse(raw)
    assert p.text == "see attached"
    assert len(p.attachments) == 1 and p.attachments[0].content_type == "message/rfc822"
    assert b"inner body" in p.attachments[0].data


def test_uuencoded_body_becomes_attachment() -> None:
    encoded = binascii.b2a_uu(b"hello\n").rstrip(b"\n")
    body = b"Here it is:\r\n\r\nbegin 644 hello.txt\r\n" + encoded + b"\r\n`\r\nend\r\n\r\nbye\r\n"
    p = parse(mail(b"", body))
    assert [a.filename for a in p.attachments] == ["hello.txt"]
    assert p.attachments[0].data == b"hello\n"
    assert "begin 644" not in p.text and "bye" in p.text


def test_reply_text_errors_do_not_sink_the_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str, html: str | None = None) -> quotes.Cut:
        raise RuntimeError("bug")

    monkeypatch.setattr(quotes, "read", broken)
    p = parse(mail(b"", b"hello\r\n"))
    assert p.reply_text == p.text == "hello\n"
    assert "ReplyTextError:RuntimeError" in p.defects


def test_defects_are_reported() -> None:
    p = parse(b"Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nhi\r\n")
    assert "CloseBoundaryNotFoundDefect" in p.defects


def test_header_name_with_space_does_not_hide_the_mime_structure() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
        b"X-Bad Name: 1\r\n continued\r\n\r\n" + base64.b64encode("Grüße".encode()) + b"\r\n"
    )
    assert parse(raw).text.strip() == "Grüße"


# --- never raises -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"\r\n", b"\x00\xff" * 50, b"From:\r\n\r\n", b"Content-Type: multipart/mixed\r\n\r\n--\r\n", b":" * 1000],
)
def test_edge_inputs(raw: bytes) -> None:
    p = parse(raw)
    assert p.message_id_generated
    assert p.kind in MailKind


def test_non_bytes_like_input_does_not_raise() -> None:
    assert parse(bytearray(b"Subject: x\r\n\r\nbody")).subject == "x"
    assert parse(None).message_id_generated  # type: ignore[arg-type]


HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "References",
        "In-Reply-To",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Auto-Submitted",
        "X-Junk",
    ]
)
HEADER_VALUES = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [
            b"undisclosed-recipients:;>",
            b"=?utf-8?b?!!?=",
            b"multipart/mixed; boundary=",
            b"text/plain; charset=x-\xff",
            b"attachment; filename*=bogus''%ZZ",
            b"<a@b> <",
            b"base64",
            b'"a\\" <b@c>',
            b"=?x?q?=FF?=",
        ]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8), st.binary(max_size=300))
def test_random_headers_and_bodies_never_raise(headers: list[tuple[str, bytes]], body: bytes) -> None:
    raw = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body
    p = parse(raw)
    assert isinstance(p.text, str) and p.message_id


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    p = parse(raw)
    assert not any(d.startswith("ParseError") for d in p.defects)


def _stdlib_separator(separator: str) -> re.Pattern[str]:
    # The pattern email.feedparser builds for a multipart boundary (Lib/email/feedparser.py).
    return re.compile("(?P<sep>" + re.escape(separator) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$")


_BOUNDARY_CHARS = st.text(alphabet="aZ09'()+_,-./:=? \t*[]\\$^|{}\r\nä", min_size=1, max_size=30)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(boundary=_BOUNDARY_CHARS, tail=st.sampled_from(["", "--", "-", "  ", "\t--", "-- \t", "x", "--x"]),
       end=st.sampled_from(["", "\r\n", "\n", "\r", "\n\n", " \r\n"]), prefix=st.sampled_from(["", "--", " "]))
def test_boundary_lines_match_as_the_stdlib_pattern_does(boundary: str, tail: str, end: str, prefix: str) -> None:
    """The parser's separator matcher agrees with the stdlib's compiled pattern, groups and all."""
    separator = "--" + boundary
    ours = feedparser.re.compile(_stdlib_separator(separator).pattern)
    assert isinstance(ours, mime._Separator)
    for line in (prefix + separator + tail + end, separator[:-1] + end, separator + end):
        want, got = _stdlib_separator(separator).match(line), ours.match(line)
        assert (want is None) == (got is None), line
        if want is not None and got is not None:
            assert [want.group(g) for g in ("end", "ws", "linesep")] == [got.group(g) for g in ("end", "ws", "linesep")]


def test_boundary_with_pattern_characters_splits_parts() -> None:
    # RFC 2046 5.1.1 allows ()+_,-./:=? and space in a boundary: none of them may act as a pattern.
    body = (b"--a.b+c(d)?=\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
            b"--a.b+c(d)?=  \r\nContent-Type: text/html\r\n\r\n<p>second</p>\r\n"
            b"--aXb+c(d)?=\r\nnot a boundary: '.' is no wildcard\r\n"
            b"--a.b+c(d)?=--\r\nepilogue\r\n")
    parsed = parse(mail(b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="a.b+c(d)?="\r\n', body))
    assert parsed.text.strip() == "first"
    assert "not a boundary" in (parsed.html or "")


def test_feedparser_still_builds_the_boundary_pattern_mail_mime_recognises() -> None:
    # mail/mime.py recognises the exact pattern the stdlib's feed parser compiles per boundary (a
    # private detail of Lib/email/feedparser.py). Another Python may build it differently: parsing
    # would still be right (any other pattern goes to re.compile) but the saving would be gone
    # unnoticed, so this fails instead, to have mime.py follow the new pattern.
    source = inspect.getsource(feedparser)
    assert ("boundaryre = re.compile(\n                '(?P<sep>' + re.escape(separator) +\n"
            "                r')(?P<end>--)?(?P<ws>[ \\t]*)(?P<linesep>\\r\\n|\\r|\\n)?$')") in source
    seen: list[object] = []
    real = feedparser.re

    class Watch:
        def compile(self, pattern: str, flags: int = 0) -> object:
            compiled = real.compile(pattern, flags)
            seen.append(compiled)
            return compiled

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    vars(feedparser)["re"] = Watch()
    try:
        parse(mail(b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz"\r\n',
                   b"--zz\r\nContent-Type: text/plain\r\n\r\nhello\r\n--zz--\r\n"))
    finally:
        vars(feedparser)["re"] = real
    assert seen and all(isinstance(found, mime._Separator) for found in seen)
