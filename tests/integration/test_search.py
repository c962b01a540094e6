"""Full-text search: mail in by SMTP, found by `tickets search --json` and by an agent's [search:…] mail."""

from __future__ import annotations

from typing import Any

import pytest

from mailgate import tokens
from mailgate.daemon import Running

from ..conftest import AGENTS, SECRET, SUPPORT, mail
from .conftest import MakeDaemon, cli_ok, run_cli, send, settle
from .sink import Sink

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

BILLING = "billing@example.test"
AINO = "aino@agents.test"
BARTEK = "bartek@agents.test"

# Mails as customers write them: a French café's order, a Polish name with diacritics, a body that
# only mentions the thing, a Finnish question to billing, and a mail full of FTS5 operator words.
MAILS = [
    ("Zoë Müller <zoe@cafe.test>", SUPPORT, "Espresso machine leaks",
     "Bonjour,\n\nthe espresso machine in our café leaks water since Monday.\n\nZoë\n"),
    ("Łukasz Żółkiewski <lukasz@firma.test>", SUPPORT, "Toner",
     "Dzień dobry,\n\nwe need two toner cartridges for the HP LaserJet 4250, please.\n"),
    ("Alice Customer <alice@customer.test>", SUPPORT, "Question",
     "Hello,\n\nthe printer on the second floor jams on every page.\n\nAlice\n"),
    ("Matti Meikäläinen <matti@yritys.test>", BILLING, "Lasku 2026-114",
     "Hei,\n\nlaskussa on väärä summa, printer toner ei kuulu meille.\n"),
    ("Eve Hacker <eve@evil.test>", SUPPORT, 'NEAR(this AND "that") OR *',
     'Try -this AND that OR NOT "quoted * star\n'),
]


async def ingest(running: Running) -> None:
    for n, (sender, to, subject, body) in enumerate(MAILS):
        address = sender.split("<")[1].rstrip(">")
        await send(running.smtp_port, mail(sender=sender, to=to, subject=subject, body=body,
                                           message_id=f"<m{n}@customer.test>"), [to], sender=address)
    await settle(running)


async def search(running: Running, *args: str) -> dict[str, Any]:
    result = await cli_ok(running, "tickets", "search", *args, "--json")
    found: dict[str, Any] = result.json
    assert found["ok"] is True
    return found


async def numbers(running: Running, *args: str) -> list[int]:
    return [h["number"] for h in (await search(running, *args))["hits"]]


async def test_search_finds_subject_body_sender_and_note_by_cli(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS)
    await ingest(running)
    assert await numbers(running, "espresso") == [1000]  # subject and body
    assert await numbers(running, "jams") == [1002]  # body only
    assert await numbers(running, "Żółkiewski") == [1001]  # the sender's name
    assert await numbers(running, "matti@yritys.test") == [1003]  # the sender's address
    # Accents and their absence find each other both ways (unicode61 remove_diacritics 2).
    assert await numbers(running, "cafe") == [1000]
    assert await numbers(running, "meikalainen") == [1003]
    assert await numbers(running, "zołkiewski") == [1001]  # ż and ó fold; ł is a letter of its own in Unicode
    assert await numbers(running, "väärä") == await numbers(running, "vaara") == [1003]
    # Every word must match; a phrase keeps its order; print* is a prefix.
    assert await numbers(running, "toner", "cartridges") == [1001]
    assert await numbers(running, '"two toner cartridges"') == [1001]
    assert await numbers(running, '"cartridges toner"') == []
    assert sorted(await numbers(running, "print*")) == [1002, 1003]
    # A note is found too, and says it is one.
    await cli_ok(running, "tickets", "note", "1002", "Called Alice: it is the Kyocera, fuser unit worn out.",
                 "--as", "aino")
    found = await search(running, "fuser")
    [hit] = found["hits"]
    assert (hit["number"], hit["direction"], found["total"]) == (1002, "note", 1)
    assert "[fuser]" in hit["snippet"] and hit["subject"] == "Question"
    # The snippet marks the words of the message that matched.
    [hit] = (await search(running, "leaks"))["hits"]
    assert "[leaks]" in hit["snippet"] and hit["status"] == "new" and hit["queue"] == "support"


