"""SMTP and LMTP receiving over real sessions on 127.0.0.1: 250 only after commit, 550, 552, 451."""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import sqlite3
from collections.abc import Callable

import pytest
from aiosmtpd.smtp import SMTP

from mailgate import replies
from mailgate.config import Config
from mailgate.daemon import started
from mailgate.sources import smtp as smtp_source
from mailgate.sources import smtp_data

from .conftest import BILLING, SUPPORT, mail, send, settle

pytestmark = pytest.mark.asyncio


async def spool_rows(running) -> list[sqlite3.Row]:
    async with running.store.read() as tx:
        return await tx.all("SELECT * FROM spool ORDER BY id")


async def test_250_after_raw_bytes_are_stored(daemon) -> None:
    raw = mail(message_id="<one@customer.test>")
    refused = await send(daemon.smtp_port, raw)
    assert refused == {}
    rows = await spool_rows(daemon)
    assert len(rows) == 1
    assert bytes(rows[0]["raw"]) == raw  # byte for byte, nothing re-serialized
    assert rows[0]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert rows[0]["mail_from"] == "alice@customer.test"
    assert rows[0]["source"] == "smtp"
    await settle(daemon)
    async with daemon.store.read() as tx:
        assert await tx.value("SELECT COUNT(*) FROM tickets") == 1


