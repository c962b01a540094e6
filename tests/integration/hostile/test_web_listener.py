"""The web intake under abuse, over raw sockets: broken HTTP, trickling clients, floods of connections,
and fields built to slip a header, a second recipient or unreadable text into the mail."""

from __future__ import annotations

import asyncio
import json

import pytest

from mailgate import spool
from mailgate.daemon import Running, reload

from ..conftest import AGENTS, Cli, MakeDaemon, settle
from ..web import SHOP_TOKEN, post_json, web_section

pytestmark = pytest.mark.asyncio

GOOD = {"name": "Olivia", "email": "olivia@customer.test", "message": "The kettle leaks."}


async def raw_exchange(running: Running, data: bytes, *, close_write: bool = False) -> bytes:
    """Send bytes as they are on a fresh connection; everything the daemon answers until it closes."""
    assert running.web is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", running.web.port)
    try:
        writer.write(data)
        await writer.drain()
        if close_write:
            writer.write_eof()
        async with asyncio.timeout(20):
            return await reader.read()
    finally:
        writer.close()


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


async def spooled(running: Running) -> int:
    return sum((await spool.counts(running.store)).values())


async def test_broken_http_gets_400_and_an_oversized_head_431(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section())
    assert status(await raw_exchange(running, b"HELLO THERE\r\n\r\n")) == 400
    assert status(await raw_exchange(running, b"POST /v1/tickets HTTP/1.1\r\nHost x\r\n\r\n")) == 400
    huge = b"POST /v1/tickets HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 40_000 + b"\r\n\r\n"
    assert status(await raw_exchange(running, huge)) == 431
    # Two lengths that disagree is how request smuggling starts (RFC 9112 6.3): refused outright.
    smuggle = (b"POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 50\r\n"
               b"Content-Type: application/json\r\n\r\n{}")
    assert status(await raw_exchange(running, smuggle)) == 400
    assert await spooled(running) == 0


async def test_a_client_that_trickles_or_stalls_is_cut_at_the_timeout(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section(extra="timeout = 0.5"))
    body = json.dumps(GOOD).encode()
    head = (f"POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {SHOP_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    # The head and half the body, then nothing: the slot is given back with 408, nothing is stored.
    assert status(await raw_exchange(running, head + body[:10])) == 408
    assert status(await raw_exchange(running, b"POST /v1/tick")) == 408
    assert await spooled(running) == 0
    assert (await post_json(running, GOOD)).status == 201  # and the next person gets through


async def test_connections_past_max_clients_are_closed_and_the_rest_served(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section(extra="max_clients = 2"))
    assert running.web is not None
    idle = [await asyncio.open_connection("127.0.0.1", running.web.port) for _ in range(2)]
    try:
        assert await raw_exchange(running, b"POST /v1/tickets HTTP/1.1\r\nHost: x\r\n\r\n") == b""
    finally:
        for _, writer in idle:
            writer.close()
    for _, writer in idle:
        await writer.wait_closed()
    assert (await post_json(running, GOOD)).status == 201


@pytest.mark.parametrize(("fields", "words"), [
    ({"name": "Olivia\nBcc: all@example.test"}, "control character"),
    ({"subject": "Hi\r\nX-Spam-Flag: NO"}, "control character"),
    ({"email": "olivia@customer.test\r\nBcc: all@example.test"}, "control character"),
    ({"email": "Olivia <olivia@customer.test>"}, "not one plain email address"),
    ({"email": "olivia@customer.test,mallory@evil.test"}, "not one plain email address"),
    ({"email": "olivia@localhost"}, "no valid domain"),
    ({"email": "ölivia@customer.test"}, "ASCII"),
    ({"name": "Olivia \u202egnp.exe"}, "control character"),
    ({"message": "ok\u0000then"}, "control character"),
    ({"message": "\ud800"}, "control character"),
    ({"phone": "call me maybe"}, "not a phone number"),
    ({"subject": "x" * 201}, "longer than 200"),
])
async def test_fields_that_would_break_or_forge_the_mail_are_refused(
    make_daemon: MakeDaemon, fields: dict[str, str], words: str
) -> None:
    running = await make_daemon(AGENTS + web_section())
    answer = await post_json(running, {**GOOD, **fields})
    assert answer.status == 400, answer.body
    assert words in answer.json["error"]
    assert await spooled(running) == 0


async def test_a_unicode_domain_and_a_long_line_arrive_intact(make_daemon: MakeDaemon, cli: Cli) -> None:
    running = await make_daemon(AGENTS + web_section())
    long_line = "Ü" + "kettle " * 400  # one paragraph typed without a break: far past 998 octets
    answer = await post_json(running, {**GOOD, "email": "olivia@bücher.example", "message": long_line})
    assert answer.status == 201
    await settle(running)
    [ticket] = (await cli("tickets", "list", "--json")).json
    shown = (await cli("tickets", "show", str(ticket["number"]), "--json")).json
    assert shown["contact_address"] == "olivia@xn--bcher-kva.example"
    [message] = [m for m in shown["messages"] if m["direction"] == "in"]
    assert message["reply_text"].split() == long_line.split()


async def test_a_reload_rotates_a_sites_token(make_daemon: MakeDaemon) -> None:
    running = await make_daemon(AGENTS + web_section())
    assert running.config.source is not None
    text = running.config.source.read_text(encoding="utf-8")
    running.config.source.write_text(text.replace(SHOP_TOKEN, "rotated-shop-token-42"), encoding="utf-8")
    assert reload(running)
    assert (await post_json(running, GOOD)).status == 401  # sites are read per request: no restart
    assert (await post_json(running, GOOD, token="rotated-shop-token-42")).status == 201
