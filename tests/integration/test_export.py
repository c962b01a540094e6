"""`tickets export` and [print]: a thread built by real mail, read back as a page, an mbox and .eml files."""

from __future__ import annotations

import mailbox
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate import tokens
from mailgate.daemon import Running

from .conftest import SECRET, SUPPORT, MakeDaemon, cli_ok, mail, run_cli, send, settle, wait_until
from .sink import AGENTS, Received, Sink, wait_mail
from .test_agent_mail import agent_sends, reply

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

AINO = "aino@agents.test"
CUSTOMER = "alice@customer.test"
# A customer's words a printout must show as text: markup, an entity, and a line mbox would take for a separator.
HOSTILE = "Hello,\n\n<script>alert(1)</script> & <b>bold</b>\nFrom the office: it broke.\n\nAlice\n"


async def thread(running: Running, sink: Sink) -> Received:
    """Alice writes; Aino answers her; Alice writes again; Aino adds a note. Returns Aino's first notification."""
    await send(running.smtp_port, mail(sender=f"Alice <{CUSTOMER}>", subject="Invoice <wrong> & late",
                                       message_id="<a1@customer.test>", body=HOSTILE), [SUPPORT], sender=CUSTOMER)
    await settle(running)
    notice = await wait_mail(sink, AINO, "Invoice")
    raw, rcpt = reply(notice, "We will send a corrected invoice.")
    await agent_sends(running, raw, rcpt)
    await sink.wait_for(lambda got: any("corrected invoice" in r.text() for r in got if CUSTOMER in r.rcpt_tos))
    answer = next(r for r in sink.to(CUSTOMER) if "corrected invoice" in r.text())
    # The relay has the answer a moment before the sender records it as the ticket's message; Alice
    # writes back once it is recorded, as a person reading it always does.
    await wait_until(lambda: _recorded(running, answer.header("Message-ID")), what="the answer recorded as sent")
    await send(running.smtp_port, mail(sender=f"Alice <{CUSTOMER}>", subject="Re: " + answer.header("Subject"),
                                       message_id="<a2@customer.test>", in_reply_to=answer.header("Message-ID"),
                                       references=answer.header("Message-ID"), body="Thanks!\n"), [SUPPORT],
               sender=CUSTOMER)
    await settle(running)
    note_rcpt = tokens.reply_address(SECRET.encode(), SUPPORT, tokens.Token("n", 1000, "aino"))
    await agent_sends(running, mail(sender=f"Aino Agent <{AINO}>", to=note_rcpt, subject="note",
                                    body="INTERNAL: customer is a VIP.", message_id="<n1@agents.test>"), note_rcpt)
    return notice


async def _recorded(running: Running, message_id: str) -> bool:
    async with running.store.read() as tx:
        return bool(await tx.value("SELECT count(*) FROM messages WHERE message_id = ? AND direction = 'out'",
                                   (message_id.strip("<>"),)))


async def test_html_page_is_escaped_and_shows_notes_only_when_asked(make_daemon: MakeDaemon, sink: Sink,
                                                                     tmp_path: Path) -> None:
    running = await make_daemon(AGENTS, send_delay=0)
    await thread(running, sink)
    shown = (await cli_ok(running, "tickets", "show", "1000", "--json")).json
    directions = [m["direction"] for m in shown["messages"]]
    page = (await cli_ok(running, "tickets", "export", "1000")).stdout
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in page
    assert "Invoice &lt;wrong&gt; &amp; late" in page and "@media print" in page
    assert "INTERNAL: customer is a VIP." not in page and "Internal note" not in page
    assert page.count('class="message"') == directions.count("in") + directions.count("out")
    with_notes = (await cli_ok(running, "tickets", "export", "1000", "--notes")).stdout
    assert "INTERNAL: customer is a VIP." in with_notes and "Internal note" in with_notes
    assert "http" not in with_notes.replace("http-equiv", "")  # nothing loaded from anywhere
    # Numbers are the positions `tickets show` lists; an internal one needs --notes.
    note_number = directions.index("note") + 1
    refused = await run_cli(running, "tickets", "export", "1000", "--messages", str(note_number), "--json")
    assert refused.exit_code == 1 and "internal" in refused.json["error"]
    target = tmp_path / "out.html"
    written = await cli_ok(running, "tickets", "export", "1000", "--messages", f"1,{note_number}", "--notes",
                           "--output", str(target), "--json")
    assert written.json["messages"] == [1, note_number] and target.read_text().count("<pre") == 2


