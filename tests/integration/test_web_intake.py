"""The web intake over real HTTP: POST /v1/tickets opens a web ticket through the mail pipeline.

A daemon with [web] listens on a loopback port; http.client posts JSON (an API client with its
Bearer token) or a URL-encoded form (a browser on the shop's page); the relay sink sees the
acknowledgement and the agents' notification like for any mail.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from mailgate import spool
from mailgate.clock import ManualClock
from mailgate.daemon import Running

from .conftest import AGENTS, Cli, MakeDaemon, mail, send, settle
from .sink import Sink, wait_mail
from .web import DESK_TOKEN, SHOP_ORIGIN, post_form, post_json, request, web_section

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

CUSTOMER = "olivia@customer.test"
REQUEST = {
    "name": "Olivia Customer",
    "email": CUSTOMER,
    "subject": "Order 4417 never arrived",
    "message": "Hello,\n\nI ordered a kettle on Monday and it has not arrived.\n\nOlivia",
    "phone": "+358 40 123 4567",
}


async def spooled(running: Running) -> int:
    return sum((await spool.counts(running.store)).values())


async def only_ticket(cli: Cli) -> dict[str, Any]:
    listed = (await cli("tickets", "list", "--json")).json
    assert len(listed) == 1, listed
    shown: dict[str, Any] = (await cli("tickets", "show", str(listed[0]["number"]), "--json")).json
    return shown


async def test_json_post_opens_a_web_ticket_acknowledged_by_mail(make_daemon: MakeDaemon, sink: Sink, cli: Cli) -> None:
    running = await make_daemon(AGENTS + web_section())
    answer = await post_json(running, REQUEST)
    assert answer.status == 201, answer.body
    assert answer.json["ticket"] == "accepted"
    reference = answer.json["reference"]
    assert reference.startswith("web.") and reference.endswith("@example.test")
    await settle(running)
    ticket = await only_ticket(cli)
    assert ticket["channel"] == "web"
    assert ticket["queue"] == "support"  # the shop's address feeds the support queue (routing as for mail)
    assert ticket["contact_address"] == CUSTOMER
    [message] = [m for m in ticket["messages"] if m["direction"] == "in"]
    assert message["message_id"] == reference
    assert "kettle" in message["reply_text"] and "Phone: +358 40 123 4567" in message["reply_text"]
    ack = await wait_mail(sink, CUSTOMER, "Order 4417 never arrived")
    assert f"[#{ticket['number']}]" in ack.header("Subject")
    # Aino works the support queue: she hears of the new ticket as of any mail.
    await wait_mail(sink, "aino@agents.test", "Order 4417 never arrived")
    raw = (await cli("spool", "show", "1", "--raw")).stdout
    assert "Received: from [127.0.0.1] by example.test with HTTP (web site shop)" in raw


async def test_a_site_with_a_queue_writes_to_its_address_and_a_double_post_is_one_ticket(
    make_daemon: MakeDaemon, sink: Sink, cli: Cli
) -> None:
    running = await make_daemon(AGENTS + web_section())
    first = await post_json(running, REQUEST, token=DESK_TOKEN)
    again = await post_json(running, REQUEST, token=DESK_TOKEN)  # a double click, or a retry after a timeout
    assert first.status == again.status == 201
    assert first.json["reference"] == again.json["reference"]
    await settle(running)
    ticket = await only_ticket(cli)
    assert ticket["queue"] == "billing" and ticket["channel"] == "web"
    await wait_mail(sink, CUSTOMER, "Order 4417 never arrived")


async def test_form_post_is_redirected_to_the_sites_page(make_daemon: MakeDaemon, sink: Sink, cli: Cli) -> None:
    running = await make_daemon(AGENTS + web_section())
    form = {**REQUEST, "token": "shop-token-5f1c0e2a9b", "website": "", "consent": "yes"}
    answer = await post_form(running, form)
    assert answer.status == 303
    assert answer.headers["location"] == "https://www.shop.test/thanks"
    await settle(running)
    assert (await only_ticket(cli))["channel"] == "web"
    await wait_mail(sink, CUSTOMER, "Order 4417 never arrived")


async def test_form_errors_are_a_page_a_person_can_read(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section())
    answer = await post_form(running, {**REQUEST, "email": "olivia at customer", "token": "shop-token-5f1c0e2a9b"})
    assert answer.status == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert b"is not an email address" in answer.body
    assert await spooled(running) == 0


async def test_a_wrong_or_missing_token_is_401_and_stores_nothing(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section())
    wrong = await post_json(running, REQUEST, token="shop-token-guessed00")
    missing = await post_json(running, REQUEST, token=None)
    in_form = await post_form(running, {**REQUEST, "token": "nope"})
    assert (wrong.status, missing.status, in_form.status) == (401, 401, 401)
    assert "token" in wrong.json["error"]
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert await spooled(running) == 0


async def test_the_honeypot_answers_as_accepted_and_stores_nothing(make_daemon: MakeDaemon, sink: Sink) -> None:
    running = await make_daemon(AGENTS + web_section())
    bot = {**REQUEST, "token": "shop-token-5f1c0e2a9b", "website": "https://cheap-pills.example"}
    form = await post_form(running, bot)
    api = await post_json(running, {**REQUEST, "website": "http://spam.example"})
    assert form.status == 303 and form.headers["location"] == "https://www.shop.test/thanks"
    assert api.status == 201 and api.json["ticket"] == "accepted"
    assert await spooled(running) == 0
    assert sink.received == []


async def test_the_rate_limit_is_per_client_address(make_daemon: MakeDaemon) -> None:
    clock = ManualClock()
    # Behind a trusted proxy (the test's own 127.0.0.1) the client is the X-Forwarded-For hop.
    running = await make_daemon(AGENTS + web_section(per_minute=1, burst=3, extra='trusted_proxies = ["127.0.0.1"]'),
                                clock=clock)
    alice = {"X-Forwarded-For": "198.51.100.7"}
    answers = [await post_json(running, REQUEST, token="shop-token-wrong0000", headers=alice) for _ in range(3)]
    assert [a.status for a in answers] == [401, 401, 401]  # guessing tokens counts like posting
    limited = await post_json(running, REQUEST, headers=alice)
    assert limited.status == 429
    assert int(limited.headers["retry-after"]) > 0
    # Another client behind the same proxy is not held back by the first one; the first is,
    # whatever address it writes to the left of the proxy's own entry.
    assert (await post_json(running, REQUEST, headers={"X-Forwarded-For": "203.0.113.9"})).status == 201
    spoofed = {"X-Forwarded-For": "192.0.2.1, 198.51.100.7"}
    assert (await post_json(running, REQUEST, headers=spoofed)).status == 429
    clock.advance(timedelta(minutes=1))  # the bucket refills at per_minute
    assert (await post_json(running, REQUEST, headers=alice)).status == 201


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section(per_minute=1, burst=2))
    for address in ("198.51.100.1", "198.51.100.2"):
        assert (await post_json(running, REQUEST, headers={"X-Forwarded-For": address})).status == 201
    assert (await post_json(running, REQUEST, headers={"X-Forwarded-For": "198.51.100.3"})).status == 429


async def test_oversized_bodies_are_413_with_or_without_a_length(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section(extra="max_body = 4096"))
    big = {**REQUEST, "message": "x" * 10_000}
    assert (await post_json(running, big)).status == 413
    body = json.dumps(big).encode()
    chunks = (body[i:i + 1000] for i in range(0, len(body), 1000))  # chunked: no Content-Length
    headers = {"Content-Type": "application/json", "Authorization": "Bearer shop-token-5f1c0e2a9b"}
    chunked = await request(running, "POST", body=chunks, headers=headers)
    assert chunked.status == 413 and "4096" in chunked.json["error"]
    assert await spooled(running) == 0


async def test_what_the_endpoint_refuses(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section())
    auth = {"Authorization": "Bearer shop-token-5f1c0e2a9b"}
    text = await request(running, "POST", body=b"hello", headers={"Content-Type": "text/plain", **auth})
    assert text.status == 415
    assert (await request(running, "GET")).status == 405
    assert (await request(running, "POST", "/admin", body=b"{}", headers=auth)).status == 404
    assert (await post_json(running, {**REQUEST, "email": "a@x.test, b@y.test"})).status == 400
    assert (await post_json(running, {**REQUEST, "name": "Olivia\r\nBcc: everyone@example.test"})).status == 400
    assert (await post_json(running, {**REQUEST, "email": "support@example.test"})).status == 400
    assert (await post_json(running, {**REQUEST, "mesage": "typo"})).status == 400
    assert (await post_json(running, {**REQUEST, "message": "   "})).status == 400
    broken = await request(running, "POST", body=b'{"email": ', headers={"Content-Type": "application/json", **auth})
    assert broken.status == 400 and "JSON" in broken.json["error"]
    assert await spooled(running) == 0


async def test_origins_and_cors(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section())
    preflight = await request(running, "OPTIONS", headers={
        "Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == SHOP_ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    allowed = await post_json(running, REQUEST, headers={"Origin": SHOP_ORIGIN})
    assert allowed.status == 201 and allowed.headers["access-control-allow-origin"] == SHOP_ORIGIN
    # The shop's form copied onto another site, token and all: the browser names the real page.
    copied = await post_form(running, {**REQUEST, "token": "shop-token-5f1c0e2a9b"},
                             headers={"Origin": "https://evil.test"})
    assert copied.status == 403
    assert (await request(running, "OPTIONS", headers={"Origin": "https://evil.test"})).status == 403


async def test_an_agents_address_in_the_form_is_an_outside_party_and_runs_nothing(
    make_daemon: MakeDaemon, sink: Sink, cli: Cli
) -> None:
    running = await make_daemon(AGENTS + web_section())
    await send(running.smtp_port, mail(subject="Printer on fire"))
    await settle(running)
    [existing] = (await cli("tickets", "list", "--json")).json
    # Someone types Aino's address and her commands into the form, aimed at Alice's ticket.
    forged = {"name": "Aino Agent", "email": "aino@agents.test",
              "subject": f"[#{existing['number']}] [status:closed] [assign:bartek]",
              "message": "[status:closed]\n[priority:urgent]\nclosing this"}
    assert (await post_json(running, forged)).status == 201
    # A customer's own words in brackets are words too.
    assert (await post_json(running, {**REQUEST, "subject": "[status:closed] kettle"})).status == 201
    await settle(running)
    tickets = {t["number"]: t for t in (await cli("tickets", "list", "--json")).json}
    assert len(tickets) == 2  # Alice's, and the customer's new web ticket
    alices = (await cli("tickets", "show", str(existing["number"]), "--json")).json
    assert (alices["status"], alices["priority"], alices["assignee"]) == (existing["status"], "normal", None)
    [kept] = [m for m in alices["messages"] if m["from"]["address"] == "aino@agents.test"]
    assert "without proof" in kept["thread_detail"] and "nothing run" in kept["thread_detail"]
    assert "agent_mail.unproven" in [e["kind"] for e in alices["events"]]
    [new] = [t for t in tickets.values() if t["number"] != existing["number"]]
    shown = (await cli("tickets", "show", str(new["number"]), "--json")).json
    assert (shown["status"], shown["channel"], shown["subject"]) == ("new", "web", "[status:closed] kettle")
    await wait_mail(sink, CUSTOMER, "kettle")  # the customer's request is acknowledged as usual
