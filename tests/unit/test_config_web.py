"""[web]: sites, their tokens (inline or in a file beside the config), origins, targets; every error with its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.config import ConfigError

from ..conftest import write_config

QUEUES = """
[[queues]]
name = "sales"
addresses = ["billing@example.test"]

[[queues]]
name = "internal"
"""


def load(tmp_path: Path, sites: str, web: str = 'listen = "127.0.0.1:8025"') -> config_mod.Config:
    return config_mod.load(write_config(tmp_path, f"{QUEUES}\n[web]\n{web}\n{sites}"))


def errors(tmp_path: Path, sites: str, web: str = 'listen = "127.0.0.1:8025"') -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, sites, web)
    return {issue.key: issue.message for issue in caught.value.issues}


def test_a_site_reads_its_token_file_beside_the_config_and_again_on_every_load(tmp_path: Path) -> None:
    (tmp_path / "shop.token").write_text("first-token-0123456789\n")
    sites = '[[web.sites]]\nname = "shop"\ntoken_file = "shop.token"\nqueue = "sales"\norigins = ["HTTPS://Shop.Example.com/"]\n'
    config = load(tmp_path, sites)
    [site] = config.web.sites
    assert site.secret() == b"first-token-0123456789"
    assert site.origins == ("https://shop.example.com",)
    assert config.web.target(site, {q.name: q.addresses for q in config.queues}) == "billing@example.test"
    (tmp_path / "shop.token").write_text("rotated-token-987654321\n")  # a reload reads the file again
    assert load(tmp_path, sites).web.sites[0].secret() == b"rotated-token-987654321"


def test_web_is_off_by_default(tmp_path: Path) -> None:
    config = config_mod.load(write_config(tmp_path))
    assert config.web.listen is None and config.web.sites == ()


@pytest.mark.parametrize(("site", "key", "words"), [
    ('token = "short"\naddress = "support@example.test"', "web.sites.0.token", "at least 16"),
    ('token_file = "missing.token"\naddress = "support@example.test"', "web.sites.0", "cannot read"),
    ('token = "inline-token-0123456789"\ntoken_file = "x"\naddress = "support@example.test"', "web.sites.0",
     "exactly one of 'token' or 'token_file'"),
    ('token = "inline-token-0123456789"', "web.sites.0", "exactly one of 'address' or 'queue'"),
    ('token = "inline-token-0123456789"\naddress = "sales@elsewhere.test"', "web.sites.0.address",
     "not in gateway.addresses"),
    ('token = "inline-token-0123456789"\nqueue = "nope"', "web.sites.0.queue", "not a configured queue"),
    ('token = "inline-token-0123456789"\nqueue = "internal"', "web.sites.0.queue", "has no addresses"),
    ('token = "inline-token-0123456789"\naddress = "support@example.test"\norigins = ["https://shop.test/contact"]',
     "web.sites.0.origins", "no path"),
    ('token = "inline-token-0123456789"\naddress = "support@example.test"\norigins = ["null"]',
     "web.sites.0.origins", "not an origin"),
    ('token = "inline-token-0123456789"\naddress = "support@example.test"\nredirect = "/thanks"',
     "web.sites.0.redirect", "absolute"),
])
def test_site_errors_name_their_key(tmp_path: Path, site: str, key: str, words: str) -> None:
    found = errors(tmp_path, f'[[web.sites]]\nname = "shop"\n{site}\n')
    assert key in found, found
    assert words in found[key]


def test_two_sites_with_one_token_and_a_listener_without_sites(tmp_path: Path) -> None:
    twice = ('[[web.sites]]\nname = "a"\ntoken = "same-token-0123456789"\naddress = "support@example.test"\n'
             '[[web.sites]]\nname = "b"\ntoken = "same-token-0123456789"\naddress = "support@example.test"\n')
    assert "each site needs its own" in errors(tmp_path, twice)["web.sites.1.token"]
    assert "no [[web.sites]]" in errors(tmp_path, "")["web.sites"]
    assert "not an IP address" in errors(tmp_path, "", 'listen = "127.0.0.1:0"\ntrusted_proxies = ["proxy.lan"]')[
        "web.trusted_proxies"]


def test_a_token_file_others_can_read_is_warned_about(tmp_path: Path) -> None:
    token = tmp_path / "shop.token"
    token.write_text("file-token-0123456789\n")
    token.chmod(0o644)
    config = load(tmp_path, '[[web.sites]]\nname = "shop"\ntoken_file = "shop.token"\naddress = "support@example.test"\n')
    assert any(w.startswith("web.sites.0.token_file") for w in config_mod.permission_warnings(config))
