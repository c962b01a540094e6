"""Logs an operator can trace a mail by: one event line per stored mail, ticket, sent mail and failure.

A real daemon, real SMTP in, an aiosmtpd sink as the relay that is down at first; the log is read as
the operator reads it (text or JSON lines), and the CLI is run as a process under a fake journal.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import obs, tokens
from mailgate.daemon import started

from .conftest import SECRET, SUPPORT, mail, settle, wait_until, write_config
from .sink import AGENTS, Sink, free_port, relay_section, running_sink, wait_mail
from .test_agent_mail import reply

CUSTOMER = "alice@customer.test"
AINO = "aino@agents.test"
BODY = "the printer is on fire, serial XK-4471"
ANSWER = "We replaced the toner, case 8812 closed"
EVENT_LINE = re.compile(r"^\S+ \S+ (INFO|WARNING|ERROR) (mailgate\.[a-z_.]+) ([a-z_]+\.[a-z_.]+)( \S.*)?$")


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, list[str]]]:
    """The daemon's log stream; the logging state is put back afterwards."""
    stream = io.StringIO()
    formats: list[str] = []
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *obs.THIRD_PARTY)}
    yield stream, formats
    for handler in [h for h in root.handlers if getattr(h, "_mailgate", False)]:
        root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def smtp_reply(port: int, raw: bytes, sender: str, rcpt: str) -> tuple[int, str]:
    """The server's answer to the final dot, as the sending MTA logs it."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mx.customer.test")
        client.mail(sender)
        client.rcpt(rcpt)
        code, text = client.data(raw)
    return code, text.decode()


async def wait_log(stream: io.StringIO, needle: str, timeout: float = 30) -> None:
    await wait_until(lambda: needle in stream.getvalue(), timeout=timeout, what=f"{needle!r} logged")


def parsed(text: str, fmt: str) -> list[dict]:
    """Each line as {level, logger, event, fields...}: JSON as written, text through obs.fields."""
    out = []
    for line in text.splitlines():
        if fmt == "json":
            out.append(json.loads(line))
            continue
        match = EVENT_LINE.match(line)
        assert match, f"not an event line: {line!r}"
        event, values = obs.fields(f"{match.group(3)}{match.group(4) or ''}")
        out.append({"level": match.group(1).lower(), "logger": match.group(2), "event": event, **values})
    return out


@pytest.mark.asyncio
@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_a_mail_in_a_relay_outage_and_a_reply_out_are_traceable(
    tmp_path: Path, captured: tuple[io.StringIO, list[str]], fmt: str
) -> None:
    stream, _ = captured
    relay_port = free_port()  # nothing listens there yet: the relay is down
    extra = relay_section(relay_port, send_delay=0.2) + AGENTS
    config = config_mod.load(write_config(
        tmp_path, extra, gateway='authserv_id = "mx.example.test"', smtp='trusted_peers = ["127.0.0.1"]'))
    obs.setup_logging("INFO", fmt, stream=stream)
    async with started(config) as running:
        raw = mail(sender=f"Alice Customer <{CUSTOMER}>", subject="Printer on fire", body=f"Hello,\n\n{BODY}.\n",
                   message_id="<c1@customer.test>")
        code, text = await asyncio.to_thread(smtp_reply, running.smtp_port, raw, CUSTOMER, SUPPORT)
        assert (code, text) == (250, "2.0.0 Ok: queued as 1")
        await settle(running)
        await wait_log(stream, "outbox.retry")
        async with running_sink(Sink(), port=relay_port) as sink:  # the relay is back
            notice = await wait_mail(sink, AINO, "Printer on fire")
            await wait_mail(sink, CUSTOMER, "Printer on fire")
            answer, rcpt = reply(notice, ANSWER)
            code, text = await asyncio.to_thread(smtp_reply, running.smtp_port, answer, AINO, rcpt)
            assert (code, text) == (250, "2.0.0 Ok: queued as 2")
            await settle(running)
            sent = await wait_mail(sink, CUSTOMER, "Re:")
            assert ANSWER in sent.text()
            await wait_log(stream, "kind=reply" if fmt == "text" else '"kind": "reply"')
    log = stream.getvalue()
    lines = parsed(log, fmt)
    assert {line["logger"].split(".")[0] for line in lines} == {"mailgate"}, "library chatter in the log"
    by_event: dict[str, list[dict]] = {}
    for line in lines:
        assert set(line) >= {"level", "logger", "event"} and line["event"], line
        by_event.setdefault(line["event"], []).append(line)

    stored = by_event["spool.stored"]
    assert [(s["id"], s["source"], s["peer"], s["duplicate"]) for s in stored] == [
        (1, "smtp", "127.0.0.1", False), (2, "smtp", "127.0.0.1", False)]
    assert stored[0]["size"] == len(raw)
    [opened] = by_event["ticket.opened"]
    assert (opened["ticket"], opened["spool"], opened["rule"], opened["queue"], opened["by"]) == (
        1000, 1, "new", "support", "customer")
    [appended] = by_event["ticket.appended"]
    assert (appended["ticket"], appended["spool"], appended["rule"], appended["by"]) == (1000, 2, "token", "agent")
    # The outage: WARNING, with the reason, and never a line at INFO that hides it.
    for event in ("relay.refused", "outbox.retry"):
        assert by_event[event] and all(line["level"] == "warning" for line in by_event[event]), event
    assert "Connect call failed" in by_event["outbox.retry"][0]["reason"]
    sent_lines = {line["kind"]: line for line in by_event["outbox.sent"]}
    assert {"notify", "ack", "reply"} <= set(sent_lines)
    out = sent_lines["reply"]
    assert out["ticket"] == 1000 and out["rcpt"] == CUSTOMER and out["relay"] == "2.0.0 OK queued"
    assert out["message_id"] == "<" + mask_mac(sent.header("Message-ID").strip("<>")) + ">"
    assert all(line["level"] == "info" for line in by_event["outbox.sent"])
    # Nothing a reader of the log could act with or read: no token MAC, no body, no secret.
    assert tokens.find(SECRET.encode(), log) == []
    for token in tokens.find(SECRET.encode(), notice.raw.decode() + sent.raw.decode()):
        assert tokens.make(SECRET.encode(), token) not in log
    for secret in (BODY, ANSWER, SECRET, "XK-4471", "8812"):
        assert secret not in log, secret
    assert re.search(r"\+a-1000-aino-[a-z2-7]{16}@", log) is None


def mask_mac(message_id: str) -> str:
    return re.sub(r"-[a-z2-7]{16}\.", "-***.", message_id)


def test_journald_priorities_when_stderr_is_the_journal(tmp_path: Path) -> None:
    """systemd's JOURNAL_STREAM names stderr: every line carries its syslog priority (sd-daemon(3))."""
    config = write_config(tmp_path)
    err_path = tmp_path / "stderr"
    raw = mail(message_id="<j1@customer.test>", sender="Alice <alice+list@customer.test>")
    with err_path.open("wb") as err:
        st = os.fstat(err.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        env.pop("MAILGATE_LOG_FORMAT", None)
        result = subprocess.run(
            [sys.executable, "-m", "mailgate", "--config", str(config), "ingest", "--no-process",
             "--sender", "alice+list@customer.test", "--recipient", "support@example.test"],
            input=raw, stdout=subprocess.PIPE, stderr=err, env=env, timeout=60,
        )
    assert result.returncode == 0
    lines = err_path.read_text().splitlines()
    assert any(re.fullmatch(r"<6>mailgate\.spool spool\.stored id=1 source=pipe size=\d+ peer=- .*", x) for x in lines), lines
    logged = [x for x in lines if "mailgate." in x]  # the rest is ingest's status line for Postfix
    assert len(logged) >= 2 and all(re.match(r"<[0-7]>mailgate\.", x) for x in logged), lines
    # The same command with stderr elsewhere (a terminal, a file the journal does not own): plain text.
    other = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config), "ingest", "--no-process"],
        input=raw, capture_output=True, env=env, timeout=60,
    )
    assert other.returncode == 0
    assert b"spool.stored id=1" in other.stderr and not other.stderr.startswith(b"<")


