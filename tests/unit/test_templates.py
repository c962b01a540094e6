"""Templates: every one renders in every language, strict and sandboxed, HTML escaped, overrides checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from jinja2 import TemplateError, UndefinedError
from jinja2.exceptions import SecurityError

from mailgate.cli.main import main
from mailgate.config import LANGUAGES, Config
from mailgate.outgoing import templates

from ..conftest import write_config


def test_every_template_renders_in_every_language() -> None:
    t = templates.Templates()
    data = templates.sample_context()
    for language in LANGUAGES:
        for name in templates.NAMES:
            rendered = t.render(name, language, data)
            assert rendered.subject and rendered.text.strip(), (language, name)
            assert "[#1042]" in rendered.subject + rendered.text or name == "reply"
            assert rendered.html is not None and f'lang="{language}"' in rendered.html


@pytest.mark.parametrize("language", ["fi", "pl", "hu"])
def test_translations_are_not_english_copies(language: str) -> None:
    t = templates.Templates()
    data = templates.sample_context()
    for name in templates.NAMES:
        english = t.render(name, "en", data)
        other = t.render(name, language, data)
        assert other.subject != english.subject, name
        if name != "reply":  # the agent's own words and signature, only the subject is ours
            assert other.text != english.text, name
        # No English sentence left behind.
        for phrase in ("thank you", "Hello ", "Kind regards", "could not be delivered", "has written again"):
            assert phrase not in other.text, (name, phrase)


def test_characteristic_words_per_language() -> None:
    t = templates.Templates()
    data = templates.sample_context()
    ack = {lang: t.render("ack", lang, data).text for lang in LANGUAGES}
    assert "What happens next" in ack["en"]
    assert "Mitä seuraavaksi tapahtuu" in ack["fi"]
    assert "Co dalej" in ack["pl"]
    assert "A következő lépés" in ack["hu"]


def test_html_is_escaped_and_text_is_not() -> None:
    t = templates.Templates()
    data = templates.sample_context()  # subject "Printer <on> fire & smoke"
    rendered = t.render("ack", "en", data)
    assert "Printer <on> fire & smoke" in rendered.subject
    assert "Printer &lt;on&gt; fire &amp; smoke" in (rendered.html or "")
    assert "<on>" not in (rendered.html or "")
    notify = t.render("notify_new", "en", data)
    assert "<b>on fire</b>" in notify.text
    assert "&lt;b&gt;on fire&lt;/b&gt;" in (notify.html or "")


def test_language_choice_queue_then_contact_then_default() -> None:
    assert templates.choose_language("pl", "fi", "en") == "pl"
    assert templates.choose_language(None, "fi", "en") == "fi"
    assert templates.choose_language(None, "de", "hu") == "hu"  # not shipped: the default
    assert templates.choose_language(None, None, "en") == "en"


def write_override(folder: Path, name: str, text: str, language: str = "en") -> Path:
    (folder / language).mkdir(parents=True, exist_ok=True)
    (folder / language / name).write_text(text, encoding="utf-8")
    return folder


def test_override_folder_wins_for_its_files_only(tmp_path: Path) -> None:
    folder = write_override(tmp_path / "mine", "ack.txt", "Got it: {{ ticket.subject }}\nThanks, {{ customer.name }}.\n")
    t = templates.Templates(folder)
    data = templates.sample_context()
    assert t.render("ack", "en", data).subject == "Got it: Printer <on> fire & smoke"
    assert t.render("ack", "fi", data).subject.startswith("Vastaanotettu")  # shipped
    assert t.render("resolved", "en", data).subject.startswith("Resolved")  # shipped


def test_undefined_names_fail_instead_of_rendering_empty(tmp_path: Path) -> None:
    folder = write_override(tmp_path / "mine", "ack.txt", "Hi\n{{ ticket.numbr }}\n")
    with pytest.raises(UndefinedError):
        templates.Templates(folder).render("ack", "en", templates.sample_context())


def test_sandbox_refuses_python_internals(tmp_path: Path) -> None:
    folder = write_override(tmp_path / "mine", "ack.txt", "Hi\n{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    with pytest.raises((SecurityError, UndefinedError)):
        templates.Templates(folder).render("ack", "en", templates.sample_context())


def test_empty_subject_line_is_an_error(tmp_path: Path) -> None:
    folder = write_override(tmp_path / "mine", "resolved.txt", "\n\n\n")
    with pytest.raises(TemplateError):
        templates.Templates(folder).render("resolved", "en", templates.sample_context())


@pytest.fixture
def config_with_override(tmp_path: Path) -> Callable[[str | None], Path]:
    def make(broken: str | None) -> Path:
        folder = tmp_path / "templates-local"
        if broken is not None:
            write_override(folder, "notify_new.txt", broken, language="hu")
        return write_config(tmp_path, '\n[outbox]\ntemplates = "templates-local"\n')

    return make


def test_check_config_finds_template_errors(config_with_override: Callable[[str | None], Path]) -> None:
    path = config_with_override("Új: {{ ticket.subject }\n")  # unclosed expression
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1
    assert "templates-local/hu/notify_new.txt:1: TemplateSyntaxError" in result.output


def test_check_config_finds_undefined_names(config_with_override: Callable[[str | None], Path]) -> None:
    path = config_with_override("Új {{ ticket.tag }}\n{{ agent.nmae }}\n")
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1
    assert "hu/notify_new" in result.output and "nmae" in result.output


def test_check_config_accepts_good_templates(config_with_override: Callable[[str | None], Path]) -> None:
    path = config_with_override("Új {{ ticket.tag }}\n{{ agent.name }}: {{ message.excerpt }}\n")
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 0, result.output


def test_check_config_reports_a_missing_override_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path, '\n[outbox]\ntemplates = "nowhere"\n')
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1 and "is not a folder" in result.output


def test_shipped_set_passes_check(make_config: Callable[..., Config]) -> None:
    assert templates.check(make_config()) == []