async def test_what_a_person_types_is_never_query_syntax(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS)
    await ingest(running)
    for words in ('NEAR(this', 'AND', 'OR NOT', '"quoted', 'this AND that', '^try', 'quoted:star', 'that")', 'star*"'):
        found = await search(running, words)
        assert [h["number"] for h in found["hits"]] == [1004], words  # the one mail that holds those words
    for words in ('"', '*', '-', '(', '")', '^'):
        # Nothing a word is made of: refused plainly, never an FTS5 syntax error.
        result = await run_cli(running, "tickets", "search", words, "--json")
        assert result.exit_code == 1 and "nothing to search for" in result.json["error"], words


async def test_filters_narrow_the_hits(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS)
    await ingest(running)
    assert sorted(await numbers(running, "toner")) == [1001, 1003]
    assert await numbers(running, "toner", "--queue", "billing") == [1003]
    assert await numbers(running, "toner queue:billing") == [1003]  # the mail command's words work here too
    assert await numbers(running, "toner", "--contact", "lukasz@firma.test") == [1001]
    assert await numbers(running, "toner", "--contact", "Meikäläinen") == [1003]
    await cli_ok(running, "tickets", "status", "1001", "pending", "--as", "aino")
    await cli_ok(running, "tickets", "tag", "1003", "+invoice", "--as", "bartek")
    await cli_ok(running, "tickets", "assign", "1003", "bartek", "--as", "bartek")
    assert await numbers(running, "toner", "--status", "pending") == [1001]
    assert await numbers(running, "toner", "--status", "new,open") == [1003]
    assert await numbers(running, "toner", "--tag", "invoice") == [1003]
    assert await numbers(running, "toner", "--assignee", "bartek") == [1003]
    assert await numbers(running, "toner", "--assignee", "none") == [1001]
    assert await numbers(running, "toner", "--direction", "sent") == []
    assert sorted(await numbers(running, "toner", "--direction", "received")) == [1001, 1003]
    assert await numbers(running, "toner", "--channel", "phone") == []
    # The mails were stored today; a range that ends yesterday holds none of them.
    assert sorted(await numbers(running, "toner", "--from", "2020-01-01")) == [1001, 1003]
    assert await numbers(running, "toner", "--to", "2020-01-01") == []
    # Pages: the total stays, the hits move on.
    first = await search(running, "toner", "--limit", "1")
    second = await search(running, "toner", "--limit", "1", "--offset", "1")
    assert first["total"] == second["total"] == 2 and first["hits"][0]["number"] != second["hits"][0]["number"]


@pytest.mark.parametrize(("args", "why"), [
    (("toner", "--queue", "nope"), "no queue 'nope' (queues: support, billing)"),
    (("toner", "--status", "done"), "unknown status 'done'"),
    (("toner", "--direction", "sideways"), "unknown direction 'sideways'"),
    (("toner", "--from", "yesterday"), "is not a day"),
    (("toner", "--from", "2026-02-01", "--to", "2026-01-01"), "from: is after to:"),
    (("toner", "--assignee", "me"), "needs to know who you are"),
    (("status:open",), "nothing to search for"),
])
async def test_wrong_filters_are_refused_with_the_reason(make_daemon: MakeDaemon, args: tuple[str, ...], why: str) -> None:
    running = await make_daemon(AGENTS)
    result = await run_cli(running, "tickets", "search", *args, "--json")
    assert result.exit_code == 1 and result.json["ok"] is False and why in result.json["error"]


async def test_erased_mail_is_no_longer_found(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS)
    await ingest(running)
    assert await numbers(running, "espresso") == [1000]
    await cli_ok(running, "contacts", "erase", "zoe@cafe.test", "--no-vacuum")
    for words in ("espresso", "Müller", "zoe@cafe.test", "cafe"):
        assert await numbers(running, words) == [], words
    assert await numbers(running, "cartridges") == [1001]  # the others' mail stays found


