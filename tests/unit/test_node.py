"""A daemon's node name and lease: distinct per config file, stable across restarts, set by [storage]."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.config import ConfigError
from mailgate.config.node import MIN_LEASE, lease_seconds, node_name

from ..conftest import write_config


def config_in(folder: Path, storage: str = "", extra: str = "") -> config_mod.Config:
    folder.mkdir(exist_ok=True)
    return config_mod.load(write_config(folder, extra, storage=storage))


def test_two_configs_on_one_host_are_two_nodes_and_a_restart_is_the_same(tmp_path: Path) -> None:
    first, second = config_in(tmp_path / "a"), config_in(tmp_path / "b")
    assert node_name(first) != node_name(second)
    assert node_name(first) == node_name(config_mod.load(tmp_path / "a" / "config.toml"))
    assert node_name(first).startswith(platform.node()[:48])


def test_the_storage_node_setting_wins(tmp_path: Path) -> None:
    assert node_name(config_in(tmp_path, 'node = "mx2.example.test"')) == "mx2.example.test"


@pytest.mark.parametrize("bad", ["", "two words", "x" * 65, "-leading", "new\\nline"])
def test_a_node_name_is_one_short_word(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="storage.node"):
        config_in(tmp_path, f'node = "{bad}"')


def test_the_lease_outlasts_a_batch_handed_to_a_slow_relay(tmp_path: Path) -> None:
    assert lease_seconds(config_in(tmp_path / "default")) == MIN_LEASE
    slow = '\n[relay]\nhost = "127.0.0.1"\nport = 2525\nsecurity = "none"\ntimeout = 120\n'
    assert lease_seconds(config_in(tmp_path / "slow", extra=slow)) == 480
    assert lease_seconds(config_in(tmp_path / "set", "lease = 5")) == 5
