"""Strict config: no guessing at types, every error in one run, typos named, `config show`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailgate import config as config_mod
from mailgate.cli.main import main
from mailgate.config import ConfigError

from ..conftest import AGENTS, SECRET, SUPPORT, relay_section, write_config


def issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    return [str(i) for i in caught.value.issues]


def line_of(path: Path, needle: str, nth: int = 0) -> int:
    lines = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return lines[nth]


@pytest.mark.parametrize(
    ("section", "setting", "key", "said"),
    [
        ("smtp", 'lmtp = "yes"', "smtp.lmtp", 'not a string "yes"'),
        ("smtp", 'max_message_size = "4096"', "smtp.max_message_size", 'not a string "4096"'),
        ("smtp", 'timeout = "300"', "smtp.timeout", 'not a string "300"'),
        ("smtp", "timeout = true", "smtp.timeout", "not a boolean true"),
        ("smtp", "lmtp = 1", "smtp.lmtp", "not an integer 1"),
        ("smtp", 'trusted_received = 1.0', "smtp.trusted_received", "not a float 1.0"),
        ("relay", 'port = "2526"', "relay.port", 'not a string "2526"'),
        ("gateway", "name = 42", "gateway.name", "not an integer 42"),
        ("gateway", 'first_ticket_number = "1000"', "gateway.first_ticket_number", 'not a string "1000"'),
        ("agent", 'away = "off"', "agents.1.away", 'not a string "off"'),
        ("queue", 'acknowledge = "false"', "queues.0.acknowledge", 'not a string "false"'),
        ("queue", 'sla.high.first_response = "60"', "queues.0.sla.high.first_response", 'not a string "60"'),
        ("storms", 'no_ack_on_auth_fail = "no"', "storms.no_ack_on_auth_fail", 'not a string "no"'),
    ],
)
def test_no_type_is_guessed(tmp_path: Path, section: str, setting: str, key: str, said: str) -> None:
    relay = f"\n[relay]\nhost = \"127.0.0.1\"\n{setting if section == 'relay' else 'port = 25'}\n"
    extra = relay + AGENTS
    if section == "agent":
        extra += setting + "\n"
    elif section == "queue":
        extra = extra.replace('members = ["aino"]\n', f'members = ["aino"]\n{setting}\n', 1)
    elif section == "storms":
        extra += f"\n[storms]\n{setting}\n"
    path = write_config(
        tmp_path, extra, smtp=setting if section == "smtp" else "", gateway=setting if section == "gateway" else ""
    )
    found = issues_of(path)
    line = line_of(path, setting)
    assert any(i.startswith(f"{path}:{line}: {key}: ") and said in i for i in found), found
    # Exactly the wrong key is refused; nothing else in the file.
    assert len(found) == 1, found


def test_what_toml_cannot_spell_still_loads(tmp_path: Path) -> None:
    """Integers for seconds, dates for holidays, strings for paths and arrays for lists are TOML's own forms."""
    (tmp_path / "secret.txt").write_text(SECRET)
    path = write_config(
        tmp_path,
        relay_section(25, send_delay=30, retry_base=60) + AGENTS
        + '\n[queues.business_hours]\nholidays = [2026-12-24, 2026-12-25]\ndays = ["mon", "tue"]\n',
        smtp="timeout = 300\ntrusted_peers = [\"127.0.0.1\"]",
        storage='attachments = "files"',
    )
    path.write_text(path.read_text().replace(f'secret = "{SECRET}"', 'secret_file = "secret.txt"'))
    config = config_mod.load(path)
    assert config.smtp.timeout == 300.0 and isinstance(config.smtp.timeout, float)
    assert config.outbox.send_delay == 30.0 and config.smtp.trusted_peers == ("127.0.0.1",)
    hours = config.queues[1].business_hours
    assert hours is not None and [d.isoformat() for d in hours.holidays] == ["2026-12-24", "2026-12-25"]
    assert hours.days == ("mon", "tue")
    assert config.gateway.secret_file == tmp_path / "secret.txt" and config.secret_bytes() == SECRET.encode()
    assert config.attachments_path == tmp_path / "files"


