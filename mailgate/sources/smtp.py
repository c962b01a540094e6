"""SMTP and LMTP receiving with aiosmtpd: support addresses only, spool, then 250 (one per RCPT on LMTP)."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import socket
from collections.abc import Callable
from types import SimpleNamespace

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SMTPEnvelope

from mailgate import replies, spool
from mailgate.config import Config, bounce_address
from mailgate.models import Envelope, Source
from mailgate.sources.smtp_data import BulkData, SizeAware
from mailgate.sources.smtp_guard import GuardedSession
from mailgate.sources.smtp_limits import Listener, ensure_fd_limit, quiet_accept_errors
from mailgate.store import Store, StoreUnavailable

log = logging.getLogger("mailgate.smtp")



def base_address(address: str) -> str:
    """support+token@x.example → support@x.example (lowercased)."""
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    if not at:
        return address.lower()
    return f"{local.split('+', 1)[0]}@{domain}"


class SpoolHandler:
    """aiosmtpd handler: refuses what is not ours, answers 250 only after the spool commit."""

    def __init__(self, config: Config, store: Store, on_accept: Callable[[], None] | None = None) -> None:
        self.store = store
        self.lmtp = config.smtp.lmtp
        # The VERP return path (bounces+<token>@…) too: DSNs of our outgoing mail come back to it.
        self.support = frozenset(config.gateway.addresses) | {bounce_address(config)}
        self.on_accept = on_accept
        self.store_wait = config.smtp.busy_timeout  # then 451: the sender retries, no queue forms

    def accepts(self, address: str) -> bool:
        return base_address(address) in self.support

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: SMTPEnvelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.accepts(address):
            # Never an open relay: only the configured support addresses (and their +token forms).
            log.info("smtp.rcpt_refused rcpt=%s peer=%s", address, session.peer)
            return str(replies.S550_NO_SUCH_USER)
        envelope.rcpt_tos.append(address)
        return str(replies.S250_RECIPIENT_OK)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SMTPEnvelope) -> str:
        raw: bytes = envelope.original_content or b""
        if not raw.strip():
            reply = replies.S554_EMPTY
        else:
            try:
                accepted = await spool.accept(
                    self.store,
                    raw,
                    Envelope(
                        mail_from=envelope.mail_from or "",
                        rcpt_to=tuple(envelope.rcpt_tos),
                        source=Source.LMTP if self.lmtp else Source.SMTP,
                        peer=_peer_address(session),
                    ),
                    wait=self.store_wait,
                )
            except (StoreUnavailable, OSError) as exc:
                # 451: the sending MTA keeps the message and retries; nothing is lost.
                log.error("smtp.store_unavailable peer=%s error=%r", _peer_address(session), str(exc))
                reply = replies.S451_TRY_AGAIN
            except Exception:
                # A bug of ours must not become aiosmtpd's "500 Error": a 5xx makes the sending MTA
                # bounce the mail for good. 451 keeps it queued there while the operator looks.
                log.exception("smtp.accept_failed peer=%s", _peer_address(session))
                reply = replies.S451_TRY_AGAIN
            else:
                # Postfix's wording: the sending MTA logs it, so its operator can quote the id to ours.
                reply = replies.S250_QUEUED(accepted.spool_id)
                if self.on_accept:
                    self.on_accept()
        if self.lmtp:
            # RFC 2033 4.2: one reply per accepted recipient (aiosmtpd leaves this to us, #517).
            return "\r\n".join(str(reply) for _ in envelope.rcpt_tos)
        return str(reply)


def _peer_address(session: Session) -> str | None:
    """The client's IP address, kept with the mail: only a trusted peer's Authentication-Results count."""
    peer: object = session.peer  # aiosmtpd annotates a str; asyncio gives the (host, port) tuple
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


# `<dot-atom@dot-atom>` and ESMTP parameters after a space: what every MTA sends (RFC 5321 4.1.2).
# The header parser reads exactly this as the address and the parameters; anything else (quotes,
# comments, a route, a null sender, an address literal, non-ASCII) takes that parser.
_ATOMS = r"[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*"
_PLAIN = re.compile(rf"<({_ATOMS}@{_ATOMS})>(?:[ \t]+([^(\s][^\r\n]*))?[ \t]*")


@functools.lru_cache(maxsize=4096)
def _parsed_address(arg: str, local_part_limit: int) -> tuple[str | None, str | None]:
    # A new sender every mail misses the cache: the plain form skips email's full header parser.
    plain = _PLAIN.fullmatch(arg)
    if plain is not None:
        address = plain.group(1)
        if local_part_limit and len(address.rpartition("@")[0]) > local_part_limit:
            return None, None
        return address, plain.group(2) or ""
    # aiosmtpd's parser reads only local_part_limit from the server; the rest is the argument.
    return SMTP._getaddr(SimpleNamespace(local_part_limit=local_part_limit), arg)  # type: ignore[arg-type]


class _CachedAddresses:
    """aiosmtpd's MAIL/RCPT address parsing (~0.2 ms each, email's full header parser), remembered.

    The same support addresses come in every RCPT, and regular senders in MAIL FROM.
    """

    local_part_limit: int

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        return _parsed_address(arg, self.local_part_limit)


# The ignores: aiosmtpd leaves smtp_EXPN unannotated, and LMTP names HELO/EHLO's parameter `arg`
# where SMTP names it `hostname`; the guard's wrappers (functools.wraps of SMTP's) match neither exactly.
class MailgateSMTP(GuardedSession, SizeAware, _CachedAddresses, BulkData, SMTP):  # type: ignore[misc]
    """mailgate's SMTP session: the guard, enhanced size replies, cached address parsing, chunked DATA."""


