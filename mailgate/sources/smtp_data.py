"""aiosmtpd's DATA command, read in chunks, with enhanced status codes for a mail that is too big."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import MISSING, syntax
from aiosmtpd.smtp import Envelope as SMTPEnvelope

from mailgate import replies

log = logging.getLogger("mailgate.smtp")

# aiosmtpd's own replies, which its reader sends and the code here must recognise or repeat.
TOO_MUCH = "552 Error: Too much mail data"
TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
# How much DATA one read may take from the stream (its line limit is lifted to this meanwhile).
_DATA_CHUNK = 256 * 1024


class SizeAware:
    """Replace aiosmtpd's bare size reply with an enhanced code, one per recipient on LMTP."""

    envelope: SMTPEnvelope | None
    per_recipient = False

    async def push(self, status: Any) -> None:
        if status == TOO_MUCH:
            count = len(self.envelope.rcpt_tos) if self.per_recipient and self.envelope else 1
            status = "\r\n".join(str(replies.S552_TOO_BIG) for _ in range(max(count, 1)))
        await super().push(status)  # type: ignore[misc]


class BulkData:
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
            await super().smtp_DATA(arg)  # type: ignore[misc]  # paths mailgate never takes
            return
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
                    refusal = TOO_LONG  # aiosmtpd's reader overruns on this line, before counting it
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
                return TOO_LONG, size  # the stream reader overruns before the line counts
            size += length
            if limit and size > limit:
                return TOO_MUCH, size
            if length > line_limit:
                return TOO_LONG, size
            kept.append(line + b"\r\n")
        return None, size
