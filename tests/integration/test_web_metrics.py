"""The web intake on /metrics: real posts to POST /v1/tickets, then a scrape of the daemon's [http] listener."""

from __future__ import annotations

import pytest

from .conftest import AGENTS, MakeDaemon, settle
from .test_health import HTTP, metrics
from .test_web_intake import REQUEST
from .web import post_json, request, web_section

pytestmark = pytest.mark.asyncio

REASONS = ("rate", "token", "origin", "size", "type", "invalid", "honeypot", "unavailable")


async def test_accepted_and_refused_posts_are_counted_by_reason_never_by_client(make_daemon: MakeDaemon) -> None:
    # Behind a trusted proxy (the test's 127.0.0.1): each X-Forwarded-For hop is a client of its own.
    web = web_section(per_minute=1, burst=8, extra='max_body = 4096\ntrusted_proxies = ["127.0.0.1"]')
    running = await make_daemon(AGENTS + web + HTTP)
    before = await metrics(running)
    assert before[("mailgate_web_accepted_total", ())] == 0
    assert {r: before[("mailgate_web_refused_total", (("reason", r),))] for r in REASONS} == dict.fromkeys(REASONS, 0)

    client = {"X-Forwarded-For": "198.51.100.7"}
    auth = {"Authorization": "Bearer shop-token-5f1c0e2a9b", **client}
    statuses = [
        (await post_json(running, REQUEST, headers=client)).status,
        (await post_json(running, REQUEST, token="shop-token-guessed00", headers=client)).status,
        (await post_json(running, REQUEST, headers={"Origin": "https://copycat.test", **client})).status,
        (await post_json(running, {**REQUEST, "message": "x" * 10_000}, headers=client)).status,
        (await request(running, "POST", body=b"hello", headers={"Content-Type": "text/plain", **auth})).status,
        (await post_json(running, {**REQUEST, "email": "olivia at customer.test"}, headers=client)).status,
        (await post_json(running, {**REQUEST, "website": "https://cheap-pills.test"}, headers=client)).status,
        (await post_json(running, {**REQUEST, "subject": "Second order"}, headers=client)).status,
        (await post_json(running, REQUEST, headers=client)).status,  # the ninth within the minute: over the burst
        # Not posts to the endpoint, so no verdict on one: neither counted nor charged to the client's bucket.
        (await request(running, "GET", headers=client)).status,
        (await request(running, "POST", "/admin", body=b"{}", headers=auth)).status,
    ]
    assert statuses == [201, 401, 403, 413, 415, 400, 201, 201, 429, 405, 404]
    await settle(running)

    after = await metrics(running)
    assert after[("mailgate_web_accepted_total", ())] == 2  # the honeypot's 201 stored nothing: not accepted
    refused = {labels: n for (name, labels), n in after.items() if name == "mailgate_web_refused_total"}
    assert refused == {(("reason", r),): 1 for r in REASONS if r != "unavailable"} | {(("reason", "unavailable"),): 0}
    # No series names a client: the address is in the log lines, not in a label.
    assert not [key for key in after if key[0].startswith("mailgate_web") and "198.51.100.7" in str(key)]
