"""config.example.toml: its commented [web], [report] and [replies] blocks are valid once uncommented,
and [web] cannot share a socket with [smtp] or [http]."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailgate import config as config_mod
from mailgate.cli.main import main
from mailgate.config import ConfigError

from ..conftest import REPO, write_config

BLOCKS = ("# [web]", "# [[web.sites]]", "# [report]", "# [replies]")


def _uncommented(text: str) -> str:
    """The example with each optional block switched on: its lines from the header to the next blank one."""
    lines, inside = [], False
    for line in text.splitlines():
        inside = line in BLOCKS or (inside and line.startswith("#"))
        lines.append(re.sub(r"^# ?", "", line) if inside else line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def enabled(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    (tmp_path / "web-www.token").write_text("0123456789abcdef0123456789abcdef\n", encoding="utf-8")
    (tmp_path / "web-www.token").chmod(0o600)
    path = tmp_path / "config.toml"
    text = _uncommented((REPO / "config.example.toml").read_text(encoding="utf-8"))
    path.write_text(text.replace('"var/', f'"{tmp_path}/var/'), encoding="utf-8")
    path.chmod(0o600)
    return path


def test_each_key_of_the_blocks_says_why() -> None:
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    keys = [line for line in _uncommented(text).splitlines() if line not in text.splitlines()
            and re.match(r"^[a-z_]+ = ", line)]
    assert len(keys) >= 14
    assert all(re.search(r"\S\s+# \S", line) for line in keys), [k for k in keys if "#" not in k]


def test_the_blocks_switched_on_load_and_pass_check_config(enabled: Path) -> None:
    config = config_mod.load(enabled)
    assert config.web.listen is not None and [s.name for s in config.web.sites] == ["www"]
    assert config.report.when() == (0, 8, 0) and config.replies.folder == Path("replies")
    result = CliRunner().invoke(main, ["--config", str(enabled), "check-config", "--dev"])
    assert result.exit_code == 0, result.output
    # With a real secret in place of the example's, it passes without --dev too.
    text = enabled.read_text(encoding="utf-8")
    enabled.write_text(re.sub(r'(?m)^secret = ".*"$', 'secret = "' + "5f" * 32 + '"', text), encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(enabled), "check-config"])
    assert result.exit_code == 0, result.output


SITE = '[[web.sites]]\nname = "www"\ntoken = "0123456789abcdef0123"\naddress = "support@example.test"\n'


@pytest.mark.parametrize(("smtp", "http", "web", "clash"), [
    ("127.0.0.1:2525", None, "127.0.0.1:2525", "smtp.listen"),
    ("127.0.0.1:2525", "127.0.0.1:9925", "127.0.0.1:9925", "http.listen"),
    ("127.0.0.1:2525", "0.0.0.0:8080", "127.0.0.1:8080", "http.listen"),  # the wildcard holds every address
    ("127.0.0.1:2525", "[::1]:8080", "[0:0::1]:8080", "http.listen"),  # one address, two spellings
])
def test_web_listen_on_another_listeners_socket_is_a_config_error(
    tmp_path: Path, smtp: str, http: str | None, web: str, clash: str
) -> None:
    extra = (f'[http]\nlisten = "{http}"\n' if http else "") + f'[web]\nlisten = "{web}"\n' + SITE
    path = write_config(tmp_path, extra)
    path.write_text(path.read_text(encoding="utf-8").replace('listen = "127.0.0.1:0"', f'listen = "{smtp}"'),
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    [issue] = [str(i) for i in caught.value.issues]
    assert "web.listen" in issue and clash in issue and "its own port" in issue


def test_web_listen_on_a_port_of_its_own_is_fine(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[http]\nlisten = "127.0.0.1:9925"\n[web]\nlisten = "127.0.0.1:9926"\n' + SITE)
    assert config_mod.load(path).web.listen is not None
