"""The files behind a config's [[rule_tests]]: the config text (for lines) and each test's message."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailgate.config.model import Config


@dataclass(frozen=True, slots=True)
class RuleTestFiles:
    """What running the rule tests reads from disk, read once so routing itself stays pure."""

    name: str  # the config file, as issues name it
    text: str  # its text, to point at the line of a failing test ("" when unreadable)
    messages: tuple[bytes | str, ...]  # per test: the message bytes, or why they could not be read


def read_rule_test_files(config: Config) -> RuleTestFiles:
    """Read the config file and every rule test's message file (relative to the config file)."""
    source = config.source or Path("config.toml")
    try:
        text = source.read_text(encoding="utf-8")
    except OSError:
        text = ""
    messages: list[bytes | str] = []
    for test in config.rule_tests:
        path = test.file if test.file.is_absolute() else source.parent / test.file
        try:
            messages.append(path.read_bytes())
        except OSError as exc:
            messages.append(f"cannot read {path}: {exc.strerror or exc}")
    return RuleTestFiles(str(source), text, tuple(messages))
