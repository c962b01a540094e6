"""Agents see the customer's files: notifications attach them (up to a cap), list the rest, [files] fetches them."""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

import pytest

from mailgate import config as config_mod
from mailgate.config import Config
from mailgate.daemon import Running, started

from .conftest import BILLING, SUPPORT, send, settle, write_config
from .sink import AGENTS, Received, Sink, relay_section, wait_mail

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

CUSTOMER = "alice@customer.test"
AINO = "aino@agents.test"
CECILIA = "cecilia@agents.test"
EXTRA = """
[[agents]]
id = "cecilia"
name = "Cecilia Agent"
addresses = ["cecilia@agents.test"]
queues = ["support"]
"""
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
SIGNATURE_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"logo" * 50
JPEG = b"\xff\xd8\xff\xe0" + b"photo" * 400 + b"\xff\xd9"
ZIP = b"PK\x03\x04" + b"zipped" * 1200


@pytest.fixture
def filesconfig(tmp_path: Path, sink: Sink) -> Callable[..., Config]:
    def make(**outbox: object) -> Config:
        extra = relay_section(sink.port, send_delay=0.3, **outbox) + AGENTS + EXTRA
        return config_mod.load(write_config(tmp_path, extra, gateway='authserv_id = "mx.example.test"',
                                            smtp='trusted_peers = ["127.0.0.1"]'))

    return make


