"""Log lines come out as logging.Formatter would write them (then masked), on the fast path and off it."""

from __future__ import annotations

import logging
import sys

from mailgate import obs

TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def record(msg: str, args: tuple[object, ...] = (), *, created: float = 1_790_000_000.25, level: int = logging.INFO,
           exc: bool = False, stack: str | None = None, name: str = "mailgate.spool") -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad mail for support+a-7-aino-zazzaan2p3zzmurg@example.test")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord(name, level, __file__, 1, msg, args, exc_info, sinfo=stack)
    rec.created, rec.msecs = created, (created - int(created)) * 1000
    return rec


CASES = [
    ("spool.stored id=%d source=%s size=%d ref=%s duplicate=%s", (14, "smtp", 467, "-", False)),
    ("outbox.sent id=3 rcpt=%r reply_to=%s", ("ann@customer.test", "support+r-1042-5dci6weareqf3jq7@example.test")),
    ("ticket.opened message_id=<mg.r-1042-5dci6weareqf3jq7.a1b2c3d4e5f6@example.test>", ()),
    ("a line\nwith a second line and 100%% done", ()),
    ("no args but a literal %s stays", ()),
]
TIMES = [1_790_000_000.0, 1_790_000_000.999, 1_790_000_001.0005, 1_790_000_001.5, 1_790_086_400.123]


def fresh_records() -> list[logging.LogRecord]:
    out = [record(m, a, created=t) for m, a in CASES for t in TIMES]
    out += [record(m, a, exc=True) for m, a in CASES[:2]]
    out += [record(CASES[0][0], CASES[0][1], stack="Stack (most recent call last):\n  frame")]
    out += [record("relay.refused", level=lv) for lv in (logging.DEBUG, logging.WARNING, logging.ERROR, 45)]
    return out


def test_text_lines_match_logging_formatter_masked() -> None:
    ours, reference = obs.TextFormatter(), logging.Formatter(TEXT)
    for mine, theirs in zip(fresh_records(), fresh_records(), strict=True):
        assert ours.format(mine) == obs.mask(reference.format(theirs))


def test_journald_lines_match_logging_formatter_masked_and_prefixed() -> None:
    ours, reference = obs.JournaldFormatter(), logging.Formatter("%(name)s %(message)s")
    for mine, theirs in zip(fresh_records(), fresh_records(), strict=True):
        level = theirs.levelno
        prefix = f"<{ {10: 7, 20: 6, 30: 4, 40: 3, 50: 2}.get(level, 6 if level < 30 else 3)}>"
        expected = "\n".join(prefix + line for line in obs.mask(reference.format(theirs)).splitlines())
        assert ours.format(mine) == expected


def test_a_mac_is_masked_wherever_it_is_and_other_text_is_left_alone() -> None:
    assert obs.mask("rcpt=support+a-7-aino-zazzaan2p3zzmurg@example.test") == "rcpt=support+a-7-aino-***@example.test"
    assert obs.mask("x-r-1042-5dci6weareqf3jq7") == "x-r-1042-***"
    plain = "spool.stored id=14 ref=- date=2026-11-30 uid=abcdefghijklmnopq-x"
    assert obs.mask(plain) is plain
    assert obs.mask("ref=abcdefghijklmnop-abcdefghijklmnop") == "ref=abcdefghijklmnop-abcdefghijklmnop"
