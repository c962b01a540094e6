"""The web intake: POST /v1/tickets from a contact form or an API client, spooled as mail, then 201 or 303.

A submission becomes a message like any other (From the submitter, To the site's support address)
and goes through the spool, so routing, acknowledgement and notification are the mail path's.
What it can never be is an agent's mail: no token or trusted Authentication-Results can reach a
message mailgate writes itself, so an agent's address typed into the form is an unproven outside
party, and nothing in the subject or text runs as a command.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from mailgate import spool
from mailgate.clock import Clock
from mailgate.config import Config, WebSite, bounce_address
from mailgate.models import Envelope, Source
from mailgate.sources import web_answers as answers
from mailgate.sources.smtp import base_address
from mailgate.sources.web_counts import WebCounts
from mailgate.sources.web_form import FORM, HONEYPOT, JSON, Refusal, media_type, read_fields, submission
from mailgate.sources.web_http import Answer, Exchange, Head
from mailgate.sources.web_limits import IPAddress, RateLimit, bucket_key, client_address
from mailgate.sources.web_mail import build
from mailgate.store import Store, StoreUnavailable

log = logging.getLogger("mailgate.web")

PATH = "/v1/tickets"


@dataclass
class WebServer:
    """The listening socket, for stop() and for tests to find the port; its counters for /metrics."""

    server: asyncio.Server
    counts: WebCounts

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])


async def serve(
    config_of: Callable[[], Config], store: Store, clock: Clock, on_accept: Callable[[], None] | None = None
) -> WebServer | None:
    """Listen on [web] listen when set. Sites, tokens and limits are read per request (a reload applies them)."""
    listen = config_of().web.listen
    if listen is None:
        return None
    handler = _Handler(config_of, store, clock, on_accept)
    server = await asyncio.start_server(handler.connection, listen.host, listen.port, limit=64 * 1024)
    web = WebServer(server, handler.counts)
    log.info("web.listening address=%s:%s path=%s sites=%d", listen.host, web.port, PATH, len(config_of().web.sites))
    return web


async def stop(web: WebServer | None) -> None:
    if web is None:
        return
    web.server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(web.server.wait_closed(), timeout=5)


class _Handler:
    def __init__(self, config_of: Callable[[], Config], store: Store, clock: Clock,
                 on_accept: Callable[[], None] | None) -> None:
        self.config_of = config_of
        self.store = store
        self.clock = clock
        self.on_accept = on_accept
        self.limit = RateLimit()
        self.counts = WebCounts()
        self._clients = 0

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = self.config_of()
        exchange = Exchange(reader, writer, config.web.timeout)
        self._clients += 1
        try:
            if self._clients > config.web.max_clients:
                return  # closed unanswered: a flood of connections, not people filling in a form
            peer = writer.get_extra_info("peername")
            answer = await self._answer(exchange, config, str(peer[0]) if isinstance(peer, tuple) else None)
            if answer is not None:
                await exchange.send(answer, config.web.timeout)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # a slow or vanished client: nothing more to say
        except Exception as exc:  # a bug in one answer must not stop the listener
            log.error("web.failed error=%s", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        finally:
            self._clients -= 1
            await exchange.close()

    async def _answer(self, exchange: Exchange, config: Config, peer: str | None) -> Answer | None:
        head: Head | None = None
        try:
            head = await exchange.head()
            if head is None:
                return None
            return await self._request(exchange, config, head, peer)
        except TimeoutError:
            return answers.error(408, "the request took too long to arrive", form=_is_form(head))
        except Refusal as refusal:
            if head is not None and head.method == "POST" and head.path == PATH:
                self.counts.refuse_status(refusal.status)
            log.info("web.refused status=%d path=%r reason=%r", refusal.status, head.path[:100] if head else "-",
                     refusal.message[:200])
            challenge = [("www-authenticate", 'Bearer realm="mailgate"')] if refusal.status == 401 else []
            return answers.error(refusal.status, refusal.message, form=_is_form(head),
                                 headers=[*challenge, *_cors(config, head)])

    async def _request(self, exchange: Exchange, config: Config, head: Head, peer: str | None) -> Answer:
        web = config.web
        if head.path != PATH:
            raise Refusal(404, f"not found: the only address here is {PATH}")
        if head.method == "OPTIONS":
            origin = head.get("origin").lower()
            if origin and any(origin in site.origins for site in web.sites):
                return answers.preflight(origin)
            raise Refusal(403, "this origin may not post here")
        if head.method != "POST":
            return answers.error(405, f"use POST {PATH}", form=False, headers=[("allow", "POST, OPTIONS")])
        client = client_address(peer, head.get("x-forwarded-for") or None, web.trusted_proxies)
        # Counted before the token is checked: guessing tokens costs a robot the same as posting.
        wait, refused = self.limit.take(bucket_key(client) if client else "-", self.clock.now().timestamp(),
                                        per_minute=web.per_minute, burst=web.burst)
        if wait:
            self.counts.refuse("rate")
            if refused == 1:  # one line per burst of refusals: a flood must not become a flood of log lines
                log.warning("web.rate_limited client=%s", client)
            return answers.error(429, "too many requests from your address: try again later", form=_is_form(head),
                                 headers=[("retry-after", str(math.ceil(wait))), *_cors(config, head)])
        kind = media_type(head.get("content-type"))
        if kind not in (FORM, JSON):
            raise Refusal(415, f"send {JSON} or {FORM}, not {kind or 'no Content-Type'}")
        length = head.content_length
        if length is not None and length > web.max_body:
            raise Refusal(413, f"the request body is larger than {web.max_body} bytes")
        fields = read_fields(kind, await exchange.body(web.max_body))
        return await self._submit(config, head, fields, kind == FORM, client)

    async def _submit(self, config: Config, head: Head, fields: dict[str, str], form: bool,
                      client: IPAddress | None) -> Answer:
        """A request read whole: its site, origin and honeypot, then the fields, then the spool."""
        web = config.web
        site = _site(config, head, fields, form=form)
        origin = head.get("origin").lower()
        if origin and origin not in site.origins:
            # Browsers name the page a post comes from; a form copied onto another site (with its
            # token, which any visitor can read) is stopped here.
            raise Refusal(403, f"pages on {origin[:100]} may not post to the site {site.name!r}")
        extra = answers.cors(origin) if origin else []
        if fields.get(HONEYPOT, "").strip():
            # A robot: the same answer a person gets, so it learns nothing; nothing is stored.
            log.info("web.honeypot site=%s client=%s", site.name, client)
            self.counts.refuse("honeypot")
            fake = f"web.{secrets.token_hex(16)}@{config.message_id_domain}"
            return _with(answers.accepted(fake, form=form, redirect=site.redirect), extra)
        sub = submission(fields)
        if base_address(sub.email) in {*config.gateway.addresses, bounce_address(config)}:
            raise Refusal(400, f"{sub.email} is this help desk's own address")
        target = web.target(site, {q.name: q.addresses for q in config.queues})
        raw, reference = build(sub, site=site.name, to=target, client=str(client or ""), now=self.clock.now(),
                               domain=config.message_id_domain, secret=config.secret_bytes())
        envelope = Envelope(sub.email, (target,), Source.WEB, source_ref=f"web/{site.name}",
                            peer=str(client) if client else None)
        try:
            stored = await spool.accept(self.store, raw, envelope, wait=config.smtp.busy_timeout)
        except (StoreUnavailable, OSError) as exc:
            log.error("web.store_unavailable site=%s error=%r", site.name, str(exc))
            self.counts.refuse("unavailable")
            return answers.error(503, "the help desk cannot store your message right now: try again in a minute",
                                 form=form, headers=[("retry-after", "60"), *extra])
        self.counts.accepted += 1
        if self.on_accept is not None:
            self.on_accept()
        log.info("web.accepted site=%s spool=%d client=%s reference=%s", site.name, stored.spool_id, client, reference)
        return _with(answers.accepted(reference, form=form, redirect=site.redirect), extra)


def _site(config: Config, head: Head, fields: dict[str, str], *, form: bool) -> WebSite:
    """The site whose token the request carries: the Authorization header, or a form's hidden field."""
    scheme, _, value = head.get("authorization").partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else ""
    if not token and form:
        token = fields.get("token", "").strip()
    if token:
        given = token.encode("utf-8", "replace")
        for site in config.web.sites:
            if hmac.compare_digest(given, site.secret()):
                return site
    raise Refusal(401, "a valid site token is required (Authorization: Bearer …, or the form's token field)")


def _is_form(head: Head | None) -> bool:
    return head is not None and media_type(head.get("content-type")) == FORM


def _cors(config: Config, head: Head | None) -> list[tuple[str, str]]:
    origin = head.get("origin").lower() if head is not None else ""
    return answers.cors(origin) if origin and any(origin in s.origins for s in config.web.sites) else []


def _with(answer: Answer, headers: list[tuple[str, str]]) -> Answer:
    answer.headers.extend(headers)
    return answer
