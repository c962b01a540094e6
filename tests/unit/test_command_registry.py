"""The registry of agent commands: one table the parser, the checks and ops' apply order all read."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailgate import commands
from mailgate.cli.main import main
from mailgate.commands import registry
from mailgate.commands.model import Command, TagError
from mailgate.errors import Refused

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PACKAGE = Path(__file__).resolve().parents[2] / "mailgate"


def test_apply_order_comes_from_the_registry() -> None:
    names = [s.name for s in registry.REGISTRY]
    assert names.index("queue") < names.index("assign")  # membership is judged in the new queue
    assert names[names.index("merge") - 1] == "split" and all(
        not s.applied for s in registry.REGISTRY[names.index("merge") + 1:])  # merge ends the ticket: last applied
    parsed = commands.parse("[merge:#7] [assign:me] [queue:billing] [note] Re: x", "", now=NOW)
    assert [c.name for c in registry.in_order(parsed.commands)] == ["queue", "assign", "merge"]  # [note]: the mail


def test_what_the_registry_says_of_each_command() -> None:
    assert registry.TICKETLESS == {"next", "list", "search", "report"}
    assert registry.NOTE_COMMANDS == {"note", "task", "forward", "forward+notes", "help", "delete", "confirm", "restore"}
    assert registry.NEW_TICKET == {"new", "to", "behalf", "channel"}
    assert registry.canonical("Prio") == "priority" and registry.canonical("comment") == "note"
    assert registry.canonical("stauts") is None


@pytest.mark.parametrize("spec", registry.REGISTRY, ids=[s.name for s in registry.REGISTRY])
def test_every_command_reads_its_value_as_the_registry_says(spec: registry.Spec) -> None:
    if spec.value is registry.Value.REQUIRED:
        assert registry.read(spec.name, "", f"[{spec.name}]", NOW, UTC) == TagError(f"[{spec.name}]",
                                                                                   "needs a value, e.g. "
                                                                                   + _example(spec.name))
    if spec.value is registry.Value.NONE:
        read = registry.read(spec.name, "", f"[{spec.name}]", NOW, UTC)
        assert read == Command(spec.name, "", f"[{spec.name}]")
        assert isinstance(registry.read(spec.name, "x", "[x]", NOW, UTC), TagError)


def _example(name: str) -> str:
    from mailgate.commands.values import EXAMPLES

    return EXAMPLES[name]


def test_a_refused_tag_is_the_one_refusal_type() -> None:
    error = TagError("[status:done]", "unknown status")
    assert isinstance(error, Refused) and str(error) == "[status:done]: unknown status"
    assert str(TagError("", "the note is empty")) == "the note is empty"


def test_one_module_writes_a_tickets_status() -> None:
    writers = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
               if re.search(r"UPDATE tickets SET[^\"]*\bstatus\b", p.read_text(encoding="utf-8"))]
    assert writers == ["store/tickets.py"]


def test_the_acting_agent_is_named_by_as_on_the_cli() -> None:
    for command in ("merge", "forward", "help", "split", "snooze", "wake", "status", "note", "task"):
        result = CliRunner().invoke(main, ["tickets", command, "--help"])
        assert result.exit_code == 0 and "--as" in result.output, command
        assert "--agent" not in result.output, command  # the older spelling works, but is not offered
