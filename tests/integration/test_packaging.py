"""What an operator installs: a wheel in a fresh venv outside the checkout starts, and tests stay hermetic."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mailgate import config as config_mod

from .conftest import REPO, closed_port, mail, write_config

# Only what a fresh clone has: a wheel built from a working tree must not pick up local leftovers.
_NOT_SHIPPED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "var", "*.egg-info", "__pycache__", ".pytest_cache", "*.sqlite3*"
)


def run(argv: list[str], cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MAILGATE_CONFIG", "VIRTUAL_ENV")}
    result = subprocess.run(argv, cwd=cwd, env=env, input=stdin.decode(), capture_output=True, text=True, timeout=240)
    return result


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_passes_check_config_and_takes_mail(tmp_path: Path) -> None:
    """`pip install .` shipped no templates: check-config printed 84 "template not found" lines and
    the unit's ExecStartPre refused to start. About 15 s on 2 cores (wheel, venv, install from the
    package index configured for pip, check-config, one ingest)."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SHIPPED)
    built = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)], tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("mailgate-*.whl")
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    assert made.returncode == 0, made.stderr
    installed = run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], tmp_path)
    assert installed.returncode == 0, installed.stderr

    # The operator's copy of the example config (its rule tests name examples/ beside it).
    site = tmp_path / "etc"
    site.mkdir()
    shutil.copy(REPO / "config.example.toml", site / "config.toml")
    shutil.copytree(REPO / "examples", site / "examples")
    mailgate = str(venv / "bin" / "mailgate")
    checked = run([mailgate, "--config", str(site / "config.toml"), "check-config", "--dev"], site)
    assert checked.returncode == 0, checked.stderr
    assert "template" not in checked.stderr and "ok (2 support addresses)" in checked.stdout

    # The templates and the migrations came from the wheel, not from this checkout.
    where = run([str(venv / "bin" / "python"), "-c", "from mailgate.outgoing import templates; print(templates.SHIPPED)"], site)
    assert Path(where.stdout.strip()).is_relative_to(venv), where
    taken = run([mailgate, "--config", str(site / "config.toml"), "ingest", "--sender=alice@customer.test",
                 "--recipient=support@example.test"], site, stdin=mail(message_id="<wheel@customer.test>"))
    assert taken.returncode == 0, taken.stderr
    assert "stored 1" in taken.stderr


def test_a_test_config_never_names_a_relay_the_test_does_not_own(tmp_path: Path) -> None:
    """The [relay] default is 127.0.0.1:25: with a local MTA, tests' acknowledgements reached it."""
    config = config_mod.load(write_config(tmp_path))
    assert (config.relay.host, config.relay.port) == ("127.0.0.1", closed_port())
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", config.relay.port))