async def test_mbox_keeps_the_thread_and_eml_parses(make_daemon: MakeDaemon, sink: Sink, tmp_path: Path) -> None:
    running = await make_daemon(AGENTS, send_delay=0)
    await thread(running, sink)
    target = tmp_path / "thread.mbox"
    await cli_ok(running, "tickets", "export", "1000", "--format", "mbox", "--output", str(target))
    box = mailbox.mbox(target, create=False)
    found = [message_from_bytes(box.get_bytes(key), policy=policy.default) for key in box.keys()]
    # Alice's mail, the acknowledgement, Aino's answer, Alice's second mail, in the order mailgate had them.
    ids = [str(m["Message-ID"]) for m in found]
    answer = next(m for m in found if "corrected invoice" in m.get_body(("plain",)).get_content())
    second = found[ids.index("<a2@customer.test>")]
    assert ids[0] == "<a1@customer.test>" and ids.index(str(answer["Message-ID"])) < ids.index("<a2@customer.test>")
    assert str(answer["In-Reply-To"]) == "<a1@customer.test>" and "<a1@customer.test>" in str(answer["References"])
    assert str(second["In-Reply-To"]) == str(answer["Message-ID"])
    first = found[0].get_body(("plain",)).get_content()
    assert ">From the office" in first or "From the office" in first  # mboxrd-escaped, not a new message
    assert len(found) == 4 and not any("VIP" in m.as_string() for m in found)

    one = (await run_cli(running, "tickets", "export", "1000", "--format", "eml", "--messages", "1")).stdout
    assert message_from_bytes(one.encode(), policy=policy.default)["Message-ID"] == "<a1@customer.test>"
    digest_file = tmp_path / "digest.eml"
    await cli_ok(running, "tickets", "export", "1000", "--format", "eml", "--output", str(digest_file))
    digest = message_from_bytes(digest_file.read_bytes(), policy=policy.default)
    assert digest.get_content_type() == "multipart/digest"
    parts = [p.get_content() for p in digest.iter_parts()]
    assert [str(p["Message-ID"]) for p in parts] == ids


async def test_print_by_mail_attaches_the_page_and_notes_only_on_request(make_daemon: MakeDaemon, sink: Sink) -> None:
    running = await make_daemon(AGENTS, send_delay=0)
    notice = await thread(running, sink)
    raw, rcpt = reply(notice, "", subject="Re: [print] " + notice.header("Subject"))
    await agent_sends(running, raw, rcpt)
    printed = await wait_mail(sink, AINO, "Printout")
    page = _attached_page(printed.msg)
    assert "&lt;script&gt;" in page and "VIP" not in page
    await sink.wait_for(lambda got: any("[print] the printable page (4 messages) mailed to you" in r.text()
                                        for r in got if "Done" in r.header("Subject")))
    raw, rcpt = reply(notice, "", subject="Re: [print:notes] " + notice.header("Subject"))
    await agent_sends(running, raw, rcpt)
    with_notes = _attached_page((await wait_mail(sink, AINO, "Printout", count=2)).msg)
    assert "VIP" in with_notes and "Internal note" in with_notes
    assert not [r for r in sink.to(CUSTOMER) if "Printout" in r.header("Subject")]


def _attached_page(msg: EmailMessage) -> str:
    [page] = [p for p in msg.iter_attachments() if p.get_content_type() == "text/html"]
    assert page.get_filename() == "ticket-1000.html"
    return str(page.get_content())