def outlook_mail(
    subject: str, files: tuple[tuple[str, str, bytes], ...], *, to: str = SUPPORT, message_id: str = "<c1@customer.test>",
    in_reply_to: str | None = None, body: str = "Hello,\n\nthe invoice is attached.\n",
) -> bytes:
    """As Outlook writes it: related(alternative(text, html), the inline signature logo), then the files."""
    def b64(data: bytes) -> str:
        return "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 76))

    def name_params(name: str) -> str:
        return f'filename="{name}"' if name.isascii() else f"filename*=utf-8''{quote(name)}"

    head = [f"From: Alice Customer <{CUSTOMER}>", f"To: {to}", f"Subject: {subject}",
            "Date: Mon, 23 Nov 2026 10:00:00 +0000", f"Message-ID: {message_id}", f"Thread-Topic: {subject}",
            "Content-Language: en-US", "X-MS-Has-Attach: yes", "X-MS-TNEF-Correlator:"]
    if in_reply_to:
        head += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    html = ("<html><body><p>" + body.replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p><p>Alice Customer<br>"
            '<img width="120" height="40" src="cid:image001.png@01DB3D7C.5A1E2F30" alt="Customer Ltd"></p></body></html>')
    parts = [
        "--_004_", 'Content-Type: multipart/related; boundary="_003_"; type="multipart/alternative"', "",
        "--_003_", 'Content-Type: multipart/alternative; boundary="_000_"', "",
        "--_000_", 'Content-Type: text/plain; charset="us-ascii"', "Content-Transfer-Encoding: 7bit", "",
        body + "\nAlice Customer\nCustomer Ltd\n",
        "--_000_", 'Content-Type: text/html; charset="us-ascii"', "Content-Transfer-Encoding: 7bit", "", html,
        "--_000_--", "",
        "--_003_", 'Content-Type: image/png; name="image001.png"', "Content-Description: image001.png",
        f'Content-Disposition: inline; filename="image001.png"; size={len(SIGNATURE_PNG)};',
        "\tcreation-date=\"Mon, 23 Nov 2026 10:00:00 GMT\"", "Content-ID: <image001.png@01DB3D7C.5A1E2F30>",
        "Content-Transfer-Encoding: base64", "", b64(SIGNATURE_PNG), "", "--_003_--", "",
    ]
    for name, ctype, data in files:
        parts += ["--_004_", f'Content-Type: {ctype}; name="{name if name.isascii() else "attachment"}"',
                  f"Content-Disposition: attachment; {name_params(name)}; size={len(data)}",
                  "Content-Transfer-Encoding: base64", "", b64(data), ""]
    parts.append("--_004_--")
    text = "\n".join([*head, "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="_004_"', "", *parts, ""])
    return text.replace("\n", "\r\n").encode("ascii")


def agent_reply(notice: Received, text: str, *, subject: str | None = None) -> tuple[bytes, str]:
    """A Thunderbird reply to a notification: (wire bytes, envelope recipient = the Reply-To)."""
    target = notice.msg["Reply-To"].addresses[0].addr_spec
    msg = EmailMessage()
    msg["From"] = f"Aino Agent <{AINO}>"
    msg["To"] = target
    msg["Subject"] = subject if subject is not None else f"Re: {notice.header('Subject')}"
    msg["Date"] = "Mon, 23 Nov 2026 10:05:00 +0000"
    msg["Message-ID"] = f"<tb.{abs(hash((text, subject)))}@agents.test>"
    msg["In-Reply-To"] = notice.header("Message-ID")
    msg["References"] = notice.header("Message-ID")
    msg["User-Agent"] = "Mozilla Thunderbird"
    quoted = "\n".join(f"> {line}" if line else ">" for line in notice.text().splitlines())
    msg.set_content(f"{text}\n\nOn 23.11.2026 10:00, Support wrote:\n{quoted}\n")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), target


def attachments(received: Received) -> list[tuple[str, str, bytes]]:
    return [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in received.msg.iter_attachments()]


async def rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list:
    async with running.store.read() as tx:
        return await tx.all(sql, params)


async def customer_sends(running: Running, raw: bytes, to: str = SUPPORT) -> None:
    await send(running.smtp_port, raw, [to], sender=CUSTOMER)
    await settle(running)


async def agent_sends(running: Running, raw: bytes, rcpt: str) -> None:
    await send(running.smtp_port, raw, [rcpt], sender=AINO)
    await settle(running)


async def test_notification_attaches_the_customers_pdf_but_not_the_signature_image(
    sink: Sink, filesconfig: Callable[..., Config]
) -> None:
    async with started(filesconfig()) as running:
        # A name with a right-to-left override: "Invoice‮fdp.exe" would read as "Invoiceexe.pdf".
        raw = outlook_mail("Invoice wrong", (("Invoice 2026-11.pdf", "application/pdf", PDF),
                                             ("Invoice\u202efdp.exe", "application/octet-stream", b"MZ not a pdf")))
        await customer_sends(running, raw)
        notice = await wait_mail(sink, AINO, "New request [#1000]")
        files = attachments(notice)
        assert [f[0] for f in files] == ["Invoice 2026-11.pdf", "Invoicefdp.exe"]
        assert files[0][1:] == ("application/pdf", PDF)
        assert b"logo" not in notice.raw.replace(b"\r\n", b"")  # the signature image stays out
        for shown in (notice.text(), notice.html()):
            assert "1. Invoice 2026-11.pdf (application/pdf, 2 KB)" in shown
            assert "2. Invoicefdp.exe (application/octet-stream, 12 B)" in shown
            assert "image001.png" not in shown and "\u202e" not in shown
        # Cecilia, in the same queue, gets the same files; the customer's acknowledgement carries none.
        assert [f[0] for f in attachments(await wait_mail(sink, CECILIA, "New request [#1000]"))] == [
            "Invoice 2026-11.pdf", "Invoicefdp.exe"]
        ack = await wait_mail(sink, CUSTOMER, "[#1000]")
        assert attachments(ack) == []
        # The customer writes again with another file: the reply notice carries it, numbered in the ticket.
        again = outlook_mail("RE: [#1000] Invoice wrong", (("scan.jpg", "image/jpeg", JPEG),), message_id="<c2@customer.test>",
                             in_reply_to=ack.header("Message-ID"))
        await customer_sends(running, again)
        reply_notice = await wait_mail(sink, AINO, "Customer replied [#1000]")
        assert [(f[0], f[2]) for f in attachments(reply_notice)] == [("scan.jpg", JPEG)]
        assert "3. scan.jpg (image/jpeg, 2 KB) - attached" in reply_notice.text()


async def test_files_past_the_cap_are_listed_with_name_type_and_size_in_the_agents_language(
    sink: Sink, filesconfig: Callable[..., Config]
) -> None:
    async with started(filesconfig(notify_attachments_max=4000)) as running:
        files = (("faktura.pdf", "application/pdf", PDF), ("zdjęcie.jpg", "image/jpeg", JPEG),
                 ("logs.zip", "application/zip", ZIP), ("notes.txt", "text/plain", b"small note"))
        await customer_sends(running, outlook_mail("Faktura", files, to=BILLING), to=BILLING)
        notice = await wait_mail(sink, "bartek@agents.test", "Nowe zgłoszenie [#1000]")  # billing speaks Polish
        # 2 KB + 2 KB would pass 4000 bytes: the photo waits, the small note still fits.
        assert [f[0] for f in attachments(notice)] == ["faktura.pdf", "notes.txt"]
        for shown in (notice.text(), notice.html()):
            assert "Załączniki (4):" in shown
            assert "1. faktura.pdf (application/pdf, 2 KB) - w załączniku" in shown
            assert "2. zdjęcie.jpg (image/jpeg, 2 KB) - nie załączono: odpowiedz [files:2], aby go otrzymać" in shown
            assert "3. logs.zip (application/zip, 7 KB) - nie załączono: większy niż limit wiadomości 4 KB" in shown
            assert "4. notes.txt (text/plain, 10 B) - w załączniku" in shown
        outbox = await rows(running, "SELECT kind, rcpt_to FROM outbox WHERE kind = 'notify'")
        assert [r["rcpt_to"] for r in outbox] == ["bartek@agents.test"]


async def test_files_tag_from_the_agent_mails_the_files_and_what_does_not_fit_is_listed(
    sink: Sink, filesconfig: Callable[..., Config]
) -> None:
    async with started(filesconfig(notify_attachments_max=4000)) as running:
        files = (("invoice.pdf", "application/pdf", PDF), ("photo.jpg", "image/jpeg", JPEG))
        await customer_sends(running, outlook_mail("Broken printer", files))
        notice = await wait_mail(sink, AINO, "New request [#1000]")
        assert [f[0] for f in attachments(notice)] == ["invoice.pdf"]
        assert "[files:2]" in notice.text()
        # The agent asks for file 2 in the subject, as the listing says.
        raw, rcpt = agent_reply(notice, "", subject=f"Re: [files:2] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        got = await wait_mail(sink, AINO, "Files of [#1000]")
        assert attachments(got) == [("photo.jpg", "image/jpeg", JPEG)]
        assert "2. photo.jpg (image/jpeg, 2 KB) - attached" in got.text()
        done = await wait_mail(sink, AINO, "Done [#1000]")
        assert "[files:2] 1 of 1 file mailed to you" in done.text()
        # "#files" as a body line (all files): the first fits, the second is listed, fetchable alone.
        raw, rcpt = agent_reply(notice, "#files")
        await agent_sends(running, raw, rcpt)
        every = await wait_mail(sink, AINO, "Files of [#1000]", count=2)
        assert [f[0] for f in attachments(every)] == ["invoice.pdf"]
        assert "2. photo.jpg (image/jpeg, 2 KB) - not attached: answer [files:2] to get it" in every.text()
        # A number the ticket does not have: refused, with the reason, and nothing mailed.
        raw, rcpt = agent_reply(notice, "", subject=f"Re: [files:7] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        refused = await wait_mail(sink, AINO, "Not done [#1000]")
        assert "[files:7]: no file 7 (the ticket has 2)" in refused.text()
        assert len([r for r in sink.to(AINO) if "Files of" in r.header("Subject")]) == 2
        # Nothing of this reaches the customer: only the acknowledgement.
        assert len(sink.to(CUSTOMER)) == 1 and attachments(sink.to(CUSTOMER)[0]) == []
        events = await rows(running, "SELECT actor, data FROM events WHERE kind = 'ticket.files_sent'")
        assert [(e["actor"], json.loads(e["data"])["asked"]) for e in events] == [("agent:aino", "2"), ("agent:aino", "all")]


async def test_files_tag_from_a_customer_or_a_forged_agent_gets_nothing(
    sink: Sink, filesconfig: Callable[..., Config]
) -> None:
    async with started(filesconfig()) as running:
        await customer_sends(running, outlook_mail("[files] Contract", (("contract.pdf", "application/pdf", PDF),)))
        notice = await wait_mail(sink, AINO, "New request [#1000]")
        # Her tag is shown neutralised, so an agent pressing Reply does not run it either.
        assert "(files) Contract" in notice.header("Subject")
        ack = await wait_mail(sink, CUSTOMER, "[#1000]")
        # She writes again, with the tag in her subject and as a body line.
        msg = outlook_mail("RE: [#1000] [files] [files:1] Contract", (), message_id="<c2@customer.test>",
                           in_reply_to=ack.header("Message-ID"), body="#files\n#files 1\nPlease send me the files.\n")
        await customer_sends(running, msg)
        await wait_mail(sink, AINO, "Customer replied [#1000]")
        # Someone writing in Aino's name without her reply address or a trusted signature.
        forged = EmailMessage()
        forged["From"] = f"Aino Agent <{AINO}>"
        forged["To"] = SUPPORT
        forged["Subject"] = "[#1000] [files]"
        forged["Message-ID"] = "<forged@elsewhere.test>"
        forged.set_content("#files\n")
        await send(running.smtp_port, forged.as_bytes().replace(b"\n", b"\r\n"), [SUPPORT], sender=AINO)
        await settle(running)
        await wait_mail(sink, AINO, "Not accepted as yours")
        assert not [r for r in sink.received if "Files of" in r.header("Subject")]
        assert await rows(running, "SELECT 1 FROM events WHERE kind = 'ticket.files_sent'") == []
        for received in sink.to(CUSTOMER):
            assert attachments(received) == [] and b"%PDF" not in received.raw


async def test_assignment_notice_carries_the_tickets_files(sink: Sink, filesconfig: Callable[..., Config]) -> None:
    async with started(filesconfig()) as running:
        await customer_sends(running, outlook_mail("Warranty", (("receipt.pdf", "application/pdf", PDF),)))
        notice = await wait_mail(sink, AINO, "New request [#1000]")
        raw, rcpt = agent_reply(notice, "", subject=f"Re: [assign:cecilia] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        assigned = await wait_mail(sink, CECILIA, "Assigned to you [#1000]")
        assert attachments(assigned) == [("receipt.pdf", "application/pdf", PDF)]
        assert "1. receipt.pdf (application/pdf, 2 KB) - attached" in assigned.text()
        assert "image001.png" not in assigned.text()


async def test_a_forwarded_mail_and_a_bounce_report_on_the_ticket_reach_the_agent_as_files(
    sink: Sink, filesconfig: Callable[..., Config]
) -> None:
    """Outlook's "Forward as attachment" sends message/rfc822; a bounce of our mail leaves a delivery-status part."""
    inner = ("From: Shop <orders@shop.test>\r\nTo: alice@customer.test\r\nSubject: Your order\r\n"
             "Message-ID: <order-1@shop.test>\r\n\r\nOrder 1234 confirmed.\r\n")
    raw = outlook_mail("Order never came", ()).decode("ascii").replace(
        "--_004_--\r\n", "--_004_\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
        + inner + "\r\n--_004_--\r\n")
    async with started(filesconfig()) as running:
        await customer_sends(running, raw.encode())
        notice = await wait_mail(sink, AINO, "New request [#1000]")
        [(name, ctype, data)] = attachments(notice)
        shown = name.removesuffix(".eml")  # the sender gave no name: made up from its row, .eml when sent
        assert (name, ctype) == (f"{shown}.eml", "application/octet-stream") and b"Order 1234 confirmed." in data
        assert f"1. {shown} (message/rfc822," in notice.text()
        # The acknowledgement bounces back to its VERP address (RFC 3464 report, as Postfix writes it).
        ack = await wait_mail(sink, CUSTOMER, "[#1000]")
        dsn = (f"From: MAILER-DAEMON@mx.customer.test\r\nTo: {ack.mail_from}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
               "Message-ID: <dsn1@mx.customer.test>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
               'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
               "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
               "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\n"
               f"Final-Recipient: rfc822; {CUSTOMER}\r\nAction: failed\r\nStatus: 5.2.2\r\n"
               "Diagnostic-Code: smtp; 552 5.2.2 mailbox full\r\n"
               f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ack.header('Message-ID')}\r\n--B--\r\n")
        await send(running.smtp_port, dsn.encode(), [ack.mail_from], sender="")
        await settle(running)
        raw, rcpt = agent_reply(notice, "#files")
        await agent_sends(running, raw, rcpt)
        got = await wait_mail(sink, AINO, "Files of [#1000]")
        names = [name for name, _, _ in attachments(got)]
        assert names[0] == f"{shown}.eml" and len(names) >= 2
        assert any(b"5.2.2" in data for _, _, data in attachments(got))
        assert f"1. {shown} (message/rfc822," in got.text() and "(message/delivery-status," in got.text()


async def test_files_tag_values_and_a_customers_tag_is_neutralised() -> None:
    from datetime import UTC, datetime

    from mailgate import commands

    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    for written, value in (("[files]", ""), ("[Files: all]", ""), ("[files:2]", "2"), ("[files:#2, 5 2]", "2, 5")):
        [command] = commands.parse(f"Re: {written} [#1000] x", "", now=now).commands
        assert (command.name, command.value) == ("files", value)
    [command] = commands.parse("Re: [#1000] x", "#files 3\nThanks", now=now).commands
    assert (command.name, command.value) == ("files", "3")
    assert [str(e) for e in commands.parse("[files:invoice.pdf]", "", now=now).errors] == [
        "[files:invoice.pdf]: write the numbers of the files as listed, e.g. [files:2] or [files:1, 3]"]
    assert commands.neutralise("[files] [files:1] Contract") == "(files) (files:1) Contract"


async def test_a_flood_of_tiny_files_is_bounded_in_the_notification(sink: Sink, filesconfig: Callable[..., Config]) -> None:
    files = tuple((f"part{n:03}.txt", "text/plain", f"file {n}\n".encode()) for n in range(1, 251))
    async with started(filesconfig()) as running:
        await customer_sends(running, outlook_mail("Many files", files))
        notice = await wait_mail(sink, AINO, "New request [#1000]")
        assert [f[0] for f in attachments(notice)] == [f"part{n:03}.txt" for n in range(1, 101)]
        text = notice.text()
        assert "Files (250):" in text and "101. part101.txt (text/plain, 9 B) - not attached: answer [files:101]" in text
        assert "200. part200.txt" in text and "201. part201.txt" not in text
        assert "… and 50 more files, not listed here" in text
        # Any of them, by number, as the listing says.
        raw, rcpt = agent_reply(notice, "", subject=f"Re: [files:250, 101] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        got = await wait_mail(sink, AINO, "Files of [#1000]")
        assert [(f[0], f[2]) for f in attachments(got)] == [("part250.txt", b"file 250\n"), ("part101.txt", b"file 101\n")]
