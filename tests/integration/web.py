"""Helpers for the web intake's tests: a [web] section and real HTTP requests to the daemon's listener."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from mailgate.daemon import Running

SHOP_TOKEN = "shop-token-5f1c0e2a9b"
DESK_TOKEN = "desk-token-77a3c91e04"
SHOP_ORIGIN = "https://www.shop.test"


def web_section(*, per_minute: float = 60, burst: int = 50, extra: str = "", origins: Iterable[str] = (SHOP_ORIGIN,),
                redirect: str = "https://www.shop.test/thanks") -> str:
    """[web] with two sites: "shop" (support address, a form page) and "desk" (an API client, billing queue)."""
    listed = ", ".join(f'"{o}"' for o in origins)
    return f"""
[web]
listen = "127.0.0.1:0"
per_minute = {per_minute}
burst = {burst}
{extra}

[[web.sites]]
name = "shop"
token = "{SHOP_TOKEN}"
address = "support@example.test"
origins = [{listed}]
redirect = "{redirect}"

[[web.sites]]
name = "desk"
token = "{DESK_TOKEN}"
queue = "billing"
"""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def _request(port: int, method: str, path: str, body: bytes | Iterable[bytes] | None,
             headers: dict[str, str]) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(method, path, body=body, headers=headers, encode_chunked=chunked)
        answer = conn.getresponse()
        return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        conn.close()


async def request(running: Running, method: str, path: str = "/v1/tickets", body: bytes | Iterable[bytes] | None = None,
                  headers: dict[str, str] | None = None) -> Reply:
    """One real HTTP/1.1 request (http.client on a thread) to the daemon's web listener."""
    assert running.web is not None, "the daemon has no [web] listener"
    return await asyncio.to_thread(_request, running.web.port, method, path, body, headers or {})


async def post_json(running: Running, fields: dict[str, Any], *, token: str | None = SHOP_TOKEN,
                    headers: dict[str, str] | None = None) -> Reply:
    sent = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {}),
            **(headers or {})}
    return await request(running, "POST", body=json.dumps(fields).encode(), headers=sent)


async def post_form(running: Running, fields: dict[str, str], *, headers: dict[str, str] | None = None) -> Reply:
    sent = {"Content-Type": "application/x-www-form-urlencoded", "Origin": SHOP_ORIGIN, **(headers or {})}
    return await request(running, "POST", body=urlencode(fields).encode(), headers=sent)
