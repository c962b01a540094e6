"""A message deleted from its thread (`messages delete`) is found by no search and printed by no
[print] until retention purges it: real SMTP into a real daemon, the relay an aiosmtpd sink."""

from __future__ import annotations

import pytest

from .conftest import SUPPORT, MakeDaemon, cli_ok, mail, send, settle
from .sink import AGENTS, Sink, wait_mail
from .test_agent_mail import agent_sends, reply
from .test_export import AINO, CUSTOMER, _attached_page, thread
from .test_search import agent_search, numbers

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

# What a customer asks to have removed: a card number pasted by mistake, the usual reason to delete one mail.
PASTED = ("Sorry, I pasted our company card by mistake: 4111 1111 1111 1111, expiry 09/29,\n"
          "security code 737. Please remove it from the ticket.\n\nAlice\n")


async def test_a_deleted_message_is_neither_searched_nor_printed(make_daemon: MakeDaemon, sink: Sink) -> None:
    running = await make_daemon(AGENTS, send_delay=0)
    notice = await thread(running, sink)
    await send(running.smtp_port, mail(sender=f"Alice <{CUSTOMER}>", subject="Re: Invoice <wrong> & late",
                                       message_id="<a3@customer.test>", in_reply_to="<a2@customer.test>",
                                       references="<a1@customer.test> <a2@customer.test>", body=PASTED),
               [SUPPORT], sender=CUSTOMER)
    await settle(running)
    assert await numbers(running, "expiry") == [1000]
    shown = (await cli_ok(running, "tickets", "show", "1000", "--json")).json
    [pasted] = [m["id"] for m in shown["messages"] if m["message_id"] == "a3@customer.test"]
    await cli_ok(running, "messages", "delete", str(pasted), "--as", "aino")

    for words in ("expiry", "4111", "security code"):
        assert await numbers(running, words) == [], words
    assert await numbers(running, "Thanks") == [1000]  # the rest of the thread is still found

    await agent_search(running, "aino", "[search:expiry]", 1)
    found = await sink.wait_for(lambda got: any(AINO in r.rcpt_tos and r.header("Subject").startswith("Search:")
                                                for r in got))
    [answer] = [r for r in found if AINO in r.rcpt_tos and r.header("Subject").startswith("Search:")]
    assert "#1000" not in answer.text() and "4111" not in answer.text()

    raw, rcpt = reply(notice, "", subject="Re: [print] " + notice.header("Subject"))
    await agent_sends(running, raw, rcpt)
    page = _attached_page((await wait_mail(sink, AINO, "Printout")).msg)
    assert "4111" not in page and "expiry" not in page
    assert "Thanks!" in page and "corrected invoice" in page
    await sink.wait_for(lambda got: any("[print] the printable page (4 messages) mailed to you" in r.text()
                                        for r in got if "Done" in r.header("Subject")))
