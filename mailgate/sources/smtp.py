"""SMTP and LMTP receiving with aiosmtpd: support addresses only, spool, then 250 (one per RCPT on LMTP)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope as SMTPEnvelope, Session

from mailgate import replies, spool
from mailgate.config import Config, bounce_address
from mailgate.models import Source
from mailgate.spool import Envelope
from mailgate.store import Store, StoreUnavailable

log = logging.getLogger("mailgate.smtp")

_AIOSMTPD_TOO_MUCH = "552 Error: Too much mail data"


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
                await spool.accept(
                    self.store,
                    raw,
                    Envelope(
                        mail_from=envelope.mail_from or "",
                        rcpt_to=tuple(envelope.rcpt_tos),
                        source=Source.LMTP if self.lmtp else Source.SMTP,
                    ),
                )
            except (StoreUnavailable, OSError) as exc:
                # 451: the sending MTA keeps the message and retries; nothing is lost.
                log.error("smtp.store_unavailable error=%s", exc)
                reply = replies.S451_TRY_AGAIN
            else:
                reply = replies.S250_QUEUED
                if self.on_accept:
                    self.on_accept()
        if self.lmtp:
            # RFC 2033 4.2: one reply per accepted recipient (aiosmtpd leaves this to us, #517).
            return "\r\n".join(str(reply) for _ in envelope.rcpt_tos)
        return str(reply)


class _SizeAware:
    """Replace aiosmtpd's bare size reply with an enhanced code, one per recipient on LMTP."""

    envelope: SMTPEnvelope | None
    per_recipient = False

    async def push(self, status: Any) -> None:
        if status == _AIOSMTPD_TOO_MUCH:
            count = len(self.envelope.rcpt_tos) if self.per_recipient and self.envelope else 1
            status = "\r\n".join(str(replies.S552_TOO_BIG) for _ in range(max(count, 1)))
        await super().push(status)  # type: ignore[misc]


class MailgateSMTP(_SizeAware, SMTP):
    pass


class MailgateLMTP(_SizeAware, LMTP):
    per_recipient = True


async def serve(config: Config, handler: SpoolHandler) -> asyncio.Server:
    """Listen on smtp.listen in the running loop (aiosmtpd's Controller would start its own)."""
    protocol = MailgateLMTP if config.smtp.lmtp else MailgateSMTP
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return protocol(
            handler,
            data_size_limit=config.smtp.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=config.smtp.hostname,
            ident="mailgate",
            timeout=config.smtp.timeout,
            loop=loop,
        )

    listen = config.smtp.listen
    return await loop.create_server(factory, host=listen.host, port=listen.port)