async def test_quarantined_tickets_only_when_asked(make_daemon: MakeDaemon) -> None:
    rules = '\n[[rules]]\nname = "suspicious"\nsubject = { keywords = ["lottery"] }\nquarantine = true\n'
    running = await make_daemon(AGENTS + rules)
    await send(running.smtp_port, mail(sender="x@spam.test", subject="You won the lottery", body="Claim it.\n",
                                       message_id="<q1@spam.test>"), [SUPPORT], sender="x@spam.test")
    await settle(running)
    assert await numbers(running, "lottery") == []
    assert await numbers(running, "lottery", "--quarantined") == [1000]


def command_address(agent: str) -> str:
    return tokens.reply_address(SECRET.encode(), SUPPORT, tokens.Token(tokens.AGENT_REPLY, 0, agent))


async def agent_search(running: Running, agent: str, subject: str, n: int) -> None:
    rcpt = command_address(agent)
    sender = f"{agent}@agents.test"
    await send(running.smtp_port, mail(sender=sender, to=rcpt, subject=subject, body="",
                                       message_id=f"<s{n}@agents.test>"), [rcpt], sender=sender)
    await settle(running)


async def test_an_agent_searches_by_mail_and_gets_the_hits(make_daemon: MakeDaemon, sink: Sink) -> None:
    running = await make_daemon(AGENTS, send_delay=0.2)
    await ingest(running)
    await agent_search(running, "aino", "[search:printer status:new]", 1)
    await sink.wait_for(lambda got: any(r.header("Subject").startswith("Search:") for r in got if AINO in r.rcpt_tos))
    answer = next(r for r in sink.to(AINO) if r.header("Subject").startswith("Search:"))
    text = answer.text()
    # Aino is in support: its printer ticket is listed with its snippet; billing's is not hers to see.
    assert "[#1002] new -: Question" in text and "[printer]" in text
    assert "#1003" not in text
    assert not [r for r in sink.to(AINO) if r.header("Subject").startswith("Done")]  # the results are the answer
    assert answer.header("Auto-Submitted") == "auto-generated"
    # Bartek (billing) finds the billing ticket and not support's.
    await agent_search(running, "bartek", "[search:toner]", 2)
    got = await sink.wait_for(lambda got: any(BARTEK in r.rcpt_tos and "Search:" in r.header("Subject") for r in got))
    [theirs] = [r for r in got if BARTEK in r.rcpt_tos and "Search:" in r.header("Subject")]
    assert "[#1003]" in theirs.text() and "#1001" not in theirs.text() and "1 found" in theirs.header("Subject")
    # A wrong filter: refused, with the reason.
    await agent_search(running, "aino", "[search:printer queue:nope]", 3)
    refused = await sink.wait_for(lambda got: any(AINO in r.rcpt_tos and "Not done" in r.header("Subject")
                                                  for r in got))
    assert any("no queue 'nope'" in r.text() for r in refused if AINO in r.rcpt_tos)


async def test_a_customer_writing_search_gets_no_results(make_daemon: MakeDaemon, sink: Sink) -> None:
    running = await make_daemon(AGENTS, send_delay=0.2)
    await ingest(running)
    await send(running.smtp_port, mail(sender="mallory@customer.test", subject="[search:toner]",
                                       body="#search toner\n", message_id="<x1@customer.test>"),
               [SUPPORT], sender="mallory@customer.test")
    await settle(running)
    got = await sink.wait_for(lambda got: any("mallory@customer.test" in r.rcpt_tos for r in got))
    # An acknowledgement of a new ticket whose subject is her words; no hit of anyone's ticket.
    for r in got:
        if "mallory@customer.test" in r.rcpt_tos:
            assert "cartridges" not in r.text() and "Search:" not in r.header("Subject")
    assert await numbers(running, "search") == [1005]  # her words stay words: a ticket like any other
