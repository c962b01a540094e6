"""Config: parsed once into typed objects; a bad file gets file, line, key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mailgate import config as config_mod
from mailgate.cli.main import main
from mailgate.config import ConfigError

from ..conftest import REPO, write_config


def issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    return [str(i) for i in caught.value.issues]


def test_example_config_is_valid() -> None:
    config = config_mod.load(REPO / "config.example.toml")
    assert config.smtp.listen.host == "127.0.0.1" and config.smtp.listen.port == 2525
    # Relative paths resolve against the config file, not the working directory.
    assert config.database_path == REPO / "var" / "mailgate.sqlite3"


def test_good_config_values(tmp_path: Path) -> None:
    path = write_config(tmp_path, smtp='max_message_size = 4096\nlmtp = true', gateway='ticket_tag = "Ticket#"')
    config = config_mod.load(path)
    assert config.smtp.lmtp is True and config.smtp.max_message_size == 4096
    assert config.gateway.addresses == ("support@example.test", "billing@example.test")
    assert config.gateway.ticket_tag == "Ticket#"
    assert config.database_path == tmp_path / "mailgate.sqlite3"


def test_every_error_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        "[gateway]\n"
        'addresses = ["support@example.test", "not an address"]\n'
        'secret = "short"\n'
        "\n"
        "[smtp]\n"
        'listen = "localhost"\n'
        "max_message_size = 10\n"
        "lmpt = true\n",
        encoding="utf-8",
    )
    found = issues_of(path)
    assert f"{path}:2: gateway.addresses.1: not a mail address: 'not an address'" in found
    assert any(i.startswith(f"{path}:6: smtp.listen:") and "host:port" in i for i in found)
    assert any(i.startswith(f"{path}:7: smtp.max_message_size:") for i in found)
    assert any(i.startswith(f"{path}:8: smtp.lmpt:") and "Extra inputs" in i for i in found)
    assert f"{path}:3: gateway.secret: must be at least 16 characters: it signs reply tokens" in found


def test_toml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text('[gateway]\naddresses = ["a@b.test"\n', encoding="utf-8")
    (issue,) = issues_of(path)
    assert issue.startswith(f"{path}:") and "TOML syntax" in issue


def test_cross_section_errors(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '\n[[queues]]\nname = "first"\nmembers = ["ghost"]\n'
        '\n[[queues]]\nname = "first"\n'
        '\n[[agents]]\nid = "anna"\nname = "Anna"\naddresses = ["anna@example.test"]\nqueues = ["nowhere"]\n',
    )
    found = issues_of(path)
    text = path.read_text().splitlines()
    members_line = next(i for i, line in enumerate(text, 1) if line.startswith("members"))
    assert f"{path}:{members_line}: queues.0.members: unknown agent 'ghost'" in found
    assert any("queues.1.name: duplicate 'first'" in i for i in found)
    assert any("agents.0.queues: unknown queue 'nowhere'" in i for i in found)


def test_missing_file(tmp_path: Path) -> None:
    (issue,) = issues_of(tmp_path / "none.toml")
    assert "cannot read" in issue


def test_check_config_exit_codes(tmp_path: Path) -> None:
    good = write_config(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(good), "check-config"])
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[gateway]\naddresses = []\nsecret = "0123456789abcdef0123"\n', encoding="utf-8")
    result = runner.invoke(main, ["--config", str(bad), "check-config"])
    assert result.exit_code == 1
    assert f"{bad}:2: gateway.addresses:" in result.output


def test_secret_file(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("0123456789abcdef-from-file\n")
    path = tmp_path / "c.toml"
    path.write_text('[gateway]\naddresses = ["s@example.test"]\nsecret_file = "secret"\n', encoding="utf-8")
    assert config_mod.load(path).secret_bytes() == b"0123456789abcdef-from-file"
    (tmp_path / "secret").unlink()
    (issue,) = issues_of(path)
    assert issue.startswith(f"{path}:3: gateway.secret_file: cannot read")


def test_migrations_have_unique_numbers() -> None:
    from mailgate.store import migrations

    numbers = [version for version, _, _ in migrations()]
    assert numbers == sorted(set(numbers)) and numbers[0] == 1
