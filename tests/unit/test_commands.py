"""Agent commands: subject tags and body lines, their values, errors and a round trip (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate import commands
from mailgate.commands import Command

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
HEL = ZoneInfo("Europe/Helsinki")


def parse(subject: str, body: str = "", tz: str = "UTC") -> commands.Parsed:
    return commands.parse(subject, body, now=NOW, tz=tz)


def test_subject_tags_anywhere_case_insensitive_and_removed() -> None:
    p = parse("RE: [Status: Closed] [#1000] Printer [EXTERNAL] [PRIORITY:urgent]")
    assert [(c.name, c.value) for c in p.commands] == [("status", "closed"), ("priority", "urgent")]
    assert p.subject == "RE: [#1000] Printer [EXTERNAL]"  # the ticket tag and foreign brackets stay
    assert p.errors == ()


def test_outlook_tag_after_re_and_every_command() -> None:
    subject = ("RE: [queue:billing] [assign:me] [tag:+vip -spam, urgent] [category:Hardware fault] [comment] "
               "[cancel] [take] [next] [list:mine] [send] New request [#1000]: x")
    p = parse(subject)
    assert {c.name: c.value for c in p.commands} == {
        "queue": "billing", "assign": "me", "tag": "+vip +urgent -spam", "category": "Hardware fault",
        "note": "", "cancel": "", "take": "", "next": "", "list": "mine", "send": "",
    }
    tag = p.get("tag")
    assert tag is not None and tag.add == ("vip", "urgent") and tag.remove == ("spam",)
    assert p.subject == "RE: New request [#1000]: x"


def test_body_commands_only_at_the_very_top() -> None:
    body = "\n#status resolved\n#Snooze: monday\n#note\n\nThanks, fixed.\n#priority high\n> quoted #status open\n"
    p = parse("Re: x", body)
    assert [c.name for c in p.commands] == ["status", "snooze", "note"]
    assert p.body == "Thanks, fixed.\n#priority high\n> quoted #status open"
    # A hashtag that is no command ends the block and stays text.
    p = parse("x", "#1 thing: the printer\n#status closed\n")
    assert p.commands == () and p.body.startswith("#1 thing")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("[status:done]", "unknown status"),
        ("[priority:asap]", "unknown priority"),
        ("[snooze:someday]", "cannot read the date"),
        ("[snooze:2020-01-01 09:00]", "in the past"),
        ("[snooze:2099-01-01]", "more than two years"),
        ("[queue:Bad Name!]", "not a queue name"),
        ("[assign:]", "needs a value"),
        ("[note:x]", "takes no value"),
        ("[tag:+ok -B@d]", "is not a tag"),
        ("[list:archive]", "unknown list"),
        ("[stauts:closed]", "did you mean [status"),
    ],
)
def test_each_bad_tag_is_named_with_its_reason(raw: str, reason: str) -> None:
    p = parse(f"Re: {raw} [status:open] subject")
    assert [e.raw for e in p.errors] == [raw]
    assert reason in p.errors[0].reason
    assert [c.name for c in p.commands] == ["status"]
    assert raw not in p.subject  # removed even when wrong: it never reaches the customer


def test_contradicting_twins_are_an_error_equal_ones_are_not() -> None:
    p = parse("[status:open] [status:closed]")
    assert len(p.errors) == 1 and "contradicts" in p.errors[0].reason
    p = parse("[status:closed] x", "#status closed\nbody")
    assert p.errors == () and len(p.commands) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3d", datetime(2026, 11, 28, 12, 0, tzinfo=UTC)),
        ("4h", datetime(2026, 11, 25, 16, 0, tzinfo=UTC)),
        ("90 minutes", datetime(2026, 11, 25, 13, 30, tzinfo=UTC)),
        ("monday", datetime(2026, 11, 30, 9, 0, tzinfo=HEL)),
        ("wednesday", datetime(2026, 12, 2, 9, 0, tzinfo=HEL)),  # today is Wednesday: next week's
        ("maanantai", datetime(2026, 11, 30, 9, 0, tzinfo=HEL)),
        ("piątek", datetime(2026, 11, 27, 9, 0, tzinfo=HEL)),
        ("hétfő", datetime(2026, 11, 30, 9, 0, tzinfo=HEL)),
        ("tomorrow", datetime(2026, 11, 26, 9, 0, tzinfo=HEL)),
        ("2026-12-01 09:00", datetime(2026, 12, 1, 9, 0, tzinfo=HEL)),
        ("2026-12-01", datetime(2026, 12, 1, 9, 0, tzinfo=HEL)),
        ("01.12.2026 14:30", datetime(2026, 12, 1, 14, 30, tzinfo=HEL)),
    ],
)
def test_snooze_values_in_the_configured_time_zone(value: str, expected: datetime) -> None:
    until = commands.snooze_until(value, NOW, HEL)
    assert until == expected and isinstance(until, datetime) and until.tzinfo is not None


# -- round trip ------------------------------------------------------------------------------------

_valid = st.one_of(
    st.sampled_from(commands.STATUSES).map(lambda v: Command("status", v)),
    st.sampled_from(("low", "normal", "high", "urgent")).map(lambda v: Command("priority", v)),
    st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True).map(lambda v: Command("queue", v)),
    st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True).map(lambda v: Command("assign", v)),
    st.sampled_from(("3d", "4h", "monday", "2026-12-01 09:00")).map(lambda v: Command("snooze", v)),
    st.sampled_from(commands.LISTS).map(lambda v: Command("list", v)),
    st.sampled_from(("note", "cancel", "take", "next", "send")).map(lambda n: Command(n)),
)
# Subject words that are not tags: no brackets (a "[x]" of the agent's stays in the subject anyway).
_word = st.text(st.characters(blacklist_characters="[]\r\n\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029",
                              blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(_valid, max_size=6, unique_by=lambda c: c.name), st.lists(_word, max_size=6), st.randoms())
def test_round_trip_subject(cmds: list[Command], words: list[str], rnd: object) -> None:
    parts: list[str] = [*words]
    for command in cmds:
        parts.insert(rnd.randint(0, len(parts)), command.render())  # type: ignore[attr-defined]
    parsed = parse(" ".join(parts), tz="Europe/Helsinki")
    assert parsed.errors == ()
    assert sorted((c.name, c.value) for c in parsed.commands) == sorted((c.name, c.value) for c in cmds)
    assert parsed.subject == " ".join(words)


@settings(max_examples=200, deadline=None)
@given(st.lists(_valid, min_size=1, max_size=6, unique_by=lambda c: c.name), st.text(max_size=80))
def test_round_trip_body(cmds: list[Command], text: str) -> None:
    lines = [f"#{c.name} {c.value}".rstrip() for c in cmds]
    tail = text if not text.lstrip().startswith("#") else "x" + text
    parsed = parse("s", "\n".join(lines) + "\n\n" + tail)
    assert parsed.errors == ()
    assert [(c.name, c.value) for c in parsed.commands] == [(c.name, c.value) for c in cmds]
    assert parsed.body == "\n".join(tail.splitlines()).strip("\n") or not tail.strip()


# -- customer text in subjects mailgate writes, and tags an agent did not add --------------------------


@given(st.text(alphabet="[]:+ abcdefghijklmnopqrstuvwxyzPRIOTY#-@.", max_size=60))
@settings(max_examples=300, deadline=None)
def test_neutralised_customer_text_holds_no_tag(text: str) -> None:
    p = parse(commands.neutralise(text))
    assert p.commands == () and p.errors == ()


def test_neutralise_keeps_what_is_not_a_command() -> None:
    assert commands.neutralise("[EXTERNAL] [#1000] [JIRA-12] Help [Priority: urgent] [stauts:x] [status:[prio:x]]") == (
        "[EXTERNAL] [#1000] [JIRA-12] Help (Priority: urgent) (stauts:x) (status:(prio:x))")


def test_only_tags_added_to_the_answered_subject_count() -> None:
    answered = "Invoice [priority:urgent] [forward+notes:attacker@evil.test] [stauts:x]"
    p = commands.parse(f"RE: [priority:high] {answered}", "", now=NOW, inherited=answered)
    assert [(c.name, c.value) for c in p.commands] == [("priority", "high")] and p.errors == ()
    # The same tag once more than in the answered subject: the agent wrote it herself.
    p = commands.parse(f"Re: [priority:urgent] {answered}", "", now=NOW, inherited=answered)
    assert [(c.name, c.value) for c in p.commands] == [("priority", "urgent")]
    # Whitespace and case changed by a mail client: still the same tag.
    p = commands.parse("Re: Invoice [Priority:  urgent]", "", now=NOW, inherited=answered)
    assert p.commands == ()