def test_both_passes_report_in_one_run(tmp_path: Path) -> None:
    """A type error in one section no longer hides an unknown queue or agent in another."""
    path = write_config(
        tmp_path,
        '\n[[queues]]\nname = "first"\nmembers = ["ghost"]\n'
        '\n[[queues]]\nname = "Not An Ident"\n'
        '\n[[agents]]\nid = "anna"\nname = "Anna"\naddresses = ["anna@example.test"]\nqueues = ["nowhere"]\n'
        'away = "off"\n'
        '\n[[agents]]\nid = "bo"\nname = "Bo"\naddresses = ["not an address"]\n'
        '\n[[queues]]\nname = "third"\nmembers = ["bo"]\n',
        smtp='lmtp = "yes"',
    )
    found = issues_of(path)
    assert any(i.startswith(f"{path}:{line_of(path, 'lmtp')}: smtp.lmtp:") for i in found), found
    assert any(i.startswith(f"{path}:{line_of(path, 'away')}: agents.0.away:") for i in found), found
    assert any(i.startswith(f"{path}:{line_of(path, 'Not An Ident')}: queues.1.name:") for i in found), found
    assert f"{path}:{line_of(path, 'ghost')}: queues.0.members: unknown agent 'ghost'" in found
    assert f"{path}:{line_of(path, 'nowhere')}: agents.0.queues: unknown queue 'nowhere'" in found
    # The broken agent 'bo' is reported once, for its address: not again as "unknown" in the third queue,
    # and the third queue keeps its own position in the file.
    assert not any("'bo'" in i for i in found), found
    assert any("agents.1.addresses.0: not a mail address" in i for i in found), found


def test_a_broken_gateway_does_not_stop_the_cross_check(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[gateway]\naddresses = ["support@example.test"]\n\n[smtp]\nlmtp = "yes"\n'
        '\n[[queues]]\nname = "q"\naddresses = ["sales@example.test"]\n'
    )
    found = issues_of(path)
    assert f"{path}:1: gateway: give exactly one of 'secret' or 'secret_file'" in found
    assert any(i.startswith(f"{path}:5: smtp.lmtp:") for i in found), found
    assert f"{path}:9: queues.0.addresses: 'sales@example.test' is not in gateway.addresses" in found
    assert len(found) == 3, found


@pytest.mark.parametrize(
    ("where", "typo", "key", "suggestion"),
    [
        ("smtp", "lmpt = true", "smtp.lmpt", "lmtp"),
        ("smtp", "max_mesage_size = 4096", "smtp.max_mesage_size", "max_message_size"),
        ("queue", "acknowlege = false", "queues.0.acknowlege", "acknowledge"),
        ("queue", "sla.high.first_respons = 60", "queues.0.sla.high.first_respons", "first_response"),
        ("rule", 'contine = true', "rules.0.contine", "continue"),
        ("rule", 'nott = { subject = "x" }', "rules.0.nott", "not"),
    ],
)
def test_did_you_mean(tmp_path: Path, where: str, typo: str, key: str, suggestion: str) -> None:
    extra = AGENTS
    if where == "queue":
        extra = extra.replace('members = ["aino"]\n', f'members = ["aino"]\n{typo}\n', 1)
    if where == "rule":
        extra += f'\n[[rules]]\nname = "r"\nqueue = "support"\n{typo}\n'
    path = write_config(tmp_path, extra, smtp=typo if where == "smtp" else "")
    found = issues_of(path)
    assert any(
        i.startswith(f"{path}:{line_of(path, typo)}: {key}: ") and f"did you mean {suggestion!r}?" in i for i in found
    ), found


def test_no_suggestion_for_a_stranger(tmp_path: Path) -> None:
    path = write_config(tmp_path, smtp="zzzzzz = 1")
    (issue,) = issues_of(path)
    assert "smtp.zzzzzz" in issue and "did you mean" not in issue


def test_dotted_keys_and_inline_tables_point_at_their_own_line(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        AGENTS
        + '\n[[queues]]\nname = "third"\nsla.high.first_response = 0\nsla.low = { resolution = -5 }\n'
        + '\n[[queues]]\nname = "fourth"\n\n[queues.sla.urgent]\nfirst_response = 10\nresolution = "1h"\n'
        + '\n[queues.business_hours]\nstart = "8:00"\n',
    )
    found = issues_of(path)
    assert f"{path}:{line_of(path, 'sla.high')}: queues.2.sla.high.first_response: Input should be greater than 0" in found
    assert any(i.startswith(f"{path}:{line_of(path, 'sla.low')}: queues.2.sla.low.resolution:") for i in found), found
    assert any(i.startswith(f"{path}:{line_of(path, '1h')}: queues.3.sla.urgent.resolution:") for i in found), found
    assert any(i.startswith(f"{path}:{line_of(path, '8:00')}: queues.3.business_hours.start:") for i in found), found


