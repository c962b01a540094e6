"""The report mail in every language: translated words, the same figures and bars, checked by check-config."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailgate.cli.main import main
from mailgate.config import Config
from mailgate.outgoing import report_mail, templates

from ..conftest import write_config
from .test_templates import write_override

DATA = {"gateway": {"name": "Example Support"}, "agent": {"name": "Aino Agent", "id": "aino"},
        "report": report_mail.view(report_mail.SAMPLE)}
# What only the English report says: none of it may be left in a translation.
ENGLISH = ("Hello ", "Opened:", "Resolved:", "First reply", "median ", "within", " met,", "breached",
           "Times are in", "All tickets", "Open tickets by age", "Another report", " opened", " resolved")


def _figures(text: str) -> list[str]:
    """The bars with their counts and the durations, in order: what no translation may change."""
    return re.findall(r"█+ \d+|\b\d+(?:\.\d)?[mhd]\b", text)


@pytest.mark.parametrize("language", ["fi", "pl", "hu"])
def test_report_is_translated_with_the_same_figures_and_bars(language: str) -> None:
    shipped = templates.Templates()
    english = shipped.render("report", "en", DATA)
    other = shipped.render("report", language, DATA)
    for phrase in ENGLISH:
        assert phrase not in other.subject + other.text, (language, phrase)
    assert other.subject != english.subject and "7" in other.subject and "5" in other.subject
    assert _figures(other.text) == _figures(english.text) != []
    assert other.html is not None and english.html is not None and f'lang="{language}"' in other.html
    widths = re.compile(r"width:\d+%")
    assert widths.findall(other.html) == widths.findall(english.html)
    assert "printer &lt;laser&gt;" in other.html and "<laser>" not in other.html  # a tag is escaped in HTML
    for phrase in ENGLISH:
        assert phrase not in re.sub(r"<[^>]+>", " ", other.html), (language, phrase)


@pytest.mark.parametrize(("kind", "words"), [("business", {"fi": "palveluaikana", "pl": "godzinach pracy",
                                                           "hu": "munkaidőben"}),
                                             ("wall", {"fi": "kellonaikana", "pl": "według zegara",
                                                       "hu": "naptári időben"})])
def test_the_clock_is_worded_in_each_language(kind: str, words: dict[str, str]) -> None:
    data = {**DATA, "report": report_mail.view({**report_mail.SAMPLE, "clock": kind})}
    for language, word in words.items():
        assert word in templates.Templates().render("report", language, data).text, (language, kind)


def test_check_config_renders_the_report_in_every_language(make_config: Callable[..., Config]) -> None:
    assert report_mail.check(make_config()) == []


def test_check_config_finds_a_broken_report_translation(tmp_path: Path) -> None:
    write_override(tmp_path / "templates-local", "report.txt", "Raportti {{ report.opened }\n", language="fi")
    path = write_config(tmp_path, '\n[outbox]\ntemplates = "templates-local"\n')
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1
    assert "fi/report: TemplateSyntaxError" in result.output
