"""One SMTP mail transaction (MAIL, RCPT, DATA) on an open aiosmtplib session, for envelopes already checked.

aiosmtplib's sendmail() re-parses both addresses four times with email.utils.parseaddr and runs a
line-ending regex over the whole message twice (once for SIZE=, once for DATA) and a dot-stuffing
regex once: about a tenth of a millisecond per mail sent, on the thread that also takes mail in.
The envelope here comes from relay.mailbox() (already its wire form: no spaces, brackets, quotes
or controls), and the rows are composed by mailgate with CRLF line ends, so both are only checked
(with C-speed byte counts) and otherwise go as they are.

MAIL and RCPT go through SMTP.execute_command (public); the message itself through the session's
protocol (write, then read_response): aiosmtplib has no public call that sends DATA without
re-normalising it. pyproject pins aiosmtplib for that, and tests/integration/test_relay_wire.py
fails if those parts change.
"""

from __future__ import annotations

import re

import aiosmtplib

# What aiosmtplib's DATA does to a message (RFC 5321 2.3.8: lines end in CRLF; a lone CR or LF
# becomes one), applied only to a message that has a lone CR or LF.
_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")


def wire_data(raw: bytes) -> tuple[bytes, int]:
    """(what goes after the 354: CRLF lines, dot-stuffed, ending in CRLF.CRLF; its SIZE= of RFC 1870).

    The size is the message's before dot-stuffing, as aiosmtplib (and smtplib) count it.
    """
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") != crlf or raw.count(b"\r") != crlf:
        raw = _LINE_ENDINGS.sub(b"\r\n", raw)
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    size = len(raw)
    # RFC 5321 4.5.2: a line that starts with "." gets another one, which the server removes;
    # a customer's ".signature" or a quoted "..." must arrive as written.
    if raw[:1] == b".":
        raw = b"." + raw
    if b"\n." in raw:
        raw = raw.replace(b"\n.", b"\n..")
    return raw + b".\r\n", size


async def send(
    client: aiosmtplib.SMTP, sender: str, recipient: str, data: bytes, options: list[str], *, utf8: bool
) -> aiosmtplib.SMTPResponse:
    """MAIL FROM, RCPT TO and DATA for one recipient; the 250 of DATA, or the exception sendmail raises.

    `data` is wire_data()'s; `options` the MAIL parameters (SIZE=, BODY=, SMTPUTF8). As with
    sendmail, a refusal raises and leaves the transaction open: the caller closes the session.
    """
    encoding = "utf-8" if utf8 else "ascii"
    response = await client.execute_command(
        b"MAIL", b"FROM:<" + sender.encode(encoding) + b">", *(o.encode("ascii") for o in options)
    )
    if response.code != 250:
        raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)
    response = await client.execute_command(b"RCPT", b"TO:<" + recipient.encode(encoding) + b">")
    if response.code not in (250, 251):
        raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)
    response = await client.execute_command(b"DATA")
    if response.code != 354:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    protocol.write(data)
    response = await protocol.read_response(timeout=client.timeout)
    if response.code != 250:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response