def test_journald_formatter_maps_levels_and_prefixes_every_traceback_line() -> None:
    formatter = obs.JournaldFormatter()
    for level, prefix in ((logging.DEBUG, "<7>"), (logging.INFO, "<6>"), (logging.WARNING, "<4>"),
                          (logging.ERROR, "<3>"), (logging.CRITICAL, "<2>")):
        record = logging.LogRecord("mailgate.x", level, __file__, 1, "x.y a=%s", ("1",), None)
        assert formatter.format(record) == f"{prefix}mailgate.x x.y a=1"
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("mailgate.x", logging.ERROR, __file__, 1, "x.failed", (), sys.exc_info())
    text = formatter.format(record)
    assert len(text.splitlines()) > 3 and all(line.startswith("<3>") for line in text.splitlines())


def test_json_fields_keep_quoted_values_whole() -> None:
    assert obs.fields("relay.refused rcpt='a b@x.test' permanent=False reason='451 4.3.0 x=1 later' n=3") == (
        "relay.refused", {"rcpt": "a b@x.test", "permanent": False, "reason": "451 4.3.0 x=1 later", "n": 3})
    # Older lines with an unquoted value that holds spaces keep it whole up to the next key.
    assert obs.fields("outbox.retry id=3 reason=451 4.3.0 try later at=now") == (
        "outbox.retry", {"id": 3, "reason": "451 4.3.0 try later", "at": "now"})
    assert obs.fields("free text from a library") == ("", {"msg": "free text from a library"})
    assert obs.mask("to=support+a-1000-aino-abcdefghijklmnop@example.test") == "to=support+a-1000-aino-***@example.test"
    assert obs.mask("mg.r-1000-abcdefghijklmnop.0f13@x.test alice+list@y.test") == "mg.r-1000-***.0f13@x.test alice+list@y.test"


def test_cli_rejects_an_unknown_level(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(write_config(tmp_path)), "--log-level", "LOUD",
         "check-config"], capture_output=True, timeout=60)
    assert result.returncode == 2 and b"LOUD" in result.stderr