async def test_plus_token_address_is_accepted_and_others_get_550(daemon) -> None:
    def session() -> tuple[tuple[int, bytes], tuple[int, bytes], tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", daemon.smtp_port, timeout=10) as client:
            client.ehlo()
            client.mail("alice@customer.test")
            return (
                client.rcpt("someone@elsewhere.test"),
                client.rcpt("support+r-1000-abcdefghijklmnop@example.test"),
                client.rcpt("SUPPORT@Example.Test"),
            )

    stranger, plus, upper = await asyncio.to_thread(session)
    assert stranger[0] == 550 and stranger[1].startswith(b"5.1.1")
    assert plus[0] == 250 and upper[0] == 250


async def test_only_stranger_recipients_is_refused_whole(daemon) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await send(daemon.smtp_port, mail(), ["relay@elsewhere.test"])
    assert await spool_rows(daemon) == []


async def test_552_above_the_size_limit(make_config: Callable[..., Config]) -> None:
    config = make_config(smtp="max_message_size = 2048")
    big = mail(body="x" * 70 + "\n") * 1 + b"\r\n".join([b"y" * 70] * 100)
    async with started(config) as running:
        with pytest.raises(smtplib.SMTPException) as caught:
            await send(running.smtp_port, big)
        # smtplib announces SIZE= when the server advertises it: refused at MAIL FROM or at DATA.
        code = getattr(caught.value, "smtp_code", None)
        assert code == 552
        assert await spool_rows(running) == []

        def without_size() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
                client.ehlo()
                client.mail("alice@customer.test")  # no SIZE= parameter
                client.rcpt(SUPPORT)
                return client.data(big)

        code, text = await asyncio.to_thread(without_size)
        assert (code, text.decode()) == (552, f"{replies.S552_TOO_BIG.status} {replies.S552_TOO_BIG.text}")
        assert await spool_rows(running) == []


async def test_451_when_the_store_cannot_write(make_config: Callable[..., Config]) -> None:
    config = make_config(storage="busy_timeout = 0.2")
    async with started(config) as running:
        # Another process holds the write lock: the commit cannot happen, so the answer is 451.
        blocker = sqlite3.connect(str(config.database_path), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(smtplib.SMTPDataError) as caught:
                await send(running.smtp_port, mail(message_id="<blocked@customer.test>"))
            assert caught.value.smtp_code == 451
            assert caught.value.smtp_error.startswith(b"4.3.0")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        # Once the store is back, the retried delivery is accepted and stored once.
        assert await send(running.smtp_port, mail(message_id="<blocked@customer.test>")) == {}
        assert len(await spool_rows(running)) == 1


async def test_same_mail_to_two_support_addresses_is_one_message(daemon) -> None:
    raw = mail(to=f"{SUPPORT}, {BILLING}", message_id="<both@customer.test>")
    await send(daemon.smtp_port, raw, [SUPPORT, BILLING])
    # A second transaction with the same bytes (an MTA that splits recipients) adds no row.
    await send(daemon.smtp_port, raw, [BILLING])
    rows = await spool_rows(daemon)
    assert len(rows) == 1
    await settle(daemon)
    async with daemon.store.read() as tx:
        assert await tx.value("SELECT COUNT(*) FROM messages") == 1


async def test_lmtp_answers_once_per_recipient(make_config: Callable[..., Config]) -> None:
    config = make_config(smtp="lmtp = true")
    raw = mail(message_id="<lmtp@customer.test>")
    async with started(config) as running:

        def session() -> list[tuple[int, bytes]]:
            client = smtplib.LMTP("127.0.0.1", running.smtp_port, timeout=10)
            try:
                client.ehlo_or_helo_if_needed()
                client.mail("alice@customer.test")
                assert client.rcpt(SUPPORT)[0] == 250
                assert client.rcpt("nobody@elsewhere.test")[0] == 550
                assert client.rcpt(BILLING)[0] == 250
                code, _ = client.docmd("DATA")
                assert code == 354
                client.send(raw + b".\r\n")
                return [client.getreply(), client.getreply()]
            finally:
                client.close()

        per_recipient = await asyncio.to_thread(session)
        assert [code for code, _ in per_recipient] == [250, 250]
        rows = await spool_rows(running)
        assert len(rows) == 1 and rows[0]["source"] == "lmtp"


async def test_lmtp_size_refusal_is_per_recipient(make_config: Callable[..., Config]) -> None:
    config = make_config(smtp="lmtp = true\nmax_message_size = 1024")
    big = mail(body="z" * 60 + "\n") + b"\r\n".join([b"q" * 60] * 60)
    async with started(config) as running:

        def session() -> list[tuple[int, bytes]]:
            client = smtplib.LMTP("127.0.0.1", running.smtp_port, timeout=10)
            try:
                client.ehlo_or_helo_if_needed()
                client.mail("alice@customer.test")
                client.rcpt(SUPPORT)
                client.rcpt(BILLING)
                client.docmd("DATA")
                client.send(big + b"\r\n.\r\n")
                return [client.getreply(), client.getreply()]
            finally:
                client.close()

        assert [code for code, _ in await asyncio.to_thread(session)] == [552, 552]
        assert await spool_rows(running) == []


# --- the chunked DATA reader answers exactly as aiosmtpd's line loop (issue 2) ----------------
# Oracle: stock aiosmtpd on one port, mailgate's reader on another, the same bytes sent to both
# in the same fragments; the replies and the content each handed over must be identical.


class _Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.contents.append(envelope.original_content)  # type: ignore[attr-defined]
        return "250 OK"


class _BulkOnly(smtp_data.BulkData, SMTP):  # the reader without mailgate's 552 wording
    pass


async def _transcript(protocol: type[SMTP], fragments: list[bytes], size_limit: int | None) -> tuple[bytes, list[bytes]]:
    handler = _Recorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(handler, data_size_limit=size_limit, decode_data=False, hostname="mx.test", loop=loop),
        host="127.0.0.1", port=0,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readuntil(b"\r\n")  # greeting
        for command in (b"EHLO client.test", b"MAIL FROM:<a@customer.test>", b"RCPT TO:<s@example.test>", b"DATA"):
            writer.write(command + b"\r\n")
            while (await reader.readuntil(b"\r\n"))[3:4] != b" ":
                pass
        for fragment in fragments:  # separate writes with a pause, so the reads split where the test says
            writer.write(fragment)
            await writer.drain()
            await asyncio.sleep(0.005)
        writer.write(b"QUIT\r\n")
        replies_seen = await asyncio.wait_for(reader.read(), timeout=30)  # until the server closes
        writer.close()
        return replies_seen, handler.contents
    finally:
        server.close()
        await server.wait_closed()


def _lines(count: int, width: int = 70, char: bytes = b"y") -> bytes:
    return (char * width + b"\r\n") * count


NEXT = b"MAIL FROM:<b@customer.test>\r\nRCPT TO:<s@example.test>\r\nDATA\r\nsecond\r\n.\r\n"
DATA_CASES: dict[str, tuple[list[bytes], int | None]] = {
    "plain": ([b"Subject: a\r\n\r\nhello\r\n.\r\n"], None),
    "empty": ([b".\r\n"], None),
    "dot stuffing (RFC 5321 4.5.2)": ([b".leading\r\n..two\r\nmid.dle\r\nend.\r\n...\r\n. \r\n.\r\n"], None),
    "bare LF is data": ([b"a\nb\n.\nc\r\nx\n.\r\ny\r\n.\r\n"], None),
    "bare CR is data": ([b"a\r.\r\nb\r\n.\r\n"], None),
    "dot split from its CRLF": ([b"a\r\n", b".", b"\r", b"\n"], None),
    "CRLF split before the dot": ([b"a\r", b"\n.\r\n"], None),
    "CR of the end split": ([b"a\r\n.\r", b"\n"], None),
    "line of 999 + CRLF passes": ([b"k" * 999 + b"\r\n.\r\n"], None),
    "line of 1000 + CRLF is 500": ([b"k" * 1000 + b"\r\n.\r\n"], None),
    "line of 1500 is 500": ([b"k" * 1500 + b"\r\n.\r\n"], None),
    "long line split over writes": ([b"k" * 700, b"k" * 700, b"\r\n.\r\n"], None),
    "over the size limit is 552": ([_lines(40, 100) + b".\r\n"], 3000),
    "size first, long line later: 552": ([_lines(40, 100) + b"k" * 1500 + b"\r\n.\r\n"], 3000),
    "long line first, then size: 500": ([b"k" * 1500 + b"\r\n" + _lines(40, 100) + b".\r\n"], 3000),
    "crossing line of 1000 is 552": ([_lines(25, 78) + b"k" * 1000 + b"\r\n.\r\n"], 2500),
    "crossing line of 1500 is 500": ([_lines(25, 78) + b"k" * 1500 + b"\r\n.\r\n"], 2500),
    "exactly the size limit passes": ([_lines(10, 98) + b".\r\n"], 1000),
    "one byte over is 552": ([_lines(10, 98) + b"\r\n.\r\n"], 1000),
    "big, no line ending in a dot": ([_lines(6000)] + [b".\r\n"], None),
    "big with dots, split oddly": ([_lines(3000, 69, b"."), b"..x\r", b"\n" + _lines(3000, 3) + b".", b"\r\n"], None),
    "huge line is 500": ([b"z" * 300_000 + b"\r\n.\r\n"], None),
    "pipelined next mail after the dot": ([b"first\r\n.\r\n" + NEXT], None),
    "pipelined next mail after a refusal": ([b"k" * 1500 + b"\r\n.\r\n" + NEXT], None),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
async def test_data_reader_answers_as_aiosmtpd(case: str) -> None:
    fragments, size_limit = DATA_CASES[case]
    stock = await _transcript(SMTP, fragments, size_limit)
    ours = await _transcript(_BulkOnly, fragments, size_limit)
    assert ours == stock
    assert stock[0].startswith((b"250", b"500", b"552"))  # the oracle saw the data end, not a timeout


async def test_data_reader_semantics_through_the_daemon(make_config: Callable[..., Config]) -> None:
    """The same rules end to end: unstuffed bytes in the spool, 500 for a long line, 552 per LMTP recipient."""
    config = make_config(smtp="lmtp = true\nmax_message_size = 4096")
    body = b"From: a@customer.test\r\nSubject: dots\r\n\r\n..x\r\nbare\nlf\r\n...\r\n"
    async with started(config) as running:

        def session() -> list[tuple[int, bytes]]:
            client = smtplib.LMTP("127.0.0.1", running.smtp_port, timeout=10)
            try:
                client.ehlo_or_helo_if_needed()
                out = []
                # aiosmtpd answers a long line once, not per recipient (only 552 is made per recipient).
                for data, answers in ((body, 2), (b"k" * 1200 + b"\r\n", 1), (_lines(80), 2)):
                    client.mail("alice@customer.test")
                    client.rcpt(SUPPORT)
                    client.rcpt(BILLING)
                    client.docmd("DATA")
                    client.send(data + b".\r\n")  # sent as is: smtplib.send does no stuffing
                    out += [client.getreply() for _ in range(answers)]
                return out
            finally:
                client.close()

        codes = [code for code, _ in await asyncio.to_thread(session)]
        assert codes == [250, 250, 500, 552, 552]
        rows = await spool_rows(running)
        assert [bytes(r["raw"]) for r in rows] == [body.replace(b"\r\n..", b"\r\n.")]


ADDRESS_ARGS = [
    "", "<>", "<a@b.test>", "a@b.test", " <a@b.test> SIZE=100", "<a@b.test> BODY=8BITMIME", "<@relay:a@b.test>",
    '<"quoted local"@b.test>', "<a@[127.0.0.1]>", "<a@b.test", "not an address", "<" + "l" * 65 + "@b.test>",
    "<" + "l" * 64 + "@b.test>", "<a..b@b.test>", "<üser@b.test>",
]


@pytest.mark.parametrize("arg", ADDRESS_ARGS)
@pytest.mark.parametrize("local_part_limit", [0, 64])
async def test_remembered_address_parsing_is_aiosmtpds(arg: str, local_part_limit: int) -> None:
    handler = _Recorder()
    stock = SMTP(handler, loop=asyncio.get_running_loop())
    ours = smtp_source.MailgateSMTP(handler, loop=asyncio.get_running_loop())
    stock.local_part_limit = ours.local_part_limit = local_part_limit
    for _ in range(2):  # the second answer comes from the memory
        assert ours._getaddr(arg) == stock._getaddr(arg)
