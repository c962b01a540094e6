"""Random MIME from anyone, through the whole pipeline: every mail stored, processed, answered.

hypothesis builds mails from nested multiparts (mixed, alternative, related, report, digest) and
message/rfc822 parts, real and hostile charset labels, transfer encodings (honest or lying) and
raw header bytes. Each one goes into a running daemon: most through the spool→process path the
SMTP listener hands mail to, some over a real SMTP session. After each: the spool row is done,
the message is stored under the sender's address, and no stored text is unencodable. At the end
an ordinary customer is still acknowledged through the relay and no acknowledgement failed.

The daemon runs on its own loop in a thread, so hypothesis drives it from a plain test; runs
are derandomized with a fixed number of examples, so CI sees the same mails every time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import quopri
import smtplib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailgate import config as config_mod
from mailgate import spool
from mailgate.daemon import Running, started
from mailgate.mail.parse import parse
from mailgate.models import Envelope, Source

from ..conftest import SUPPORT, settle, write_config
from ..sink import AGENTS, Sink, relay_section, running_sink
from .conftest import TRUSTED, still_flowing

T = TypeVar("T")

REAL_CHARSETS = [
    "utf-8", "us-ascii", "iso-8859-1", "windows-1252", "iso-8859-2", "koi8-r", "shift_jis", "iso-2022-jp",
    "gb2312", "big5", "euc-kr", "utf-7", "utf-16", "x-unknown", "", "\"utf-8\"", "utf-8*en",
]  # fmt: skip
HOSTILE_CHARSETS = [
    "unicode_escape", "raw_unicode_escape", "undefined", "idna", "punycode", "rot13", "base64", "zlib",
    "hex", "uu", "bz2", "quopri", "utf-32", "mbcs", "x-\u00ff", "utf-8\x00", "a" * 300,
]  # fmt: skip
TRANSFER_ENCODINGS = ["", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "bogus"]
LEAF_TYPES = ["text/plain", "text/html", "text/enriched", "application/octet-stream", "image/png",
              "message/delivery-status", "text/rfc822-headers", "application/pdf"]  # fmt: skip
# Header bytes a sender controls, without the specials that would change the From's structure.
NAME_BYTES = st.binary(max_size=30).map(lambda b: bytes(c for c in b if c >= 0x80 or chr(c).isalpha() or c == 0x20))
RAW_HEADER = st.binary(max_size=120).map(lambda b: b.replace(b"\r", b" ").replace(b"\n", b" "))
# A few hostile strings that random bytes rarely hit: escapes, surrogate halves, bidi overrides.
SNIPPETS = st.sampled_from(
    [b"\\ud800", b"\\U0010ffff\\udfff", b"+2AA-", b"\xed\xa0\x80", b"\xe2\x80\xae", b"\x00", b"=?", b"?=", b"<div>" * 40]
)
BODY = st.lists(st.one_of(st.binary(max_size=60), SNIPPETS, st.text(max_size=40).map(str.encode)), max_size=5).map(b"".join)

_boundaries = itertools.count()


@dataclass(frozen=True)
class Leaf:
    ctype: str
    charset: str | None
    cte: str
    body: bytes
    filename: bytes | None


@dataclass(frozen=True)
class Multi:
    subtype: str
    parts: tuple[Any, ...]
    hostile_boundary: bool


@dataclass(frozen=True)
class Embedded:
    subject: bytes
    inner: Any


leaves = st.builds(
    Leaf,
    ctype=st.sampled_from(LEAF_TYPES),
    charset=st.none() | st.sampled_from(REAL_CHARSETS + HOSTILE_CHARSETS),
    cte=st.sampled_from(TRANSFER_ENCODINGS),
    body=BODY,
    filename=st.none() | NAME_BYTES | SNIPPETS,
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(
            Multi,
            subtype=st.sampled_from(["mixed", "alternative", "related", "report", "digest", "signed"]),
            parts=st.lists(children, max_size=4).map(tuple),
            hostile_boundary=st.booleans(),
        ),
        st.builds(Embedded, subject=RAW_HEADER, inner=children),
    ),
    max_leaves=10,
)


@dataclass(frozen=True)
class Sample:
    display: bytes
    subject: bytes
    extra_headers: tuple[bytes, ...]
    tree: Any
    wrap: int  # extra nesting levels around the tree: sometimes past the parser's limit
    wrap_kind: str


samples = st.builds(
    Sample,
    display=st.one_of(
        NAME_BYTES,
        st.builds(
            lambda cs, enc, data: b"=?" + cs.encode("utf-8", "replace") + b"?" + enc + b"?" + _word(enc, data) + b"?=",
            st.sampled_from(REAL_CHARSETS + HOSTILE_CHARSETS),
            st.sampled_from([b"Q", b"B"]),
            st.one_of(st.binary(max_size=20), SNIPPETS),
        ),
    ),
    subject=RAW_HEADER,
    extra_headers=st.lists(
        st.builds(lambda name, value: name + b": " + value, st.sampled_from([b"X-Junk", b"Comments", b"Keywords", b"Content-ID"]), RAW_HEADER),
        max_size=3,
    ).map(tuple),
    tree=trees,
    wrap=st.one_of(st.just(0), st.integers(0, 3), st.integers(30, 60)),
    wrap_kind=st.sampled_from(["multipart", "message"]),
)


def _word(enc: bytes, data: bytes) -> bytes:
    if enc == b"B":
        return base64.b64encode(data)
    return b"".join(b"=%02X" % c for c in data)


def _encode(body: bytes, cte: str) -> bytes:
    if cte == "base64":
        return base64.encodebytes(body)
    if cte == "quoted-printable":
        return quopri.encodestring(body)
    if cte == "x-uuencode":
        lines = [binascii.b2a_uu(body[i : i + 45]) for i in range(0, len(body), 45)]
        return b"begin 644 file.bin\n" + b"".join(lines) + b"`\nend\n"
    return body


def render(node: Any) -> bytes:
    """One entity: its content headers, a blank line and its body."""
    if isinstance(node, Leaf):
        ctype = node.ctype.encode()
        if node.charset is not None:
            ctype += b"; charset=" + node.charset.encode("utf-8", "replace")
        head = b"Content-Type: " + ctype + b"\r\n"
        if node.cte:
            head += b"Content-Transfer-Encoding: " + node.cte.encode() + b"\r\n"
        if node.filename is not None:
            head += b'Content-Disposition: attachment; filename="' + node.filename.replace(b'"', b"") + b'"\r\n'
        return head + b"\r\n" + _encode(node.body, node.cte) + b"\r\n"
    if isinstance(node, Embedded):
        return b"Content-Type: message/rfc822\r\n\r\nSubject: " + node.subject + b"\r\n" + render(node.inner)
    boundary = b"b%d" % next(_boundaries)
    param = b"boundary*=undefined''" + boundary if node.hostile_boundary else b'boundary="' + boundary + b'"'
    out = [b"Content-Type: multipart/" + node.subtype.encode() + b"; " + param + b"\r\n\r\npreamble\r\n"]
    for part in node.parts:
        out.append(b"--" + boundary + b"\r\n" + render(part))
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def wrapped(sample: Sample) -> bytes:
    node: Any = sample.tree
    for _ in range(sample.wrap):
        node = Multi("mixed", (node,), False) if sample.wrap_kind == "multipart" else Embedded(b"fwd", node)
    return render(node)


_customers = itertools.count()


def build(sample: Sample) -> tuple[str, bytes]:
    """The customer's address and the wire bytes of their mail."""
    n = next(_customers)
    customer = f"c{n}@customer.test"
    head = (
        b"From: " + sample.display + b" <" + customer.encode() + b">\r\n"
        b"Message-ID: <m" + str(n).encode() + b"@customer.test>\r\n"
        b"To: " + SUPPORT.encode() + b"\r\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        b"Subject: " + sample.subject + b"\r\n"
        + b"".join(h + b"\r\n" for h in sample.extra_headers)
        + b"MIME-Version: 1.0\r\n"
    )
    return customer, head + wrapped(sample)


