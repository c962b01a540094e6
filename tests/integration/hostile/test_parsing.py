"""Hostile bytes over real SMTP: charset labels, nesting, huge or deep HTML, disguised file names.

Each mail is one a sender can write today. The customer must get a ticket under their own
address and an acknowledgement at the relay, the spool must hold no dead row, and an ordinary
mail sent afterwards must still be acknowledged.
"""

from __future__ import annotations

import asyncio
import base64
import encodings.aliases
import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.mail.charsets import codec_for, decode_bytes, decode_words, scrub
from mailgate.mail.parse import MAX_ATTACHMENTS, MAX_DEPTH, parse, parse_bytes
from mailgate.ops import ticket_view as tickets

from ..conftest import SUPPORT, send, settle
from ..sink import Sink, wait_mail
from .conftest import still_flowing

CRLF = b"\r\n"


def head(customer: str, subject: bytes, extra: bytes = b"") -> bytes:
    return (
        b"From: Carol Customer <" + customer.encode() + b">\r\n"
        b"To: " + SUPPORT.encode() + b"\r\n"
        b"Subject: " + subject + b"\r\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <" + customer.encode() + b".1@customer.test>\r\n"
        b"MIME-Version: 1.0\r\n" + extra
    )


def text_part(charset: bytes, body: bytes, cte: bytes = b"8bit") -> bytes:
    return b"Content-Type: text/plain; charset=" + charset + b"\r\nContent-Transfer-Encoding: " + cte + b"\r\n\r\n" + body