class MailgateLMTP(GuardedSession, SizeAware, _CachedAddresses, BulkData, LMTP):  # type: ignore[misc]
    """The same for LMTP (RFC 2033), which answers DATA once per recipient."""

    per_recipient = True


class SmtpServer:
    """The listening socket and what its sessions share, as serve() started them."""

    def __init__(self, server: asyncio.Server, listener: Listener) -> None:
        self.server = server
        self.listener = listener

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self.server.sockets)

    def is_serving(self) -> bool:
        return self.server.is_serving()

    def close(self) -> None:
        self.server.close()

    async def wait_closed(self) -> None:
        await self.server.wait_closed()


async def serve(config: Config, handler: SpoolHandler) -> SmtpServer:
    """Listen on smtp.listen in the running loop (aiosmtpd's Controller would start its own)."""
    protocol = MailgateLMTP if config.smtp.lmtp else MailgateSMTP
    loop = asyncio.get_running_loop()
    listener = Listener(config.smtp)
    # Without a name aiosmtpd looks one up for every connection: a blocking DNS call on the loop.
    hostname = config.smtp.hostname or socket.getfqdn()
    # aiosmtpd logs every connection and command line at INFO; under a flood that is the flood.
    # mailgate logs its own line for each event that matters.
    aiosmtpd_log = logging.getLogger("mail.log")
    if aiosmtpd_log.level == logging.NOTSET:
        aiosmtpd_log.setLevel(logging.WARNING)
    quiet_accept_errors(loop)
    ensure_fd_limit(config.smtp.max_connections)

    def factory() -> SMTP:
        return protocol(
            handler,
            listener=listener,
            data_size_limit=config.smtp.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="mailgate",
            timeout=config.smtp.timeout,
            loop=loop,
        )

    listen = config.smtp.listen
    server = await loop.create_server(factory, host=listen.host, port=listen.port)
    log.info(
        "smtp.limits max_connections=%d per_peer=%d junk_limit=%d data_memory=%d timeout=%g busy_timeout=%g",
        listener.max_connections, listener.max_per_peer, listener.junk_limit, listener.data_budget,
        config.smtp.timeout, config.smtp.busy_timeout,
    )
    return SmtpServer(server, listener)


def stop_accepting(server: SmtpServer) -> None:
    """The first step of a stop: close the listening socket; new and idle sessions get 421 4.3.2."""
    server.close()
    closed, in_data = server.listener.stop_accepting()
    log.info("smtp.stopping closed_idle=%d in_data=%d", closed, in_data)


async def drain(server: SmtpServer, deadline: float) -> None:
    """Let DATA in flight finish until `deadline` (loop time); the rest gets 421 and nothing stored."""
    cut = await server.listener.drain(deadline)
    log.log(logging.WARNING if cut else logging.INFO, "smtp.stopped data_cut=%d", cut)
