"""Routing rules, pure: each condition and action, ordering and continue, defaults, config errors, explain."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailgate import config as config_mod
from mailgate import rules
from mailgate.cli.main import main
from mailgate.config import Config, ConfigError
from mailgate.mail import language
from mailgate.mail.parse import parse

from ..conftest import BILLING, SUPPORT, mail, write_config

QUEUES = """
[[queues]]
name = "general"
addresses = ["support@example.test"]
default_priority = "low"

[[queues]]
name = "billing"
addresses = ["billing@example.test"]
default_priority = "high"

[[queues]]
name = "vip"

[[agents]]
id = "anna"
name = "Anna"
addresses = ["anna@example.test"]
"""


def routed(make_config: Callable[..., Config], rules_toml: str, raw: bytes, rcpts: tuple[str, ...] = (), **kw: str) -> rules.Routing:
    config = make_config(QUEUES + rules_toml, **kw)
    return rules.route(rules.compile_rules(config), parse(raw), rcpts)


def one_rule(make_config: Callable[..., Config], condition: str, raw: bytes, rcpts: tuple[str, ...] = ()) -> rules.Routing:
    return routed(make_config, f'\n[[rules]]\nname = "r"\n{condition}\nqueue = "vip"\n', raw, rcpts)


def with_attachment(inline: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@customer.test"
    msg["To"] = SUPPORT
    msg["Subject"] = "See attached"
    msg.set_content("Hello, the log is attached.")
    if inline:
        msg.add_alternative("<p>Hello <img src='cid:logo'></p>", subtype="html")
        msg.get_payload()[1].add_related(b"\x89PNG....", maintype="image", subtype="png", cid="<logo>")
    else:
        msg.add_attachment(b"log line\n", maintype="text", subtype="plain", filename="app.log")
    return msg.as_bytes()


# --- conditions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "raw", "rcpts", "expected"),
    [
        ('recipient = "billing@example.test"', mail(to=BILLING), (), True),
        ('recipient = "billing@example.test"', mail(to=SUPPORT), (), False),
        # The envelope counts even when To says something else (Bcc, list expansion).
        ('recipient = "billing@example.test"', mail(to=SUPPORT), ("billing@example.test",), True),
        # A +token recipient still is its support address.
        ('recipient = "billing@example.test"', mail(to="billing+abc@example.test"), (), True),
        ('sender = "alice@customer.test"', mail(sender="Alice <ALICE@Customer.test>"), (), True),
        ('sender = { glob = "*@customer.test" }', mail(sender="bob@customer.test"), (), True),
        ('sender = { glob = "*@customer.test" }', mail(sender="bob@customer.test.evil"), (), False),
        ('sender_domain = "customer.test"', mail(sender="x@customer.test"), (), True),
        ('sender_domain = "customer.test"', mail(sender="x@sub.customer.test"), (), False),
        ('sender_domain = { glob = "*.customer.test" }', mail(sender="x@sub.customer.test"), (), True),
        ('subject = "printer on fire"', mail(subject="Printer on FIRE"), (), True),
        ('subject = "printer"', mail(subject="Printer on fire"), (), False),  # exact means the whole value
        ('subject = { regex = "^printer\\\\b" }', mail(subject="Printer on fire"), (), True),
        ('subject = { keywords = ["fire", "smoke"] }', mail(subject="Printer on fire!"), (), True),
        ('subject = { keywords = ["fire"] }', mail(subject="Firewall question"), (), False),  # whole words
        ('subject = { keywords = ["lasku*"] }', mail(subject="Virhe laskussa"), (), True),  # inflected forms
        ('body = { keywords = ["refund"] }', mail(body="Please send a refund.\n"), (), True),
        ('body = { regex = "order #\\\\d{5}" }', mail(body="About order #12345 again\n"), (), True),
        ('header = { name = "X-Priority", regex = "^[12]" }', mail(headers={"X-Priority": "1 (Highest)"}), (), True),
        ('header = { name = "x-priority", regex = "^[12]" }', mail(headers={"X-Priority": "3"}), (), False),
        ('header = { name = "X-Spam-Flag" }', mail(headers={"X-Spam-Flag": "NO"}), (), True),  # present
        ('header = { name = "X-Spam-Flag" }', mail(), (), False),
        ("has_attachment = true", with_attachment(), (), True),
        ("has_attachment = true", mail(), (), False),
        ("has_attachment = false", mail(), (), True),
        ("has_attachment = true", with_attachment(inline=True), (), False),  # a signature logo is no attachment
        ('language = "fi"', mail(body="Hei, tulostin ei toimi. Voisitteko auttaa? Kiitos, terveisin Matti\n"), (), True),
        ('language = ["pl", "hu"]', mail(body="Dzień dobry, drukarka nie działa. Pozdrawiam\n"), (), True),
        ('language = "fi"', mail(body="Hello, the printer is on fire. Thanks\n"), (), False),
        ('kind = "auto-reply"', mail(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}), (), True),
        ('kind = "message"', mail(), (), True),
    ],
)
def test_each_condition(
    make_config: Callable[..., Config], condition: str, raw: bytes, rcpts: tuple[str, ...], expected: bool
) -> None:
    routing = one_rule(make_config, condition, raw, rcpts)
    assert (routing.matched == ["r"]) is expected, routing.to_json()
    # The fast decision and the explaining one agree.
    verdict = routing.trace[0].verdict
    assert verdict is not None and verdict.matched is expected
    assert (routing.queue == "vip") is expected


def test_combinations_all_any_not(make_config: Callable[..., Config]) -> None:
    condition = """all = [
  { sender_domain = { glob = ["customer.test", "*.customer.test"] } },
  { any = [ { subject = { keywords = ["invoice"] } }, { body = { keywords = ["invoice"] } } ] },
  { not = { header = { name = "Auto-Submitted", regex = "^auto-" } } },
]"""
    assert one_rule(make_config, condition, mail(subject="Hi", body="my invoice is wrong\n")).queue == "vip"
    assert one_rule(make_config, condition, mail(sender="x@other.test", subject="invoice")).queue == "general"
    auto = mail(subject="invoice", headers={"Auto-Submitted": "auto-replied"})
    routing = one_rule(make_config, condition, auto)
    assert routing.matched == []
    (trace,) = routing.trace
    assert trace.condition == "rules.0.all.2.not"
    assert trace.why.startswith("not (header Auto-Submitted regex '^auto-': matched")


def test_keys_on_one_table_must_all_hold(make_config: Callable[..., Config]) -> None:
    condition = 'sender_domain = "customer.test"\nsubject = { keywords = ["fire"] }'
    assert one_rule(make_config, condition, mail(subject="fire")).queue == "vip"
    routing = one_rule(make_config, condition, mail(subject="water"))
    assert routing.queue == "general"
    assert routing.trace[0].condition == "rules.0.subject"


# --- actions, order, continue, defaults -------------------------------------------------------


def test_actions(make_config: Callable[..., Config]) -> None:
    routing = routed(
        make_config,
        """
