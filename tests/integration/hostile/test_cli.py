"""Hostile numbers on the command line: never a traceback, always a clean error (JSON with --json).

SQLite keeps 64-bit signed integers; a ticket number of 2**63 once reached the driver and died with
OverflowError and a traceback, which a script reading --json output cannot parse.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mailgate.cli.main import main
from mailgate.cli.support import IdOrText, RowNumber

from ..conftest import run_cli_sync, write_config

BAD = [str(2**63), str(2**64), "-1", "0", "abc", "1e3", "²", "99999999999999999999999999"]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _numbered() -> list[tuple[tuple[str, ...], click.Command, str]]:
    """Every command with an argument that is a number or an id: (path, command, that argument's name)."""
    found = []
    for path, command in _commands(main):
        for param in command.params:
            if isinstance(param, click.Argument) and isinstance(param.type, (RowNumber, IdOrText)):
                found.append((path, command, param.name or ""))
    return found


def _args(command: click.Command, bad_param: str, bad: str) -> list[str]:
    """A command line with `bad` for one number and harmless values for everything else it requires."""
    options: list[str] = []
    positional: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            if param.name == bad_param:
                positional.append(bad)
            elif isinstance(param.type, (RowNumber, IdOrText)):
                positional.append("1")
            else:
                positional.append("x@customer.test" if "address" in (param.name or "") else "x")
        elif param.required:
            options += [param.opts[0], "1d" if param.name == "due" else "aino"]
    return [*options, "--", *positional] if bad.startswith("-") else [*options, *positional]


def test_every_number_argument_uses_the_checked_type() -> None:
    """No command takes a bare int any more: a new one would bring back the overflow."""
    for path, command in _commands(main):
        for param in command.params:
            assert param.type is not click.INT, f"{' '.join(path)} {param.name} is a bare int"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, '\n[[agents]]\nid = "aino"\nname = "Aino"\naddresses = ["aino@agents.test"]\n')


@pytest.mark.parametrize("bad", BAD)
def test_out_of_range_numbers_are_usage_errors(config_path: Path, bad: str) -> None:
    runner = CliRunner()  # its own: the check below reads the exception click caught
    commands = _numbered()
    assert len(commands) >= 25
    for path, command, name in commands:
        wants_json = any(p.name == "as_json" for p in command.params)
        for as_json in ([False, True] if wants_json else [False]):
            args = ["--config", str(config_path), *path, *(["--json"] if as_json else []), *_args(command, name, bad)]
            result = runner.invoke(main, args)
            shown = f"{' '.join(args[2:])} -> {result.exit_code}: {result.output}"
            assert result.exit_code not in (0, None), shown
            assert "Traceback" not in result.output, shown
            assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), shown
            if as_json:
                data = json.loads(result.stdout.strip().splitlines()[-1])
                assert data["ok"] is False and data["error"], shown


@pytest.mark.parametrize(
    "args",
    [
        ["tickets", "snooze", "1", "99999999999999999999d"],
        ["tickets", "task", "1", "support", "--due", "9999999999999d", "--text", "x", "--as", "aino"],
        ["tickets", "list", "--limit", str(2**64)],
        ["storms", "list", "--hours", str(2**63)],
        ["storms", "release", "not an address"],
        ["tickets", "nonsense"],
    ],
)
def test_other_hostile_input_is_a_clean_refusal(config_path: Path, args: list[str]) -> None:
    result = run_cli_sync(config_path, *args, "--json")
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["ok"] is False


def test_real_process_prints_json_and_no_traceback(config_path: Path) -> None:
    for bad in (str(2**63), "abc"):
        done = subprocess.run(
            [sys.executable, "-m", "mailgate", "--config", str(config_path), "tickets", "show", bad, "--json"],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert json.loads(done.stdout)["ok"] is False
        assert "ticket number" in done.stderr


def test_an_unexpected_failure_is_one_line_and_json() -> None:
    """The top-level group's last line of defence, on a command that fails the way a bug would."""
    from mailgate.cli.support import SafeGroup

    @click.group(cls=SafeGroup)
    def group() -> None:
        pass

    @group.command()
    @click.option("--json", "as_json", is_flag=True)
    def boom(as_json: bool) -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    result = CliRunner().invoke(group, ["boom", "--json"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert json.loads(result.stdout) == {"ok": False, "error": "OverflowError: Python int too large to convert to SQLite INTEGER"}
    assert result.stderr.strip() == "error: OverflowError: Python int too large to convert to SQLite INTEGER"
    assert CliRunner().invoke(group, ["boom"]).stdout == ""
