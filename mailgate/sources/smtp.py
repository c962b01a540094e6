"""SMTP and LMTP receiving with aiosmtpd: support addresses only, spool, then 250 (one per RCPT on LMTP)."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Session, syntax
from aiosmtpd.smtp import Envelope as SMTPEnvelope

from mailgate import replies, spool
from mailgate.config import Config, bounce_address
from mailgate.models import Envelope, Source
from mailgate.sources.smtp_guard import (
    GuardedSession,
    Listener,
    ensure_fd_limit,
    listener_of,
    quiet_accept_errors,
    register,
)
from mailgate.store import Store, StoreUnavailable

log = logging.getLogger("mailgate.smtp")

_AIOSMTPD_TOO_MUCH = "552 Error: Too much mail data"
_AIOSMTPD_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
# How much DATA one read may take from the stream (its line limit is lifted to this meanwhile).
_DATA_CHUNK = 256 * 1024


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
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


class _SizeAware:
    """Replace aiosmtpd's bare size reply with an enhanced code, one per recipient on LMTP."""

    envelope: SMTPEnvelope | None
    per_recipient = False

    async def push(self, status: Any) -> None:
        if status == _AIOSMTPD_TOO_MUCH:
            count = len(self.envelope.rcpt_tos) if self.per_recipient and self.envelope else 1
            status = "\r\n".join(str(replies.S552_TOO_BIG) for _ in range(max(count, 1)))
        await super().push(status)  # type: ignore[misc]


class _BulkData:
    """aiosmtpd's smtp_DATA, reading the message in chunks instead of one readuntil() per line.

    The per-line loop was the largest cost of accepting a mail. Same rules, same replies: lines
    end at CRLF only (a bare LF is data), "." alone on a line ends the data, a leading dot is
    removed (RFC 5321 4.5.2), a line over line_length_limit means 500 and more than
    data_size_limit bytes 552 (whichever came first, as aiosmtpd decides it), both only after
    the final dot. Nothing past that dot is read, so pipelined commands stay in the stream.
    """

    _reader: asyncio.StreamReader
    _writer: asyncio.StreamWriter
    _decode_data: bool
    _handle_hooks: Any
    data_size_limit: int | None
    line_length_limit: int
    envelope: SMTPEnvelope | None
    transport: asyncio.BaseTransport | None

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        smtp: Any = self
        if self._decode_data or "DATA" not in self._handle_hooks:
            return await super().smtp_DATA(arg)  # type: ignore[misc]  # paths mailgate never takes
        if await smtp.check_helo_needed():
            return
        if await smtp.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await smtp.push("503 Error: need RCPT command")
            return
        if arg:
            await smtp.push("501 Syntax: DATA")
            return
        await smtp.push("354 End data with <CR><LF>.<CR><LF>")
        state, content = await self._read_data()
        self._data_done()
        if state is not None:
            await smtp.push(state)
            smtp._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = content
        status = await smtp._call_handler_hook("DATA")
        smtp._set_post_data_state()
        await smtp.push("250 OK" if status is MISSING else status)

    async def _read_data(self) -> tuple[str | None, bytes]:
        """(None, unstuffed content), or (the 500/552 reply, b"") once the final dot has come."""
        reader = self._reader
        limit = self.data_size_limit
        line_limit = self.line_length_limit
        refusal: str | None = None
        kept: list[bytes] = []  # whole lines, CRLF included, still dot-stuffed
        size = 0
        partial = b""  # the unfinished line the last read ended in
        saved = reader._limit  # type: ignore[attr-defined]
        reader._limit = max(saved, _DATA_CHUNK)  # type: ignore[attr-defined]
        try:
            while self.transport is not None:
                try:
                    chunk = await reader.readuntil(b".\r\n")
                except asyncio.CancelledError:
                    log.info("smtp.connection_lost_during_data")
                    self._writer.close()
                    raise
                except asyncio.LimitOverrunError as exc:  # no ".\r\n" in a whole chunk
                    chunk = await reader.read(exc.consumed)
                body = partial + chunk
                # Only a "." right after CRLF (or first of all) ends the data: "Thanks.\r\n" does not.
                done = body == b".\r\n" or body.endswith(b"\r\n.\r\n")
                last = body.rfind(b"\r\n")
                whole = len(body) - 3 if done else (last + 2 if last >= 0 else 0)
                block, partial = body[:whole], (b"" if done else body[whole:])
                if refusal is None:
                    refusal, size = self._take(block, kept, size, limit, line_limit)
                held = self._data_read(size if refusal is None else 0)
                if refusal is None:
                    refusal = held
                if refusal is None and len(partial) > line_limit + 1:
                    refusal = _AIOSMTPD_TOO_LONG  # aiosmtpd's reader overruns on this line, before counting it
                if refusal is not None:
                    kept.clear()  # nothing more is kept: a refused mail only needs its end found
                    if len(partial) > 2:
                        partial = b"x" + partial[-1:]  # an unfinished line that is not "." (may end in CR)
                if done:
                    break
        finally:
            reader._limit = saved  # type: ignore[attr-defined]
        if refusal is not None:
            return refusal, b""
        content = b"".join(kept)
        if content[:1] == b".":
            content = content[1:]
        return None, content.replace(b"\r\n.", b"\r\n")

    def _data_read(self, held: int) -> str | None:
        """After each read: `held` bytes are kept so far; a refusal to answer after the dot, if any."""
        return None

    def _data_done(self) -> None:
        """The final dot has come (or the connection is gone)."""

    @staticmethod
    def _take(
        block: bytes, kept: list[bytes], size: int, limit: int | None, line_limit: int
    ) -> tuple[str | None, int]:
        """Count and keep complete lines; the refusal aiosmtpd's loop would reach on them, if any."""
        if not block:
            return None, size
        if (not limit or size + len(block) <= limit) and (
            len(block) <= line_limit or max(map(len, block.split(b"\r\n"))) + 2 <= line_limit
        ):
            kept.append(block)
            return None, size + len(block)
        for line in block.split(b"\r\n")[:-1]:  # aiosmtpd's order, line by line
            length = len(line) + 2
            if length - 2 > line_limit:
                return _AIOSMTPD_TOO_LONG, size  # the stream reader overruns before the line counts
            size += length
            if limit and size > limit:
                return _AIOSMTPD_TOO_MUCH, size
            if length > line_limit:
                return _AIOSMTPD_TOO_LONG, size
            kept.append(line + b"\r\n")
        return None, size