[[rules]]
name = "all-actions"
subject = { keywords = ["fire"] }
queue = "vip"
priority = "urgent"
category = "hardware"
tags = ["fire", "printer"]
assignee = "anna"
suppress_ack = true
""",
        mail(),
    )
    assert (routing.queue, routing.priority, routing.category) == ("vip", "urgent", "hardware")
    assert routing.tags == ("fire", "printer") and routing.assignee == "anna"
    assert routing.ack_suppressed and not routing.quarantined
    assert routing.because["queue"] == "rule 'all-actions'" and routing.because["priority"] == "rule 'all-actions'"


def test_quarantine_also_suppresses_the_acknowledgement(make_config: Callable[..., Config]) -> None:
    routing = routed(make_config, '\n[[rules]]\nname = "spam"\nheader = { name = "X-Spam-Flag", equals = "YES" }\nquarantine = true\n',
                     mail(headers={"X-Spam-Flag": "YES"}))
    assert routing.quarantined and routing.ack_suppressed
    assert routing.because["ack_suppressed"] == "rule 'spam'"


def test_first_match_stops_by_default(make_config: Callable[..., Config]) -> None:
    routing = routed(
        make_config,
        '\n[[rules]]\nname = "one"\nsubject = { keywords = ["fire"] }\nqueue = "vip"\n'
        '\n[[rules]]\nname = "two"\nsubject = { keywords = ["printer"] }\nqueue = "billing"\ntags = ["late"]\n',
        mail(),
    )
    assert routing.queue == "vip" and routing.tags == ()
    assert [(t.rule, t.matched, t.stopped) for t in routing.trace] == [("one", True, True), ("two", None, False)]
    assert routing.trace[1].why == "not evaluated: rule 'one' stopped"


def test_continue_lets_later_rules_add_tags_and_override(make_config: Callable[..., Config]) -> None:
    routing = routed(
        make_config,
        '\n[[rules]]\nname = "tag-all"\ntags = ["seen"]\ncontinue = true\n'
        '\n[[rules]]\nname = "fire"\nsubject = { keywords = ["fire"] }\nqueue = "vip"\npriority = "high"\ntags = ["fire"]\nstop = false\n'
        '\n[[rules]]\nname = "printer"\nsubject = { keywords = ["printer"] }\npriority = "urgent"\ntags = ["printer", "fire"]\n'
        '\n[[rules]]\nname = "never"\nqueue = "billing"\n',
        mail(),
    )
    assert routing.matched == ["tag-all", "fire", "printer"]
    assert routing.tags == ("seen", "fire", "printer")  # added in order, once each
    assert routing.queue == "vip" and routing.priority == "urgent"  # a later match overrides a field
    assert routing.because == {"queue": "rule 'fire'", "priority": "rule 'printer'"}
    assert routing.trace[0].why == "no conditions: always matches"
    assert routing.trace[3].matched is None


def test_default_queue_is_the_recipient_address_queue(make_config: Callable[..., Config]) -> None:
    no_rules = ""
    routing = routed(make_config, no_rules, mail(to=BILLING))
    assert routing.queue == "billing" and routing.priority == "high"  # the queue's default priority
    assert routing.because["queue"] == "recipient billing@example.test feeds queue 'billing'"
    # A To address the mail did not come to (a Bcc to support) does not count: the envelope decides.
    assert routed(make_config, no_rules, mail(to=BILLING), ("support+x@example.test",)).queue == "general"
    assert routed(make_config, no_rules, mail(to="someone@else.test", headers={"Cc": BILLING})).queue == "billing"


def test_default_queue_fallbacks(make_config: Callable[..., Config]) -> None:
    routing = routed(make_config, "", mail(to="someone@else.test"), gateway='default_queue = "vip"')
    assert routing.queue == "vip" and routing.because["queue"].startswith("gateway.default_queue")
    assert routing.priority == "normal"  # vip has no default_priority of its own: normal
    bare = rules.route(rules.compile_rules(make_config()), parse(mail()), ())
    assert bare.queue is None and bare.priority == "normal" and bare.because["priority"] == "default"


def test_a_rule_queue_brings_its_default_priority(make_config: Callable[..., Config]) -> None:
    routing = one_rule(make_config, 'subject = { keywords = ["fire"] }', mail())
    assert routing.queue == "vip" and routing.priority == "normal"
    routing = routed(make_config, '\n[[rules]]\nname = "b"\nqueue = "billing"\n', mail())
    assert routing.priority == "high" and routing.because["priority"] == "default_priority of queue 'billing'"


def test_trace_says_which_condition_decided(make_config: Callable[..., Config]) -> None:
    routing = one_rule(
        make_config,
        'any = [ { sender = "bob@customer.test" }, { subject = { regex = "on f.re" } } ]',
        mail(),
    )
    (trace,) = routing.trace
    assert trace.matched and trace.condition == "rules.0.any.1.subject"
    assert trace.why == "subject regex 'on f.re': matched 'on fire'"
    routing = one_rule(make_config, 'any = [ { sender = "bob@customer.test" }, { subject = "x" } ]', mail())
    (trace,) = routing.trace
    assert not trace.matched and trace.condition == "rules.0.any"
    assert trace.why == (
        "none of: sender equals 'bob@customer.test': no match in 'alice@customer.test'; "
        "subject equals 'x': no match in 'Printer on fire'"
    )


def test_stored_trace_keeps_only_the_deciding_rules(make_config: Callable[..., Config]) -> None:
    toml = "".join(f'\n[[rules]]\nname = "r{i}"\nsubject = "nope {i}"\n' for i in range(50))
    routing = routed(make_config, toml + '\n[[rules]]\nname = "hit"\nsubject = { keywords = ["fire"] }\ntags = ["x"]\n', mail())
    stored = routing.to_json(full=False)
    assert [t["rule"] for t in stored["trace"]] == ["hit"]
    assert (stored["evaluated"], stored["rules"]) == (51, 51)
    assert len(routing.to_json()["trace"]) == 51


# --- config errors ----------------------------------------------------------------------------


def issues(tmp_path: Path, extra: str) -> list[str]:
    path = write_config(tmp_path, QUEUES + extra)
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    return [str(i) for i in caught.value.issues]


def line_of(path: Path, start: str, nth: int = 0) -> int:
    return [i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(start)][nth]


def test_config_rejects_unknown_queue_agent_bad_regex_duplicates(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        '\n[[rules]]\nname = "a"\nsubject = { regex = "(unclosed" }\nqueue = "nowhere"\n'
        '\n[[rules]]\nname = "a"\nany = [ { body = { regex = "[z-a]" } } ]\nassignee = "ghost"\n',
    )
    path = tmp_path / "config.toml"
    assert any(i.startswith(f"{path}:{line_of(path, 'subject =')}: rules.0.subject.regex: bad regex '(unclosed'") for i in found), found
    assert f"{path}:{line_of(path, 'queue = ')}: rules.0.queue: unknown queue 'nowhere'" in found
    assert f"{path}:{line_of(path, 'name = ', 5)}: rules.1.name: duplicate rule name 'a'" in found
    assert any(i.startswith(f"{path}:{line_of(path, 'any =')}: rules.1.any.0.body.regex: bad regex") for i in found), found
    assert f"{path}:{line_of(path, 'assignee')}: rules.1.assignee: unknown agent 'ghost'" in found


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ('subject = { glob = "x", regex = "y" }', "rules.0.subject", "give one of equals, glob, regex, keywords (got glob, regex)"),
        ('header = { regex = "y" }', "rules.0", "a header condition needs the header's 'name'"),
        ('language = "fin"', "rules.0.language.equals", "'fin' is not one of en, fi, pl, hu, de, sv"),
        ('kind = "spam"', "rules.0.kind.equals", "'spam' is not one of message, auto-reply, bounce, bulk"),
        ('priority = "asap"', "rules.0.priority", "Input should be"),
        ('subjcet = "x"', "rules.0.subjcet", "Extra inputs are not permitted"),
        ("stop = true\ncontinue = true", "rules.0", "contradict"),
        ("any = []", "rules.0", "'any' needs at least one condition"),
        ('tags = ["Has Space"]', "rules.0.tags.0", "String should match pattern"),
    ],
)
def test_config_rule_shape_errors(tmp_path: Path, extra: str, key: str, message: str) -> None:
    found = issues(tmp_path, f'\n[[rules]]\nname = "r"\n{extra}\n')
    assert any(f": {key}: " in i and message in i for i in found), found
    assert all(i.startswith(f"{tmp_path / 'config.toml'}:") for i in found)


def test_config_default_queue_must_exist(tmp_path: Path) -> None:
    path = write_config(tmp_path, gateway='default_queue = "nowhere"')
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    assert [str(i) for i in caught.value.issues] == [
        f"{path}:{line_of(path, 'default_queue')}: gateway.default_queue: unknown queue 'nowhere'"
    ]


# --- rules test and check-config --------------------------------------------------------------

EXAMPLE_RULES = """
[[rules]]
name = "invoices"
subject = { keywords = ["invoice", "lasku*"] }
queue = "billing"
tags = ["invoice"]
"""


def test_rules_test_cli_explains_without_a_store(tmp_path: Path) -> None:
    path = write_config(tmp_path, QUEUES + EXAMPLE_RULES)
    eml = tmp_path / "m.eml"
    eml.write_bytes(mail(subject="Invoice 42 is wrong"))
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(path), "rules", "test", str(eml)])
    assert result.exit_code == 0, result.output
    assert "match invoices (rules.0.subject): subject keywords ['invoice', 'lasku*']: matched 'Invoice'  [stop]" in result.output
    assert "queue:          billing   (rule 'invoices')" in result.output
    assert "priority:       high   (default_priority of queue 'billing')" in result.output
    result = runner.invoke(main, ["--config", str(path), "rules", "test", "--json", "--recipient", BILLING, str(eml)])
    data = json.loads(result.output)
    assert data["queue"] == "billing" and data["tags"] == ["invoice"] and data["matched"] == ["invoices"]
    assert data["trace"][0]["condition"] == "rules.0.subject"
    assert not (tmp_path / "mailgate.sqlite3").exists()  # no store touched


def test_check_config_runs_rule_tests(tmp_path: Path) -> None:
    (tmp_path / "m.eml").write_bytes(mail(subject="Virhe laskussa"))
    good = '\n[[rule_tests]]\nfile = "m.eml"\nqueue = "billing"\ntags = ["invoice"]\nrules = ["invoices"]\n'
    path = write_config(tmp_path, QUEUES + EXAMPLE_RULES + good)
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 0, result.output
    assert "1 rule tests passed" in result.output
    bad = '\n[[rule_tests]]\nname = "fi invoice"\nfile = "m.eml"\npriority = "urgent"\n\n[[rule_tests]]\nfile = "gone.eml"\n'
    path = write_config(tmp_path, QUEUES + EXAMPLE_RULES + good + bad)
    result = runner.invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1
    assert (
        f"rule test failed: {path}:{line_of(path, 'priority = ')}: rule_tests.1.priority: "
        "fi invoice: expected 'urgent', got 'high'"
    ) in result.output
    assert f"{path}:{line_of(path, 'file = ', 2)}: rule_tests.2.file: cannot read" in result.output


def test_rule_tests_name_known_rules_and_queues(tmp_path: Path) -> None:
    found = issues(tmp_path, EXAMPLE_RULES + '\n[[rule_tests]]\nfile = "m.eml"\nqueue = "nope"\nrules = ["nope"]\n')
    assert any("rule_tests.0.queue: unknown queue 'nope'" in i for i in found)
    assert any("rule_tests.0.rules: unknown rule 'nope'" in i for i in found)


# --- language ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, the printer is on fire. Could you please help? Thanks", "en"),
        ("Hei, tulostin ei toimi. Voisitteko auttaa? Kiitos, terveisin Matti", "fi"),
        ("Dzień dobry, drukarka nie działa. Czy mogą Państwo pomóc? Pozdrawiam", "pl"),
        ("Tisztelt Ügyfélszolgálat! A nyomtató nem működik, kérem segítsenek. Köszönöm", "hu"),
        ("Sehr geehrte Damen und Herren, der Drucker funktioniert nicht. Vielen Dank", "de"),
        ("Hej, skrivaren fungerar inte. Kan ni hjälpa mig? Tack, vänliga hälsningar", "sv"),
        ("ok", None),
        ("", None),
        ("Hello, the printer is on fire. Could you help? Thanks, Jörg Müller-Schäfer, Köln", "en"),  # a German name does not outvote English words
    ],
)
def test_language_guess(text: str, expected: str | None) -> None:
    assert language.detect(text) == expected


def test_example_config_rules_and_rule_tests() -> None:
    from ..conftest import REPO

    runner = CliRunner()
    example = str(REPO / "config.example.toml")
    result = runner.invoke(main, ["--config", example, "check-config", "--dev"])
    assert result.exit_code == 0, result.output
    assert "2 rule tests passed" in result.output
    result = runner.invoke(main, ["--config", example, "rules", "test", "--json", str(REPO / "examples/rules/invoice-fi.eml")])
    data = json.loads(result.output)
    assert (data["queue"], data["category"], data["language"]) == ("billing", "billing", "fi")
    assert data["assignment"] == "least-open among cecilia when the ticket opens"


def test_rule_tests_run_on_given_files_without_the_disk(tmp_path: Path) -> None:
    """Routing reads nothing itself: the config layer reads the files, the rule tests run on what it read."""
    from mailgate.config import RuleTestFiles, read_rule_test_files
    from mailgate.rules import report

    (tmp_path / "m.eml").write_bytes(mail(subject="Virhe laskussa"))
    tests = '\n[[rule_tests]]\nfile = "m.eml"\nqueue = "billing"\n\n[[rule_tests]]\nfile = "gone.eml"\n'
    config = config_mod.load(write_config(tmp_path, QUEUES + EXAMPLE_RULES + tests))
    files = read_rule_test_files(config)
    assert isinstance(files.messages[0], bytes) and "cannot read" in str(files.messages[1])
    ruleset = rules.compile_rules(config)
    (tmp_path / "m.eml").unlink()  # what was read is what counts
    ran, failures = report.run_tests(config, ruleset, files)
    assert ran == 2
    assert [f.key for f in failures] == ["rule_tests.1.file"]
    # The same files with another message: the first test now fails, its line found in the text given.
    other = RuleTestFiles(files.name, files.text, (mail(subject="Hello"), files.messages[1]))
    _, failures = report.run_tests(config, ruleset, other)
    assert [f.key for f in failures] == ["rule_tests.0.queue", "rule_tests.1.file"]
    lines = files.text.splitlines()
    assert failures[0].line == len(lines) - lines[::-1].index('queue = "billing"')  # the rule test's, the last one