def test_key_line_unit() -> None:
    text = (
        "[[queues]]\nname = 'a'\n"  # 1-2
        "sla = { high = { first_response = 0 } }\n"  # 3
        "[[queues]]\nname = 'b'\n"  # 4-5
        '[queues."sla".low]\n'  # 6
        "resolution = 0\n"  # 7
    )
    assert config_mod.key_line(text, "queues.1.name") == 5
    assert config_mod.key_line(text, "queues.0.sla.high.first_response") == 3
    assert config_mod.key_line(text, "queues.1.sla.low.resolution") == 7
    assert config_mod.key_line(text, "queues.1.sla.low.first_response") == 6  # missing: its table
    assert config_mod.key_line(text, "queues.0.language") == 1  # missing: its table


def run_cli(path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(path), *args])
    return result.exit_code, result.stdout, result.stderr


def test_check_config_prints_every_error_and_fails(tmp_path: Path) -> None:
    path = write_config(tmp_path, '\n[[queues]]\nname = "q"\nmembers = ["ghost"]\n', smtp='lmtp = "yes"\nlmpt = true')
    code, _, err = run_cli(path, "check-config")
    assert code == 1
    assert f"config error: {path}:{line_of(path, 'lmtp = ')}: smtp.lmtp:" in err
    assert "did you mean 'lmtp'?" in err
    assert f"config error: {path}:{line_of(path, 'ghost')}: queues.0.members: unknown agent 'ghost'" in err


def test_check_config_finds_storage_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("a file where a folder should be\n")
    path = write_config(tmp_path, storage='attachments = "not-a-folder/files"')
    path.write_text(path.read_text().replace('database = "mailgate.sqlite3"', 'database = "not-a-folder/db.sqlite3"'))
    code, _, err = run_cli(path, "check-config")
    assert code == 1
    assert f"{path}:{line_of(path, 'database = ')}: storage.database: cannot create {tmp_path / 'not-a-folder' / 'db.sqlite3'}:" in err
    assert f"storage.attachments: cannot create {tmp_path / 'not-a-folder' / 'files'}:" in err
    assert "is not a folder" in err

    good = write_config(tmp_path, storage='attachments = "files"')
    code, out, err = run_cli(good, "check-config")
    assert code == 0, err
    assert "storage." not in err and ": ok" in out


@pytest.mark.parametrize("all_keys", [False, True])
def test_config_show_round_trips(tmp_path: Path, all_keys: bool) -> None:
    (tmp_path / "secret.txt").write_text(SECRET)
    path = write_config(
        tmp_path,
        relay_section(2526, send_delay=5) + AGENTS
        + '\n[queues.sla.high]\nfirst_response = 60\n\n[queues.business_hours]\nholidays = [2026-12-24]\n'
        + '\n[[rules]]\nname = "vip"\nsender_domain = { glob = ["*.vip.test"] }\nnot = { subject = "spam" }\n'
        + 'priority = "high"\ncontinue = true\n',
        smtp="timeout = 120\nlmtp = true",
    )
    path.write_text(path.read_text().replace(f'secret = "{SECRET}"', 'secret_file = "secret.txt"'))
    original = config_mod.load(path)
    code, out, err = run_cli(path, "config", "show", *(["--all"] if all_keys else []))
    assert code == 0, err
    shown = tmp_path / "shown.toml"
    shown.write_text(out)
    again = config_mod.load(shown)
    assert again.model_dump(exclude={"source"}) == original.model_dump(exclude={"source"})
    if all_keys:
        assert "max_connections = 100" in out and "junk_command_limit = 50" in out
    else:
        assert "max_connections" not in out and "lmtp = true" in out and "timeout = 120.0" in out


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '\n[relay]\nhost = "127.0.0.1"\nport = 25\nusername = "mailgate"\npassword = "relay-password-xyz"\n'
        '\n[[imap]]\nname = "box"\nhost = "127.0.0.1"\nsecurity = "none"\nusername = "u"\npassword = "imap-pass-xyz"\n',
    )
    for args in ((), ("--all",), ("--json",)):
        code, out, err = run_cli(path, "config", "show", *args)
        assert code == 0, err
        assert SECRET not in out and "relay-password-xyz" not in out and "imap-pass-xyz" not in out
        assert out.count("********") == 3
    data = json.loads(run_cli(path, "config", "show", "--json")[1])
    assert data["relay"]["password"] == "********" and data["imap"][0]["password"] == "********"
    assert data["gateway"]["addresses"][0] == SUPPORT
    assert data["storage"]["database"] == str(tmp_path / "mailgate.sqlite3")
