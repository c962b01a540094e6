"""One SMTP/LMTP session's defences: its listener's limits, an idle and junk-command watchdog, the DATA memory budget."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from typing import Any

from aiosmtpd.smtp import SMTP

from mailgate import replies
from mailgate.sources.smtp_limits import Listener

log = logging.getLogger("mailgate.smtp")

# The SIZE= parameter of MAIL FROM (RFC 1870): the size a client announces before sending.
_SIZE = re.compile(r"(?:^|\s)SIZE=(\d{1,15})(?:\s|$)", re.IGNORECASE)
# RFC 5321 4.5.3.1.8: 100 recipients is the minimum a server must take in one transaction.
MAX_RECIPIENTS = 100


def _host(peername: Any) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername or "unknown")


def _declared_size(options: list[str]) -> int | None:
    """SIZE= of MAIL FROM (RFC 1870), or None."""
    match = _SIZE.search(" ".join(options))
    return int(match.group(1)) if match else None


class GuardedSession:
    """Mixed in before aiosmtpd's SMTP/LMTP class: the session obeys its listener's limits.

    aiosmtpd re-arms its timer on every recognised command, NOOP included, and not at all while
    DATA is read: a client sending NOOP every few minutes held its connection forever, while a
    slow but honest upload was cut after `timeout` in total. Here the timer is re-armed only by
    progress: a successful MAIL/RCPT/DATA/AUTH/STARTTLS, each read of DATA, a reply to DATA.
    """

    listener: Listener | None
    transport: asyncio.BaseTransport | None
    _timeout_handle: asyncio.TimerHandle | None
    _timeout_duration: float
    loop: asyncio.AbstractEventLoop
    envelope: Any
    session: Any
    data_size_limit: int | None
    per_recipient = False

    def __init__(self, *args: Any, listener: Listener | None = None, **kwargs: Any) -> None:
        self.listener = listener
        self._admitted: str | None = None
        self._refused = False
        self._armed = False
        self._junk = 0
        self._held = 0
        self._in_data = False
        self._storing = False  # DATA's final dot came: the mail is being stored
        self._last_code = ""
        self._progress_at = float("-inf")  # loop.time() of the last progress
        super().__init__(*args, **kwargs)

    # --- admission -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        listener = self.listener
        if self.transport is None and listener is not None:  # not the second call after STARTTLS
            peer = _host(transport.get_extra_info("peername"))
            reason = listener.admit(peer)
            if reason is not None:
                self._refused = True
                reply = replies.S421_SHUTTING_DOWN if reason == "stopping" else replies.S421_TOO_MANY_CONNECTIONS
                # Written before aiosmtpd sees the connection: no session, no greeting, no timer.
                transport.write(f"{reply}\r\n".encode())  # type: ignore[attr-defined]
                transport.close()
                return
            self._admitted = peer
            listener.sessions.add(self)
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._admitted is not None and self.listener is not None:
            self.listener.sessions.discard(self)
            self.listener.release(self._admitted)
            self._admitted = None
        self._hold(0)
        super().connection_lost(error)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        if self._in_data:
            # Each read of DATA is progress: the reader only wakes at a line ending in a dot or
            # a full buffer, so a slow sender would look idle between those.
            self._progress()
        super().data_received(data)  # type: ignore[misc]

    def eof_received(self) -> bool | None:
        if self._refused:
            return None
        return super().eof_received()  # type: ignore[misc, no-any-return]

    # --- stopping --------------------------------------------------------------------------

    @property
    def in_data(self) -> bool:
        return self._in_data

    @property
    def storing(self) -> bool:
        return self._storing

    @property
    def closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def shut(self) -> None:
        """421 4.3.2 and close: the daemon is stopping. A mail still in DATA is dropped unstored."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._in_data:
            log.warning("smtp.data_cut peer=%s held=%d reason=stopping (the sender retries)", self._admitted, self._held)
        transport.write(f"{replies.S421_SHUTTING_DOWN}\r\n".encode())  # type: ignore[attr-defined]
        transport.close()

    # --- the timer: progress only ----------------------------------------------------------

    def _reset_timeout(self, duration: float | None = None) -> None:
        # aiosmtpd calls this for every recognised command; only its first call (the
        # connection) arms the timer here, progress re-arms it through _progress().
        if not self._armed:
            self._armed = True
            super()._reset_timeout(duration)  # type: ignore[misc]

    def _progress(self) -> None:
        # Progress moves the deadline; the timer itself is only re-armed when it fires early
        # (_timeout_cb) or was cancelled: a mail brings ~6 such moments, and a cancel and new
        # call_later for each cost more than the rest of this class per mail.
        if self.transport is not None:
            self._progress_at = self.loop.time()
            handle = self._timeout_handle
            if handle is None or handle.cancelled():
                SMTP._reset_timeout(self)  # type: ignore[arg-type]

    def _timeout_cb(self) -> None:
        left = self._progress_at + self._timeout_duration - self.loop.time()
        if left > 0 and self.transport is not None:
            self._timeout_handle = self.loop.call_later(left, self._timeout_cb)
            return
        log.info(
            "smtp.timeout peer=%s in_data=%s junk=%d",
            self._admitted or _host(getattr(self.session, "peer", None)), self._in_data, self._junk,
        )
        super()._timeout_cb()  # type: ignore[misc]

    async def push(self, status: Any) -> None:
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else str(status)
        self._last_code = text[:3]
        await super().push(status)  # type: ignore[misc]

    # MAIL, RCPT, DATA, AUTH and STARTTLS move a mail forward when they succeed. NOOP, RSET, VRFY,
    # EXPN, HELP, HELO/EHLO, or one of the former refused, are junk: they keep a session alive
    # without bringing a message any closer.

    async def _counted(self, command: str) -> None:
        """After MAIL/RCPT/DATA/AUTH/STARTTLS: success is progress, a refusal counts as junk."""
        if self._last_code[:1] in ("2", "3"):
            self._progress()
            if command == "DATA":
                self._junk = 0  # a mail came in: the client is a mailer, not a squatter
            return
        await self._junk_over(command)

    async def _junk_over(self, command: str) -> bool:
        """Count one junk command; past the limit answer 421 and close (True)."""
        self._junk += 1
        limit = self.listener.junk_limit if self.listener is not None else None
        if limit is None or self._junk <= limit or self.transport is None:
            return False
        log.warning("smtp.junk_limit peer=%s commands=%d last=%s", self._admitted, self._junk, command)
        await self.push(str(replies.S421_TOO_MANY_COMMANDS))
        self.transport.close()
        return True

    # --- commands --------------------------------------------------------------------------

    @functools.wraps(SMTP.smtp_NOOP)
    async def smtp_NOOP(self, arg: str) -> None:
        if not await self._junk_over("NOOP"):
            await super().smtp_NOOP(arg)  # type: ignore[misc]

    @functools.wraps(SMTP.smtp_RSET)
    async def smtp_RSET(self, arg: str) -> None:
        if not await self._junk_over("RSET"):
            await super().smtp_RSET(arg)  # type: ignore[misc]

    @functools.wraps(SMTP.smtp_VRFY)
    async def smtp_VRFY(self, arg: str) -> None:
        if not await self._junk_over("VRFY"):
            await super().smtp_VRFY(arg)  # type: ignore[misc]

    @functools.wraps(SMTP.smtp_EXPN)
    async def smtp_EXPN(self, arg: str) -> None:
        if not await self._junk_over("EXPN"):
            await super().smtp_EXPN(arg)  # type: ignore[misc]

    @functools.wraps(SMTP.smtp_HELP)
    async def smtp_HELP(self, arg: str) -> None:
        if not await self._junk_over("HELP"):
            await super().smtp_HELP(arg)  # type: ignore[misc]

    @functools.wraps(SMTP.smtp_HELO)
    async def smtp_HELO(self, hostname: str) -> None:
        if not await self._junk_over("HELO"):
            await super().smtp_HELO(hostname)  # type: ignore[misc]

    @functools.wraps(SMTP.smtp_EHLO)
    async def smtp_EHLO(self, hostname: str) -> None:
        if not await self._junk_over("EHLO"):
            await super().smtp_EHLO(hostname)  # type: ignore[misc]

    @functools.wraps(SMTP.smtp_AUTH)
    async def smtp_AUTH(self, arg: str) -> None:
        await super().smtp_AUTH(arg)  # type: ignore[misc]
        await self._counted("AUTH")

    @functools.wraps(SMTP.smtp_STARTTLS)
    async def smtp_STARTTLS(self, arg: str) -> None:
        await super().smtp_STARTTLS(arg)  # type: ignore[misc]
        await self._counted("STARTTLS")

    @functools.wraps(SMTP.smtp_MAIL)
    async def smtp_MAIL(self, arg: str | None) -> None:
        declared = _declared_size([arg or ""])
        listener = self.listener
        fits_limit = declared is None or not self.data_size_limit or declared <= self.data_size_limit
        if listener is not None and fits_limit and not listener.room(declared or 1):
            # Refused before any byte of it comes; a larger SIZE= than the limit gets aiosmtpd's 552.
            self._memory_full(declared or 0)
            await self.push(str(replies.S452_NO_MEMORY))
        else:
            await super().smtp_MAIL(arg)  # type: ignore[misc]
        await self._counted("MAIL")

    @functools.wraps(SMTP.smtp_RCPT)
    async def smtp_RCPT(self, arg: str | None) -> None:
        if self.envelope is not None and len(self.envelope.rcpt_tos) >= MAX_RECIPIENTS:
            # Only support addresses are accepted, but support+anything is one of them: the
            # list (and the spool row that keeps it) would otherwise grow without end.
            await self.push(str(replies.S452_TOO_MANY_RECIPIENTS))
        else:
            await super().smtp_RCPT(arg)  # type: ignore[misc]
        await self._counted("RCPT")

    @functools.wraps(SMTP.smtp_DATA)
    async def smtp_DATA(self, arg: str) -> None:
        envelope = self.envelope
        listener = self.listener
        if listener is not None and envelope is not None and envelope.rcpt_tos and not arg:
            declared = _declared_size(list(envelope.mail_options))
            if not listener.room(declared or 1):
                self._memory_full(declared or 0)
                await self.push(str(replies.S452_NO_MEMORY))  # one reply: the DATA command itself failed
                await self._counted("DATA")
                return
        self._in_data = True
        try:
            await super().smtp_DATA(arg)  # type: ignore[misc]
        finally:
            self._in_data = self._storing = False
            self._hold(0)
            self._progress()  # the reply is out: the client's turn again
            if listener is not None:
                listener.changed.set()
        if listener is not None and listener.stopping:
            self.shut()  # its mail is answered; the next one goes to another server, or to us after the restart
            return
        await self._counted("DATA")

    # --- DATA: the reader's hooks ----------------------------------------------------------

    def _data_read(self, held: int) -> str | None:
        """After each read of DATA: re-arm the timer; hold `held` bytes, or the refusal if they do not fit."""
        self._progress()
        listener = self.listener
        if listener is None:
            return None
        if held > self._held and not listener.room(held - self._held):
            self._memory_full(held)
            self._hold(0)  # the reader drops what it kept and only looks for the final dot
            count = len(self.envelope.rcpt_tos) if self.per_recipient and self.envelope is not None else 1
            return "\r\n".join(str(replies.S452_NO_MEMORY) for _ in range(max(count, 1)))
        self._hold(held)
        return None

    def _data_done(self) -> None:
        """The final dot came: no timer while mailgate stores the mail (smtp.busy_timeout bounds that)."""
        self._storing = True
        handle = self._timeout_handle
        if handle is not None:
            handle.cancel()

    def _hold(self, held: int) -> None:
        if self.listener is not None and held != self._held:
            self.listener.hold(held - self._held)
        self._held = held

    def _memory_full(self, size: int) -> None:
        listener = self.listener
        assert listener is not None
        listener.data_refusals += 1
        listener.changed.set()
        log.warning(
            "smtp.data_memory_full peer=%s size=%d held=%d budget=%d",
            self._admitted, size, listener.data_held, listener.data_budget,
        )
