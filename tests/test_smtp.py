"""SMTP and LMTP receiving over real sessions on 127.0.0.1: 250 only after commit, 550, 552, 451."""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import sqlite3
from collections.abc import Callable

import pytest

from mailgate import replies
from mailgate.config import Config
from mailgate.daemon import started

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
