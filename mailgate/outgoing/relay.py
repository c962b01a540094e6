"""Hand mail to the smarthost with aiosmtplib: a few reused sessions, every error sorted into retry or fail."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import socket
import time
import unicodedata
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Protocol

import aiosmtplib

from mailgate.config import RelayConfig
from mailgate.outgoing import transaction

log = logging.getLogger("mailgate.relay")

# A session idle longer than this is probed with NOOP before reuse: relays drop idle clients
# (Postfix's smtpd_timeout is 300 s, many providers' far shorter). One used a moment ago is
# still open, and probing it would cost a round trip per mail.
IDLE_PROBE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Result:
    """What the relay said about one mail."""

    ok: bool
    permanent: bool  # a 5xx: trying again will not help
    code: int | None
    message: str
    unexpected: bool = False  # not the relay's answer but an error of ours: retried a few times only


class Delivery(Protocol):
    """What the sender needs of a relay: the SMTP Relay here, or maildir.MaildirRelay (a folder)."""

    config: RelayConfig

    async def send(self, mail_from: str, rcpt: str, raw: bytes) -> Result: ...

    async def close(self) -> None: ...


# What ends an address on an SMTP command line or starts a new command (aiosmtplib checks the
# same); control characters as well, since a garbled From header can carry any of them.
_UNSAFE = re.compile(r'[\x00-\x20\x7f<>"\u0085\u2028\u2029]')


@dataclass(frozen=True, slots=True)
class Mailbox:
    """An address as it goes on MAIL FROM or RCPT TO."""

    address: str
    utf8: bool  # RFC 6531: a non-ASCII local part (or a domain with no ASCII form) needs SMTPUTF8


def envelope(mail_from: str, rcpt: str) -> tuple[Mailbox, Mailbox] | Result:
    """Both envelope addresses as they go on the wire, or the permanent failure every delivery
    (smarthost or folder) gives a row whose address is no mailbox."""
    sender, recipient = mailbox(mail_from), mailbox(rcpt)
    if sender is None or recipient is None:
        bad = rcpt if recipient is None else mail_from
        return Result(False, True, None, f"not a deliverable mailbox: {bad[:200]!r}")
    return sender, recipient


def _invisible(address: str) -> bool:
    """Unicode spaces, controls and format characters (NBSP, U+202E, zero-width...): no real mailbox has them."""
    return not address.isascii() and any(
        ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in address if not ch.isascii()
    )


# dot-atom@dot-atom in the letters nearly every address uses: already its envelope form, which
# parseaddr reads back unchanged (the check below costs ~10 µs per address, twice per mail sent).
_PLAIN = re.compile(r"[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


@functools.lru_cache(maxsize=4096)  # agents' and regular customers' addresses come again and again
def mailbox(address: str) -> Mailbox | None:
    """The envelope form of an address, or None when it is no mailbox at all (garbage from a From header).

    A non-ASCII domain with an ASCII local part goes as its IDNA A-label (RFC 5891), which every
    relay takes; only a non-ASCII local part needs the relay's SMTPUTF8.
    """
    if _PLAIN.fullmatch(address):
        return Mailbox(address, False)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or _UNSAFE.search(address) or _invisible(address):
        return None
    if not domain.isascii():
        with contextlib.suppress(UnicodeError):  # an empty or over-long label has no A-label
            domain = domain.encode("idna").decode("ascii")
    spec = f"{local}@{domain}"
    # parseaddr is what aiosmtplib puts on the wire: it must not read another address out of it
    # (a comment, a route, "a@x)<b@y>": CVE-2023-27043).
    if parseaddr(spec)[1] != spec:
        return None
    return Mailbox(spec, not spec.isascii())


def _headers_utf8(raw: bytes) -> bool:
    """Whether the header section has raw UTF-8 (RFC 6532): such a mail may only go with SMTPUTF8."""
    end = raw.find(b"\r\n\r\n")
    return not (raw if end < 0 else raw[:end]).isascii()


def _classify(exc: BaseException) -> Result:
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return Result(False, True, None, f"relay does not offer what this mail needs: {exc}")
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
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # with when each was last used (monotonic)
        self._slots = asyncio.Semaphore(config.connections)
        self.idle_probe = IDLE_PROBE_SECONDS

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

    def use(self, config: RelayConfig) -> None:
        """A reloaded [relay] (e.g. a rotated password_file): idle sessions logged in with the old
        settings are closed, and one in flight is closed when it finishes; new ones use the new."""
        if config == self.config:
            return
        self.config = config
        idle, self._idle = self._idle, []
        for client, _used in idle:
            with contextlib.suppress(Exception):
                client.close()
        log.info("relay.reconfigured host=%s port=%s security=%s", config.host, config.port, config.security)

    def _keep(self, client: aiosmtplib.SMTP, config: RelayConfig) -> None:
        if config is self.config:
            self._idle.append((client, time.monotonic()))
        else:
            with contextlib.suppress(Exception):
                client.close()

    async def _session(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, used = self._idle.pop()
            try:
                if client.is_connected:
                    if time.monotonic() - used >= self.idle_probe:
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
        if client.is_ehlo_or_helo_needed:
            # Now, not inside sendmail: whether SMTPUTF8 is offered decides how a mail goes.
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                if not client.is_connected:
                    raise
                await client.helo()
        return client

    async def send(self, mail_from: str, rcpt: str, raw: bytes) -> Result:
        """Deliver one mail to one recipient; never raises (but for cancellation)."""
        checked = envelope(mail_from, rcpt)
        if isinstance(checked, Result):
            log.warning("relay.refused rcpt=%r permanent=True reason=%s", rcpt[:200], checked.message)
            return checked
        sender, recipient = checked
        utf8 = sender.utf8 or recipient.utf8 or _headers_utf8(raw)
        async with self._slots:
            config = self.config
            client: aiosmtplib.SMTP | None = None
            try:
                async with asyncio.timeout(self.config.timeout * 4):
                    client = await self._session()
                    if utf8 and not client.supports_extension("smtputf8"):
                        # Nothing was sent in this session yet: it stays good for the next mail.
                        self._keep(client, config)
                        client = None
                        result = Result(False, True, None, "relay does not offer SMTPUTF8, which this mail needs"
                                        " (a non-ASCII address or UTF-8 headers, RFC 6531)")
                        log.warning("relay.refused rcpt=%r permanent=True reason=%s", rcpt, result.message)
                        return result
                    data, size = transaction.wire_data(raw)
                    options = [f"SIZE={size}"] if client.supports_extension("size") else []  # RFC 1870
                    if utf8:
                        options.append("SMTPUTF8")
                    if not raw.isascii() and client.supports_extension("8bitmime"):
                        options.append("BODY=8BITMIME")  # RFC 6152: 8-bit data announced, never assumed
                    response = await transaction.send(client, sender.address, recipient.address, data, options,
                                                      utf8=utf8)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    await _close(client)
                result = _classify(exc)
                # An unreachable or refusing relay is trouble the operator must see (WARNING), not routine.
                log.warning("relay.refused rcpt=%r permanent=%s reason=%r", rcpt, result.permanent, result.message)
                return result
            except Exception as exc:
                # Not the relay's answer: a bug, or a mail aiosmtplib cannot put on the wire. The
                # session may be mid-transaction: drop it. The worker must live on to send the rest.
                if client is not None:
                    await _close(client)
                reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]  # one log line
                log.error("relay.error rcpt=%r reason=%s", rcpt, reason)
                return Result(False, isinstance(exc, ValueError), None, reason, unexpected=True)
            self._keep(client, config)
            return Result(True, False, 250, response.message)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _used in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                async with asyncio.timeout(2):
                    await client.quit()
            await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        client.close()
