"""The relay's own MAIL/RCPT/DATA against a real SMTP server: bytes, SIZE=, refusals, and the aiosmtplib parts it uses."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.metadata import version

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from aiosmtplib.protocol import PERIOD_REGEX, SMTPProtocol, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from mailgate.config import RelayConfig
from mailgate.outgoing.relay import Relay
from mailgate.outgoing.transaction import wire_data


@dataclass
class Recorder:
    """Keeps every envelope as the server saw it; answers MAIL/RCPT/DATA with the replies it is given."""

    got: list[tuple[str, list[str], list[str], bytes]] = field(default_factory=list)
    mail_reply: str | None = None
    rcpt_reply: str | None = None
    data_reply: str | None = None
    sessions: int = 0

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from, envelope.mail_options = address, list(options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        self.got.append((envelope.mail_from or "", list(envelope.rcpt_tos), list(envelope.mail_options),
                         envelope.original_content or b""))
        return "250 2.0.0 queued as 42"


@contextlib.asynccontextmanager
async def serving(recorder: Recorder) -> AsyncIterator[Relay]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(recorder, hostname="relay.test", decode_data=False, enable_SMTPUTF8=True),
        host="127.0.0.1", port=0,
    )
    relay = Relay(RelayConfig(port=int(server.sockets[0].getsockname()[1]), connections=1, timeout=10), "mailgate.test")
    try:
        yield relay
    finally:
        await relay.close()
        server.close()
        await server.wait_closed()


CUSTOMER_TEXT = (
    b"From: Support <support@example.test>\r\nTo: <ann@customer.test>\r\nSubject: Re: dots\r\n\r\n"
    b"You wrote:\r\n.\r\n..\r\n.signature follows\r\n...and a lone dot above\r\n"
)


@pytest.mark.asyncio
async def test_lines_starting_with_a_dot_arrive_as_written_with_their_size() -> None:
    recorder = Recorder()
    async with serving(recorder) as relay:
        result = await relay.send("bounces+b-1@example.test", "ann@customer.test", CUSTOMER_TEXT)
        assert result.ok and result.code == 250, result
        assert result.message == "2.0.0 queued as 42"
        mail_from, rcpts, options, raw = recorder.got[0]
    assert (mail_from, rcpts) == ("bounces+b-1@example.test", ["ann@customer.test"])
    assert raw == CUSTOMER_TEXT  # each leading dot doubled once on the wire and removed once by the server
    assert f"SIZE={len(CUSTOMER_TEXT)}" in options


@pytest.mark.asyncio
async def test_lone_line_feeds_go_as_crlf_and_non_ascii_as_8bitmime_and_smtputf8() -> None:
    recorder = Recorder()
    async with serving(recorder) as relay:
        unix = b"Subject: unix\n\nline\n.dot\n"
        assert (await relay.send("support@example.test", "bob@customer.test", unix)).ok
        utf8 = "From: support@example.test\r\nSubject: Grüße\r\n\r\nHallo Jürgen\r\n".encode()
        assert (await relay.send("support@example.test", "jürgen@müller.test", utf8)).ok
    assert recorder.got[0][3] == b"Subject: unix\r\n\r\nline\r\n.dot\r\n"
    mail_from, rcpts, options, raw = recorder.got[1]
    assert rcpts == ["jürgen@xn--mller-kva.test"]
    assert raw == utf8
    assert {"SMTPUTF8", "BODY=8BITMIME", f"SIZE={len(utf8)}"} <= set(options)
    assert recorder.sessions == 1  # both went over one session


@pytest.mark.parametrize(
    ("where", "reply", "permanent"),
    [("mail", "550 5.7.1 sender refused", True), ("rcpt", "450 4.2.1 mailbox busy", False),
     ("rcpt", "550 5.1.1 no such user", True), ("data", "554 5.6.0 content refused", True),
     ("data", "451 4.3.0 try later", False)],
)
@pytest.mark.asyncio
async def test_a_refusal_is_sorted_and_the_next_mail_goes_on_a_fresh_session(
    where: str, reply: str, permanent: bool
) -> None:
    recorder = Recorder()
    setattr(recorder, f"{where}_reply", reply)
    async with serving(recorder) as relay:
        result = await relay.send("support@example.test", "ann@customer.test", CUSTOMER_TEXT)
        assert not result.ok and result.permanent is permanent and not result.unexpected
        assert result.code == int(reply[:3]) and result.message == reply
        setattr(recorder, f"{where}_reply", None)
        assert (await relay.send("support@example.test", "ann@customer.test", CUSTOMER_TEXT)).ok
    assert [g[3] for g in recorder.got] == [CUSTOMER_TEXT]
    assert recorder.sessions == 2  # the refused transaction's session was closed, not reused mid-transaction


def test_the_aiosmtplib_parts_the_relay_builds_on_are_there() -> None:
    """transaction.py writes DATA through the session's protocol: a new aiosmtplib must be checked first."""
    assert version("aiosmtplib") == "5.1.3"  # pinned in pyproject.toml for this
    assert list(inspect.signature(SMTPProtocol.write).parameters) == ["self", "data"]
    assert "timeout" in inspect.signature(SMTPProtocol.read_response).parameters
    assert "protocol" in aiosmtplib.SMTP(hostname="relay.test").__dict__
    assert inspect.iscoroutinefunction(aiosmtplib.SMTP.execute_command)


# --- the DATA bytes and SIZE=: what aiosmtplib's sendmail would have sent (its own steps are the reference)


def sendmail_data(raw: bytes) -> tuple[bytes, int]:
    normalized = normalize_message_line_endings(raw)
    return PERIOD_REGEX.sub(b"..", normalized) + b".\r\n", len(normalized)


CASES = [
    b"Subject: hi\r\n\r\nHello\r\n",
    b"Subject: hi\r\n\r\nNo final line end",
    # A customer's text with lines that start with a dot: a signature separator, an ellipsis,
    # a lone dot (which would end DATA early if it were not doubled).
    b"Subject: dots\r\n\r\n.signature\r\n...and then\r\n.\r\n..\r\nend.\r\n",
    b".starts with a dot\r\n\r\nbody\r\n",
    b"",
    b".",
    # Lone LF and CR (a forwarded original written on Unix or classic Mac OS) become CRLF.
    b"Subject: unix\n\nline one\n.dot line\nline three\n",
    b"Subject: mac\r\rline\r.dot\r",
    b"mixed\r\r\nends\n\r.x\r\n",
    b"Subject: \xc3\xa4\r\n\r\n\xe2\x82\xac 8-bit\r\n.\xc3\xa4\r\n",
]


def test_fixed_cases_match_sendmail() -> None:
    for raw in CASES:
        assert wire_data(raw) == sendmail_data(raw), raw


def test_a_composed_mail_goes_unchanged_but_for_the_dots() -> None:
    raw = b"From: a@example.test\r\nSubject: x\r\n\r\nquote:\r\n.hidden\r\nbye\r\n"
    data, size = wire_data(raw)
    assert size == len(raw)
    assert data == raw.replace(b"\r\n.hidden", b"\r\n..hidden") + b".\r\n"


@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b".", b"..", b"a", b"\xe9", b" ", b"\r\n."]), max_size=40))
def test_any_mix_of_line_ends_and_dots_matches_sendmail(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    assert wire_data(raw) == sendmail_data(raw)
