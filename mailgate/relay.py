"""Hand mail to the smarthost with aiosmtplib: a few reused sessions, every error sorted into retry or fail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass

import aiosmtplib

from mailgate.config import RelayConfig

log = logging.getLogger("mailgate.relay")


@dataclass(frozen=True, slots=True)
class Result:
    """What the relay said about one mail."""

    ok: bool
    permanent: bool  # a 5xx: trying again will not help
    code: int | None
    message: str


def _classify(exc: BaseException) -> Result:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return Result(False, 500 <= first.code < 600, first.code, f"{first.code} {first.message}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # Our credentials, not the mail: keep it and retry while the operator fixes the config.
        return Result(False, False, exc.code, f"relay authentication failed: {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        code = exc.code
        return Result(False, 500 <= code < 600, code, f"{code} {exc.message}")
    # Connection refused, timeouts, a dropped session: the relay may be back soon.
    return Result(False, False, None, f"{type(exc).__name__}: {exc}".strip())


class Relay:
    """Up to `connections` SMTP sessions to the relay, reused while they stay open."""

    def __init__(self, config: RelayConfig, local_hostname: str | None = None) -> None:
        self.config = config
        self.local_hostname = local_hostname
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(config.connections)

    def _client(self) -> aiosmtplib.SMTP:
        c = self.config
        return aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password.get_secret_value() if c.password is not None else None,
            use_tls=c.security == "tls",
            # "none" must mean none: aiosmtplib's default upgrades whenever STARTTLS is offered.
            start_tls=c.security == "starttls",
            timeout=c.timeout,
            local_hostname=self.local_hostname,
        )

    async def _session(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            try:
                if client.is_connected:
                    await client.noop()  # the relay may have closed an idle session meanwhile
                    return client
            except (aiosmtplib.SMTPException, OSError):
                pass
            await _close(client)
        if self.local_hostname is None:
            # Once, not per session (aiosmtplib would ask for every connection); it may touch DNS.
            self.local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = self._client()
        await client.connect()
        return client

    async def send(self, mail_from: str, rcpt: str, raw: bytes) -> Result:
        """Deliver one mail to one recipient; never raises for SMTP or network trouble."""
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                async with asyncio.timeout(self.config.timeout * 4):
                    client = await self._session()
                    refused, response = await client.sendmail(mail_from, [rcpt], raw)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    await _close(client)
                result = _classify(exc)
                log.info("relay.refused rcpt=%s permanent=%s reason=%s", rcpt, result.permanent, result.message)
                return result
            self._idle.append(client)
            if refused:
                code = refused[rcpt].code if rcpt in refused else 450
                text = refused[rcpt].message if rcpt in refused else "refused"
                return Result(False, 500 <= code < 600, code, f"{code} {text}")
            return Result(True, False, 250, response)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                async with asyncio.timeout(2):
                    await client.quit()
            await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        client.close()