def smtp_safe(raw: bytes) -> bytes:
    """The same mail with CRLF line ends and lines short enough for SMTP (RFC 5321 4.5.3.1.6)."""
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    out: list[bytes] = []
    for line in lines:
        out.extend(line[i : i + 900] for i in range(0, max(len(line), 1), 900))
    return b"\r\n".join(out)


class DaemonThread:
    """A daemon and its relay sink serving on their own loop in a thread, for sync hypothesis tests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loop: asyncio.AbstractEventLoop | None = None
        self.running: Running | None = None
        self.sink: Sink | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="hypothesis-daemon", daemon=True)

    def __enter__(self) -> DaemonThread:
        self._thread.start()
        if not self._ready.wait(60) or self.running is None:
            raise RuntimeError(f"daemon did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_sink() as sink:
            # Hundreds of distinct customers within a minute: the global acknowledgement cap (a
            # backscatter guard, tested on its own) would rightly withhold the bystander's.
            body = relay_section(sink.port, send_delay=0.05) + AGENTS + "\n[storms]\nacks_per_minute = 0\nacks_per_hour = 0\n"
            config = config_mod.load(write_config(self.folder, body, gateway=f'authserv_id = "{TRUSTED}"\n'))
            async with started(config) as running:
                self.sink, self.running = sink, running
                self._ready.set()
                await self._stop.wait()


async def _spool_and_process(running: Running, raw: bytes, customer: str) -> int:
    envelope = Envelope(mail_from=customer, rcpt_to=(SUPPORT,), source=Source.SMTP)
    accepted = await spool.accept(running.store, raw, envelope)
    running.worker.wake()
    await settle(running, timeout=60)
    return accepted.spool_id


async def _stored(running: Running, spool_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    async with running.store.read() as tx:
        row = dict(await tx.one("SELECT state, error, message_row FROM spool WHERE id = ?", (spool_id,)))
        message = None
        if row["message_row"] is not None:
            found = await tx.one("SELECT * FROM messages WHERE id = ?", (row["message_row"],))
            message = dict(found) if found is not None else None
    return row, message


def check_stored(daemon: DaemonThread, spool_id: int, customer: str) -> None:
    assert daemon.running is not None
    row, message = daemon.call(_stored(daemon.running, spool_id))
    assert row["state"] == "done", row
    assert message is not None
    # The From was parseable by construction: the ticket must be the customer's.
    assert message["from_address"] == customer
    for value in message.values():
        if isinstance(value, str):
            value.encode("utf-8")


async def _outbox_failures(running: Running) -> list[dict[str, Any]]:
    async with running.store.read() as tx:
        return [dict(r) for r in await tx.all("SELECT id, kind, state, last_error FROM outbox WHERE state = 'failed'")]


def check_still_delivering(daemon: DaemonThread) -> None:
    assert daemon.running is not None and daemon.sink is not None
    daemon.call(still_flowing(daemon.running, daemon.sink, 1))
    assert daemon.call(_outbox_failures(daemon.running)) == []


_SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def test_random_mime_through_spool_and_processing(tmp_path: Path) -> None:
    with DaemonThread(tmp_path) as daemon:
        assert daemon.running is not None
        sent: list[str] = []

        @_SETTINGS
        @given(samples)
        def one_mail(sample: Sample) -> None:
            assert daemon.running is not None
            customer, raw = build(sample)
            spool_id = daemon.call(_spool_and_process(daemon.running, raw, customer))
            check_stored(daemon, spool_id, customer)
            sent.append(customer)

        one_mail()
        assert len(sent) >= 200  # the examples really ran
        check_still_delivering(daemon)


async def _last_spool_id(running: Running) -> int:
    async with running.store.read() as tx:
        return int(await tx.value("SELECT COALESCE(MAX(id), 0) FROM spool"))


def test_random_mime_over_smtp(tmp_path: Path) -> None:
    with DaemonThread(tmp_path) as daemon:
        assert daemon.running is not None
        port = daemon.running.smtp_port
        sent: list[str] = []

        @settings(_SETTINGS, max_examples=40)
        @given(samples)
        def one_mail(sample: Sample) -> None:
            assert daemon.running is not None
            customer, raw = build(sample)
            before = daemon.call(_last_spool_id(daemon.running))
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                assert client.sendmail(customer, [SUPPORT], smtp_safe(raw)) == {}
            daemon.call(settle(daemon.running, timeout=60))
            spool_id = daemon.call(_last_spool_id(daemon.running))
            assert spool_id > before  # 250 meant stored
            check_stored(daemon, spool_id, customer)
            sent.append(customer)

        one_mail()
        assert len(sent) >= 30
        check_still_delivering(daemon)


@settings(_SETTINGS, max_examples=600)
@given(samples)
def test_random_mime_parses_to_storable_mail_with_its_sender(sample: Sample) -> None:
    """The same mails, many more of them, through parse() alone: what the worker stores."""
    customer, raw = build(sample)
    mail = parse(raw)
    assert [a.address for a in mail.from_] == [customer]
    for text in (mail.subject, mail.text, mail.reply_text, mail.html or "", *(a.filename or "" for a in mail.attachments)):
        text.encode("utf-8")
    for name, value in mail.headers:
        (name + value).encode("utf-8")
