"""Logging set-up (text, JSON lines, journald priorities; secrets masked) and systemd notification."""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import socket
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

# Libraries that narrate their routine at INFO: aiosmtpd ~12 lines per SMTP connection, APScheduler
# 2 lines per timer tick (~35,000 a day), aiosqlite every statement at DEBUG. mailgate logs its own
# line for each event that matters, so these speak only of trouble unless the operator asks.
THIRD_PARTY = ("mail.log", "apscheduler", "aiosqlite", "imapclient", "asyncio", "aiosmtplib")
FORMATS = ("auto", "text", "json", "journald")

# sd-daemon(3): a "<N>" line prefix is the syslog priority journald files the line under.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

# A token's MAC ("a-1042-aino-k3j5…": 16 base32 characters) is what lets its holder act on a
# ticket: an agent's reply address (support+a-…@) proves the agent, and our Message-IDs and VERP
# return paths carry one too. Log readers see which token (purpose, ticket, agent), never its MAC.
_TOKEN_MAC = re.compile(r"\b([a-z]-\d+(?:-[a-z0-9_]{1,40})?)-[a-z2-7]{16}\b")
# The tail every MAC match ends in: it starts with a literal, which the regex engine finds by a
# fast scan, where _TOKEN_MAC is tried at every letter (a tenth of the cost on a line without one).
_MAC_TAIL = re.compile(r"-[a-z2-7]{16}\b")
_EVENT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
_KEY = re.compile(r"\s([A-Za-z_][A-Za-z0-9_]*)=")


def mask(text: str) -> str:
    """The line with token MACs replaced, whoever wrote it (ours, a library, a traceback)."""
    if _MAC_TAIL.search(text) is None:
        return text
    return _TOKEN_MAC.sub(r"\1-***", text)


def q(value: object) -> str:
    """A log value: as is when it is one plain word, else quoted (so `key=value` parsing keeps it whole)."""
    text = str(value)
    if text and not any(c.isspace() or c in "'\"=" for c in text):
        return text
    return repr(text)


def fields(message: str) -> tuple[str, dict[str, Any]]:
    """'event.name k=v k2='a b' …' → (event, {k: v, …}); a line that is no event is kept whole as 'msg'.

    A quoted value ('…' or "…", as %r writes it) is unquoted, ` x=` inside it included; an
    unquoted one runs to the next ` key=`, so older lines with spaces in a value (reason=451 4.3.0 …)
    still come out whole. Text before the first key is 'msg'.
    """
    head, _, rest = message.partition(" ")
    if not _EVENT.fullmatch(head):
        return "", {"msg": message}
    out: dict[str, Any] = {}
    text = " " + rest
    match = _KEY.search(text)
    if (text[: match.start()] if match else text).strip():
        out["msg"] = (text[: match.start()] if match else text).strip()
    while match is not None:
        start = match.end()
        end = _quoted_end(text, start)
        following = _KEY.search(text, end if end > 0 else start)
        if end < 0:
            end = following.start() if following else len(text)
        out.setdefault(match.group(1), _value(text[start:end].strip()))
        match = following
    return head, out


def _quoted_end(text: str, start: int) -> int:
    """Where a quoted value starting at start ends (just past its quote, at a space or the end); -1: not quoted."""
    if start >= len(text) or text[start] not in "'\"":
        return -1
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1 if i + 1 == len(text) or text[i + 1].isspace() else -1
        i += 1
    return -1


def _value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        try:
            return str(ast.literal_eval(raw))
        except (ValueError, SyntaxError):
            return raw
    if re.fullmatch(r"-?[0-9]{1,18}", raw):
        return int(raw)
    if raw in ("True", "False"):
        return raw == "True"
    return raw


class TextFormatter(logging.Formatter):
    """'%(asctime)s %(levelname)s %(name)s %(message)s', written out directly for a line without a traceback.

    logging.Formatter renders the time with strftime and the line through a %-format of the
    record's whole __dict__ for each line; a daemon writes several lines per mail, mostly within
    the same second, so the second's text is kept and the line is one f-string. Same output.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:  # the handler's lock serialises format(): no race on these two
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"  # logging's default_msec_format, "%s,%03d"

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return mask(super().format(record))
        record.message = record.getMessage()
        return mask(f"{self.formatTime(record)} {record.levelname} {record.name} {record.message}")


class JournaldFormatter(logging.Formatter):
    """Every line (a traceback's too) prefixed with its priority; journald adds the time itself."""

    def __init__(self) -> None:
        super().__init__("%(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)}>"
        if record.exc_info or record.exc_text or record.stack_info:
            text = super().format(record)
        else:
            record.message = record.getMessage()
            text = f"{record.name} {record.message}"
        return "\n".join(prefix + line for line in mask(text).splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, then the line's key=value fields as keys."""

    def format(self, record: logging.LogRecord) -> str:
        event, values = fields(mask(record.getMessage()))
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
        }
        for key, value in values.items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exc"] = mask(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def stderr_is_journal(stream: TextIO | None = None) -> bool:
    """systemd sets JOURNAL_STREAM=<dev>:<inode> for a service whose output goes to the journal."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = expected.partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False  # a stream without a descriptor (a test runner's buffer) is no journal
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def parse_levels(spec: str) -> tuple[int, dict[str, int]]:
    """'INFO' or 'INFO,apscheduler=DEBUG,mail.log=INFO' → (mailgate's level, {logger: level})."""
    level = logging.INFO
    named: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, eq, value = part.rpartition("=")
        number = logging.getLevelName(value.upper())
        if not isinstance(number, int):
            raise ValueError(f"unknown log level {value!r} (DEBUG, INFO, WARNING or ERROR)")
        if eq:
            named[name] = number
        else:
            level = number
    return level, named


def setup_logging(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> logging.Handler | None:
    """One handler on stderr (or stream) in the chosen format; libraries at WARNING unless named in level."""
    root_level, named = parse_levels(level)
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} ({', '.join(FORMATS)})")
    if fmt == "auto":
        fmt = "journald" if stderr_is_journal(stream) else "text"
    formatter: logging.Formatter = {"json": JsonFormatter, "journald": JournaldFormatter}.get(fmt, TextFormatter)()
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_mailgate", False)]
    handler: logging.Handler | None = None
    # As logging.basicConfig: a program that runs our CLI in-process with its own handlers (a test
    # runner capturing stderr and stdout together) keeps them, and --json output stays parseable.
    if stream is not None or len(ours) == len(root.handlers):
        for old in ours:
            root.removeHandler(old)
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(formatter)
        handler._mailgate = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(root_level)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(max(root_level, logging.WARNING))
    for name, value in named.items():
        logging.getLogger(name).setLevel(value)
    return handler


def sd_notify(state: str) -> bool:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True