@functools.lru_cache(maxsize=4096)
def _parsed_address(arg: str, local_part_limit: int) -> tuple[str | None, str | None]:
    # aiosmtpd's parser reads only local_part_limit from the server; the rest is the argument.
    return SMTP._getaddr(SimpleNamespace(local_part_limit=local_part_limit), arg)  # type: ignore[arg-type]


class _CachedAddresses:
    """aiosmtpd's MAIL/RCPT address parsing (~0.2 ms each, email's full header parser), remembered.

    The same support addresses come in every RCPT, and regular senders in MAIL FROM.
    """

    local_part_limit: int

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        return _parsed_address(arg, self.local_part_limit)


class MailgateSMTP(GuardedSession, _SizeAware, _CachedAddresses, _BulkData, SMTP):
    pass


class MailgateLMTP(GuardedSession, _SizeAware, _CachedAddresses, _BulkData, LMTP):
    per_recipient = True


async def serve(config: Config, handler: SpoolHandler) -> asyncio.Server:
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
    register(server, listener)
    log.info(
        "smtp.limits max_connections=%d per_peer=%d junk_limit=%d data_memory=%d timeout=%g busy_timeout=%g",
        listener.max_connections, listener.max_per_peer, listener.junk_limit, listener.data_budget,
        config.smtp.timeout, config.smtp.busy_timeout,
    )
    return server


def stop_accepting(server: asyncio.Server) -> None:
    """The first step of a stop: close the listening socket; new and idle sessions get 421 4.3.2."""
    server.close()
    listener = listener_of(server)
    if listener is not None:
        closed, in_data = listener.stop_accepting()
        log.info("smtp.stopping closed_idle=%d in_data=%d", closed, in_data)


async def drain(server: asyncio.Server, deadline: float) -> None:
    """Let DATA in flight finish until `deadline` (loop time); the rest gets 421 and nothing stored."""
    listener = listener_of(server)
    if listener is None:
        return
    cut = await listener.drain(deadline)
    log.log(logging.WARNING if cut else logging.INFO, "smtp.stopped data_cut=%d", cut)