def nested_multiparts(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\nthe innermost words\r\n"
    for level in range(depth):
        b = b"b%d" % level
        body = b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n" + body + b"\r\n--" + b + b"--\r\n"
    return body


def nested_messages(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\nthe innermost words\r\n"
    for level in range(depth):
        body = b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % level + body
    return body


def deep_html(depth: int) -> bytes:
    # SMTP lines stop at 1000 octets.
    opening, closing = "<div>" * 100 + "\r\n", "</div>" * 100 + "\r\n"
    html = "<html><body>\r\n" + opening * (depth // 100) + "Deep words survive\r\n" + closing * (depth // 100) + "</body></html>"
    return b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html.encode()


def big_html(size: int) -> bytes:
    rows = []
    total = n = 0
    while total < size:
        row = f"<tr><td>Item {n}</td><td><a href='https://shop.test/{n}'>Product &amp; more</a></td></tr>\n"
        rows.append(row)
        total += len(row)
        n += 1
    html = "<html><body><p>Order list</p><table>" + "".join(rows) + "</table><p>Final row marker</p></body></html>"
    body = base64.encodebytes(html.encode()).replace(b"\n", CRLF)
    return b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body


# name -> (subject words the acknowledgement must repeat, raw mail for that customer)
HOSTILE: dict[str, Callable[[str], tuple[str, bytes]]] = {
    "encoded-word unicode_escape": lambda c: ("Refund please", head(c, b"Refund please =?unicode_escape?Q?=5Cud800?=") + CRLF + b"hello\r\n"),
    "encoded-word raw_unicode_escape": lambda c: ("Refund please", head(c, b"Refund please =?raw_unicode_escape?Q?=5Cud800x?=") + CRLF + b"hello\r\n"),
    "encoded-word undefined": lambda c: ("Order status", head(c, b"Order status =?undefined?Q?abc?=") + CRLF + b"hello\r\n"),
    "encoded-word idna": lambda c: ("Order status", head(c, b"Order status =?idna?Q?" + b"x" * 80 + b"?=") + CRLF + b"hello\r\n"),
    "encoded-word utf-16": lambda c: ("Order status", head(c, b"Order status =?utf-16?B?" + base64.b64encode("\r\nBcc: x".encode("utf-16")) + b"?=") + CRLF + b"hello\r\n"),
    "body unicode_escape": lambda c: ("Broken invoice", head(c, b"Broken invoice", text_part(b"unicode_escape", b"see \\ud800 here\r\n"))),
    "body raw_unicode_escape": lambda c: ("Broken invoice", head(c, b"Broken invoice", text_part(b"raw_unicode_escape", b"see \\ud800 here\r\n"))),
    "body undefined 8bit": lambda c: ("Broken invoice", head(c, b"Broken invoice", text_part(b"undefined", b"caf\xc3\xa9 \xe9\r\n"))),
    "body idna": lambda c: ("Broken invoice", head(c, b"Broken invoice", text_part(b"idna", b"x" * 70 + b".\xff\r\n"))),
    "body utf-7 surrogate": lambda c: ("Broken invoice", head(c, b"Broken invoice =?utf-7?Q?+2AA-?=", text_part(b"utf-7", b"half +2AA- pair\r\n", b"7bit"))),
    "body base64 codec label": lambda c: ("Broken invoice", head(c, b"Broken invoice", text_part(b"base64", b"aGVsbG8=\r\n"))),
    "boundary undefined charset": lambda c: (
        "Odd boundary",
        head(c, b"Odd boundary", b"Content-Type: multipart/mixed; boundary*=undefined''xx\r\n\r\n--xx\r\n\r\nhi\r\n--xx--\r\n"),
    ),
    "2000 nested multiparts": lambda c: ("Nested parts", head(c, b"Nested parts", nested_multiparts(2000))),
    "1500 nested messages": lambda c: ("Nested forwards", head(c, b"Nested forwards", nested_messages(1500))),
    "html nested 100000 deep": lambda c: ("Deep markup", head(c, b"Deep markup", deep_html(100_000))),
    # Each took over two minutes of one worker before: a regex rescanned the rest from every opening.
    "50000 unclosed encoded words": lambda c: (
        "Unclosed words",
        head(c, b"Unclosed words\r\n " + b"\r\n ".join([b"=?utf-8?q?a"] * 50_000)) + CRLF + b"hello\r\n",
    ),
    "50000 uuencode begin lines": lambda c: ("Old client", head(c, b"Old client") + CRLF + b"begin 644 a\r\n" * 50_000),
}


async def rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list:
    async with running.store.read() as tx:
        return await tx.all(sql, params)


async def assert_customer_served(running: Running, sink: Sink, customer: str, subject: str) -> dict:
    """The customer's mail became a ticket under their address, and they were acknowledged."""
    await settle(running, timeout=60)
    assert [dict(r) for r in await rows(running, "SELECT id, state, error FROM spool WHERE state != 'done'")] == []
    [message] = await rows(running, "SELECT * FROM messages WHERE from_address = ?", (customer,))
    [ticket] = await rows(running, "SELECT number FROM tickets WHERE id = ?", (message["ticket_id"],))
    async with running.store.read() as tx:
        shown = await tickets.show_ticket(tx, ticket["number"])
    assert shown is not None
    assert customer in [p["address"] for p in shown["parties"]]
    json.dumps(shown, ensure_ascii=False).encode("utf-8")  # what `tickets show --json` prints
    await wait_mail(sink, customer, subject)
    return dict(message)


@pytest.mark.asyncio
@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_bytes_still_give_the_customer_a_ticket(hostile: Running, sink: Sink, case: str) -> None:
    customer = "carol@customer.test"
    subject, raw = HOSTILE[case](customer)
    await send(hostile.smtp_port, raw, [SUPPORT], sender=customer)
    message = await assert_customer_served(hostile, sink, customer, subject)
    for column in ("subject", "text", "reply_text"):
        (message[column] or "").encode("utf-8")  # no lone surrogates reached the store
    await still_flowing(hostile, sink)


@pytest.mark.asyncio
async def test_hostile_charset_labels_are_recorded_not_decoded(hostile: Running, sink: Sink) -> None:
    customer = "dora@customer.test"
    subject, raw = HOSTILE["body unicode_escape"](customer)
    await send(hostile.smtp_port, raw, [SUPPORT], sender=customer)
    message = await assert_customer_served(hostile, sink, customer, subject)
    # The escape stays the text the sender typed; it is never turned into a code point.
    assert "see \\ud800 here" in message["text"]
    assert "UnknownCharset:unicode_escape" in json.loads(message["defects"])


@pytest.mark.asyncio
async def test_deep_nesting_is_kept_as_one_attachment(hostile: Running, sink: Sink) -> None:
    customer = "erik@customer.test"
    subject, raw = HOSTILE["2000 nested multiparts"](customer)
    await send(hostile.smtp_port, raw, [SUPPORT], sender=customer)
    message = await assert_customer_served(hostile, sink, customer, subject)
    assert any(d.startswith("NestingTooDeep") for d in json.loads(message["defects"]))
    kept = await rows(hostile, "SELECT size FROM attachments WHERE message_row = ?", (message["id"],))
    assert len(kept) == 1 and kept[0]["size"] > 0  # the unparsed rest is kept, not dropped


@pytest.mark.asyncio
async def test_huge_html_is_read_as_text_and_kept_as_attachment(hostile: Running, sink: Sink) -> None:
    customer = "fiona@customer.test"
    await send(hostile.smtp_port, head(customer, b"Huge order list", big_html(5 * 1024 * 1024)), [SUPPORT], sender=customer)
    # Sent right behind the huge one: it is answered as well.
    await still_flowing(hostile, sink)
    message = await assert_customer_served(hostile, sink, customer, "Huge order list")
    assert "Item 0 Product & more" in message["text"]
    assert "Final row marker" in message["text"]
    assert any(d.startswith("HtmlTooLarge") for d in json.loads(message["defects"]))
    [kept] = await rows(hostile, "SELECT filename, content_type, size FROM attachments WHERE message_row = ?", (message["id"],))
    assert (kept["filename"], kept["content_type"]) == ("message.html", "text/html")
    assert kept["size"] > 5 * 1024 * 1024


@pytest.mark.asyncio
async def test_bidi_override_in_attachment_name_is_removed(hostile_config: Callable[..., Config], sink: Sink) -> None:
    customer = "gus@customer.test"
    evil = "invoice\u202efdp.exe"
    hidden = "report\u200b\u2066.pdf\u2069\x07.txt"
    raw = head(
        customer,
        b"Invoice attached",
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--zz\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''"
        + "".join(f"%{b:02X}" for b in evil.encode()).encode()
        + b"\r\n\r\nMZ\r\n--zz\r\nContent-Type: text/plain; name=\"=?utf-8?B?"
        + base64.b64encode(hidden.encode())
        + b"?=\"\r\nContent-Disposition: attachment\r\n\r\nplain\r\n--zz--\r\n",
    )
    async with started(hostile_config()) as running:
        await send(running.smtp_port, raw, [SUPPORT], sender=customer)
        message = await assert_customer_served(running, sink, customer, "Invoice attached")
        names = [r["filename"] for r in await rows(running, "SELECT filename FROM attachments WHERE message_row = ?", (message["id"],))]
        assert names == ["invoicefdp.exe", "report.pdf.txt"]


@pytest.mark.asyncio
async def test_deeply_nested_html_keeps_its_words(hostile: Running, sink: Sink) -> None:
    customer = "hanna@customer.test"
    subject, raw = "Deep markup", head(customer, b"Deep markup", deep_html(20_000))
    await send(hostile.smtp_port, raw, [SUPPORT], sender=customer)
    message = await assert_customer_served(hostile, sink, customer, subject)
    # lxml gives up at 256 levels: the words after that were lost, and nh3 spent 20 s on them.
    assert "Deep words survive" in message["text"]
    assert message["html"] is None
    assert any(d.startswith("HtmlTooDeep") for d in json.loads(message["defects"]))


# --- the pieces, without a daemon -------------------------------------------------------------

HOSTILE_LABELS = ["unicode_escape", "raw_unicode_escape", "undefined", "idna", "punycode", "rot13", "base64",
                  "zlib", "hex", "uu", "bz2", "quopri", "mbcs", "palmos", "cp037"]  # fmt: skip
EVERY_LABEL = sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()) | set(HOSTILE_LABELS))


@pytest.mark.parametrize("label", HOSTILE_LABELS)
def test_labels_that_are_no_mail_charset_are_refused(label: str) -> None:
    assert codec_for(label) is None
    assert decode_bytes(b"caf\xc3\xa9 \\ud800", label) == ("café \\ud800", f"UnknownCharset:{label}")


def test_wide_encodings_only_in_bodies() -> None:
    assert codec_for("utf-16") == "utf-16"
    assert codec_for("utf-16", header=True) is None
    assert codec_for("utf-7", header=True) == "utf-7"  # real mail (old Outlook, IMAP folder names)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(data=st.binary(max_size=40), label=st.sampled_from(EVERY_LABEL), header=st.booleans())
def test_decoding_never_raises_nor_yields_surrogates(data: bytes, label: str, header: bool) -> None:
    text, _ = decode_bytes(data, label, header=header)
    text.encode("utf-8")
    word = "=?" + label + "?B?" + base64.b64encode(data).decode() + "?="
    decode_words(word).encode("utf-8")


def test_scrub_joins_pairs_and_replaces_halves() -> None:
    assert scrub("a\ud83d\ude00b") == "a😀b"
    assert scrub("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert scrub("plain") == "plain"


@pytest.mark.parametrize("depth", [MAX_DEPTH - 2, MAX_DEPTH + 5, 3000])
def test_nesting_is_bounded_at_parse(depth: int) -> None:
    raw = head("ida@customer.test", b"Nested") + nested_multiparts(depth)
    parse_bytes(raw).as_bytes()  # the stdlib generator recurses per level too
    mail = parse(raw)
    assert [a.address for a in mail.from_] == ["ida@customer.test"]
    assert (f"NestingTooDeep:{MAX_DEPTH}" in mail.defects) == (depth > MAX_DEPTH - 1)
    if depth < MAX_DEPTH:
        assert "the innermost words" in mail.text


def test_a_body_no_parser_reads_still_names_its_sender() -> None:
    from mailgate.mail.parse import _fallback

    raw = head("jon@customer.test", b"=?utf-8?q?Caf=C3=A9?= broken") + b"Content-Type: multipart/mixed\r\n\r\nbody words\r\n"
    mail = _fallback(raw, RecursionError("maximum recursion depth exceeded"))
    assert [a.address for a in mail.from_] == ["jon@customer.test"]
    assert (mail.subject, mail.message_id) == ("Café broken", "jon@customer.test.1@customer.test")
    assert "body words" in mail.text
    assert not mail.from_is_clean  # never an agent's proven command
    assert "ParseError:RecursionError" in mail.defects


@pytest.mark.asyncio
async def test_a_mail_of_many_tiny_parts_is_kept_whole_past_the_limit(hostile: Running, sink: Sink) -> None:
    customer = "kim@customer.test"
    parts = b"".join(
        b"--zz\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f%d.bin\r\n\r\nx%d\r\n" % (i, i)
        for i in range(20_000)
    )
    raw = head(customer, b"Many parts", b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n" + parts + b"--zz--\r\n")
    await send(hostile.smtp_port, raw, [SUPPORT], sender=customer)
    message = await assert_customer_served(hostile, sink, customer, "Many parts")
    assert "TooManyParts:20000" in json.loads(message["defects"])
    kept = await rows(hostile, "SELECT filename, size FROM attachments WHERE message_row = ? ORDER BY id", (message["id"],))
    # Each part was a file and a row: 100,000 of them held the worker 21 s.
    assert len(kept) == MAX_ATTACHMENTS + 1
    assert (kept[0]["filename"], kept[-1]["filename"]) == ("f0.bin", "original.eml")
    assert kept[-1]["size"] >= len(raw)
    await still_flowing(hostile, sink)


def _raw_session(port: int, mail_from: bytes, rcpt: bytes, body: bytes) -> list[bytes]:
    """A client that writes bytes, not text: the envelope a broken or hostile MTA really sends."""
    import socket

    replies: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock, sock.makefile("rb") as reader:
        def command(line: bytes) -> bytes:
            sock.sendall(line + b"\r\n")
            while True:
                answer = reader.readline()
                if answer[3:4] != b"-":
                    return answer

        replies.append(reader.readline())
        for line in (b"EHLO client.test", b"MAIL FROM:<" + mail_from + b"> SMTPUTF8", b"RCPT TO:<" + rcpt + b">",
                     b"DATA", body + b"\r\n."):
            replies.append(command(line))
        command(b"QUIT")
    return replies


@pytest.mark.asyncio
async def test_non_utf8_envelope_bytes_are_stored_not_refused(hostile: Running, sink: Sink) -> None:
    """8-bit junk in MAIL FROM / RCPT TO (aiosmtpd keeps it as lone surrogates) must not turn into a 5xx."""
    body = (b"From: Ola <ola@customer.test>\r\nTo: support@example.test\r\nSubject: Envelope junk\r\n"
            b"Message-ID: <junk-envelope@customer.test>\r\n\r\nHello.\r\n")
    answers = await asyncio.to_thread(_raw_session, hostile.smtp_port, b"\xff\xfe@bad.test",
                                      b"support+\xff@example.test", body)
    assert answers[-1].startswith(b"250"), answers
    await settle(hostile)
    async with hostile.store.read() as tx:
        row = await tx.one("SELECT state, mail_from FROM spool ORDER BY id DESC LIMIT 1")
    assert row["state"] == "done" and row["mail_from"] == "\ufffd\ufffd@bad.test"
    await wait_mail(sink, "ola@customer.test", "Envelope junk")
    await still_flowing(hostile, sink)
