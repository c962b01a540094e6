"""Who is acting: agent From + (signed token or trusted Authentication-Results); forgeries are outside parties."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from mailgate import tokens
from mailgate.config import Config, ConfigError
from mailgate.mail import identity
from mailgate.mail.parse import parse
from mailgate.models import Envelope, Source

from ..conftest import AGENTS, SECRET, SUPPORT, mail

KEY = SECRET.encode()
AR = "Authentication-Results"


@pytest.fixture
def cfg(make_config: Callable[..., Config]) -> Config:
    return make_config(AGENTS, gateway='authserv_id = "mx.example.test"')


def token_address(purpose: str, ticket: int, agent: str) -> str:
    return tokens.reply_address(KEY, SUPPORT, tokens.Token(purpose, ticket, agent))


RECEIVED = ("Received", "from mail.agents.test (mail.agents.test [192.0.2.7]) by mx.example.test (Postfix);"
            " Mon, 23 Nov 2026 10:00:00 +0000")


def raw_with(headers_on_top: list[tuple[str, str]], sender: str = "Aino Agent <aino@agents.test>", to: str = SUPPORT) -> bytes:
    """A mail with headers prepended the way an MTA adds them (above everything the sender wrote)."""
    body = mail(sender=sender, to=to, subject="Re: [#1000] x", body="Done.\n")
    top = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers_on_top)
    return top + body


def resolve(cfg: Config, raw: bytes, rcpt: tuple[str, ...] = (SUPPORT,), received: int = 1) -> identity.Identity:
    """As a mail from the trusted MTA in front (one Received header of its own)."""
    return identity.resolve(cfg, parse(raw), rcpt, KEY, received=received)


def test_token_proves_the_agent_it_names_and_only_that_agent(cfg: Config) -> None:
    addr = token_address("a", 1000, "aino")
    ident = resolve(cfg, raw_with([], to=addr), (addr,))
    assert ident.agent is not None and ident.agent.id == "aino" and ident.proof == "token"
    assert ident.ticket == 1000 and not ident.note
    # Bartek's From with Aino's token: no proof for Bartek.
    ident = resolve(cfg, raw_with([], sender="bartek@agents.test", to=addr), (addr,))
    assert ident.agent is None and ident.claimed is not None and ident.claimed.id == "bartek"
    # A token signed with another secret is no token.
    forged = tokens.reply_address(b"another-secret-0123456789", SUPPORT, tokens.Token("a", 1000, "aino"))
    assert resolve(cfg, raw_with([], to=forged), (forged,)).agent is None
    # The old purposes do not prove an agent: 'r' is the customer's address.
    r_addr = token_address("r", 1000, "aino")
    assert resolve(cfg, raw_with([], to=r_addr), (r_addr,)).agent is None


def test_note_address_wins_over_reply_address(cfg: Config) -> None:
    a, n = token_address("a", 1000, "aino"), token_address("n", 1000, "aino")
    ident = resolve(cfg, raw_with([], to=f"{a}, {n}"), (a, n))
    assert ident.agent is not None and ident.note and ident.ticket == 1000


@pytest.mark.parametrize(
    ("results", "proof"),
    [
        ("mx.example.test; dkim=pass header.d=agents.test header.s=s1", "dkim"),
        ("mx.example.test; dkim=pass (good signature) header.i=@agents.test", "dkim"),
        ("MX.Example.Test; dkim=pass header.d=agents.test", "dkim"),  # authserv-id is case-insensitive
        ("mx.example.test; spf=pass smtp.mailfrom=aino@agents.test", "spf"),
        ("mx.example.test; spf=pass smtp.mailfrom=agents.test", "spf"),
        ("mx.example.test; dkim=fail header.d=agents.test", None),
        ("mx.example.test; dkim=pass header.d=evil.test", None),  # signed, but by someone else
        ("mx.example.test; dkim=pass header.d=test", None),  # a bare TLD aligns with nothing
        ("mx.example.test; spf=pass smtp.mailfrom=mallory@evil.test", None),
        ("mx.example.test; spf=softfail smtp.mailfrom=aino@agents.test", None),
        ("mx.evil.test; dkim=pass header.d=agents.test", None),  # another authserv-id: not ours
        ("mx.example.test; none", None),
        ("garbage without structure", None),
    ],
)
def test_authentication_results_from_the_trusted_mta(cfg: Config, results: str, proof: str | None) -> None:
    ident = resolve(cfg, raw_with([(AR, results)]))
    assert ident.proof == proof
    assert (ident.agent is not None) == (proof is not None)


def test_only_results_above_the_trusted_hops_received_count(cfg: Config) -> None:
    good = "mx.example.test; dkim=pass header.d=agents.test"
    # The sender wrote a "pass" below the MTA's Received header: the MTA's own result (fail) is read.
    raw = raw_with([(AR, "mx.example.test; dkim=fail header.d=agents.test"), RECEIVED, (AR, good)])
    assert resolve(cfg, raw).agent is None
    # A forged pass at the very bottom of the header block, with or without the MTA's Received on top.
    for on_top in ([RECEIVED], []):
        raw = raw_with(on_top).replace(b"\r\n\r\n", f"\r\n{AR}: {good}\r\n\r\n".encode(), 1)
        assert resolve(cfg, raw).agent is None
    # Our result, and another hop's above it: both were written by the trusted side; ours counts.
    raw = raw_with([(AR, "mx.evil.test; dkim=fail header.d=agents.test"), (AR, good), RECEIVED])
    assert resolve(cfg, raw).proof == "dkim"
    # A trusted fail vetoes a pass for the same domain, whichever method (RFC 8601 results disagree).
    raw = raw_with([(AR, "mx.example.test; spf=fail smtp.mailfrom=agents.test"), (AR, good), RECEIVED])
    assert resolve(cfg, raw).agent is None
    raw = raw_with([(AR, "mx.example.test; dmarc=fail header.from=agents.test"), (AR, good)])
    assert resolve(cfg, raw).agent is None
    # A fail about another domain (an unaligned signature) does not.
    raw = raw_with([(AR, "mx.example.test; dkim=fail header.d=list.test"), (AR, good)])
    assert resolve(cfg, raw).proof == "dkim"
    # With a re-injecting content filter the hop adds two Received headers: results between them count.
    raw = raw_with([RECEIVED, (AR, good), RECEIVED])
    assert resolve(cfg, raw).agent is None
    assert resolve(cfg, raw, received=2).proof == "dkim"


def test_nothing_is_read_from_an_untrusted_source(cfg: Config) -> None:
    raw = raw_with([(AR, "mx.example.test; dkim=pass header.d=agents.test")])
    ident = resolve(cfg, raw, received=0)
    assert ident.agent is None and ident.claimed is not None


def test_trust_follows_the_peer_and_the_source(make_config: Callable[..., Config]) -> None:
    cfg = make_config(AGENTS, gateway='authserv_id = "mx.example.test"',
                      smtp='trusted_peers = ["127.0.0.1", "10.1.0.0/16"]')
    smtp = Envelope("a@x.test", (SUPPORT,), Source.SMTP, peer="10.1.2.3")
    assert identity.trusted_received(cfg, smtp) == 1
    assert identity.trusted_received(cfg, replace(smtp, peer="::ffff:127.0.0.1")) == 1
    assert identity.trusted_received(cfg, replace(smtp, peer="192.0.2.1")) == 0
    assert identity.trusted_received(cfg, replace(smtp, peer=None)) == 0
    assert identity.trusted_received(cfg, replace(smtp, source=Source.PIPE, peer=None)) == 1
    assert identity.trusted_received(cfg, replace(smtp, source=Source.PIPE, imported=True)) == 0
    assert identity.trusted_received(cfg, replace(smtp, source=Source.IMAP, source_ref="box/INBOX/1/2")) == 0
    assert "192.0.2.1" in identity.untrusted_why(cfg, replace(smtp, peer="192.0.2.1"))


def test_a_bad_trusted_peer_is_a_config_error(make_config: Callable[..., Config]) -> None:
    with pytest.raises(ConfigError, match="trusted_peers"):
        make_config(AGENTS, smtp='trusted_peers = ["mx.example.test"]')


def test_nothing_trusted_without_a_configured_authserv_id(make_config: Callable[..., Config]) -> None:
    cfg = make_config(AGENTS)
    raw = raw_with([(AR, "mx.example.test; dkim=pass header.d=agents.test")])
    ident = identity.resolve(cfg, parse(raw), (SUPPORT,), KEY, received=1)
    assert ident.agent is None and ident.claimed is not None


@pytest.mark.parametrize(
    "from_header",
    [
        "anna@x.example)<aino@agents.test>",
        "aino@agents.test)<mallory@evil.test>",
        "Aino <aino@agents.test>, Mallory <mallory@evil.test>",
        '"aino@agents.test" <mallory@evil.test>',
    ],
)
def test_a_from_that_is_not_one_clean_address_is_never_an_agent(cfg: Config, from_header: str) -> None:
    addr = token_address("a", 1000, "aino")
    raw = (f"From: {from_header}\r\nTo: {addr}\r\nSubject: x\r\nMessage-ID: <f@x>\r\n"
           f"{AR}: mx.example.test; dkim=pass header.d=agents.test\r\n\r\nhi\r\n").encode()
    ident = resolve(cfg, raw, (addr,))
    assert ident.agent is None


def test_second_from_header_is_not_clean(cfg: Config) -> None:
    addr = token_address("a", 1000, "aino")
    raw = (f"From: aino@agents.test\r\nFrom: mallory@evil.test\r\nTo: {addr}\r\nSubject: x\r\n\r\nhi\r\n").encode()
    assert resolve(cfg, raw, (addr,)).agent is None


def test_customers_are_nobody_in_particular(cfg: Config) -> None:
    ident = resolve(cfg, mail())
    assert ident.agent is None and ident.claimed is None and not ident.unproven_agent


@pytest.mark.parametrize(
    ("name", "address", "shown"),
    [
        ("anna@example.test", "mallory@evil.test", "anna@example.test"),
        ("Anna (anna@example.test)", "mallory@evil.test", "anna@example.test"),
        ("anna\uff20example.test", "mallory@evil.test", "anna@example.test"),  # a fullwidth at sign
        ("Anna Example", "anna@example.test", ""),
        ("ANNA@example.test", "anna@example.test", ""),  # the name repeats the real address
        ("", "anna@example.test", ""),
    ],
)
def test_a_display_name_that_shows_another_address(name: str, address: str, shown: str) -> None:
    assert identity.sender_warning(name, address) == shown


def test_parse_trace_explains_which_results_count(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mailgate.cli.main import main

    from ..conftest import write_config

    path = write_config(tmp_path, AGENTS, gateway='authserv_id = "mx.example.test"',
                        smtp='trusted_peers = ["10.0.0.1"]')
    good = "mx.example.test; dkim=pass header.d=agents.test"
    eml = tmp_path / "m.eml"
    eml.write_bytes(raw_with([(AR, good)]).replace(b"\r\n\r\n", f"\r\n{AR}: {good}\r\n\r\n".encode(), 1))

    def verdict(*peer: str) -> dict:
        result = CliRunner().invoke(main, ["--config", str(path), "parse", "--json", "--trace", *peer, str(eml)])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["trace"]["identity"]

    trusted = verdict("--peer", "10.0.0.1")
    assert trusted["agent"] == "aino" and trusted["proof"] == "dkim"
    assert [r["read"] for r in trusted["authentication_results"]] == [True, False]
    assert "the sender" in trusted["authentication_results"][1]["why"]
    stranger = verdict("--peer", "192.0.2.9")
    assert stranger["agent"] is None and "192.0.2.9 is not in smtp.trusted_peers" in stranger["why"]


def test_an_imap_mailbox_opts_in_on_its_own(make_config: Callable[..., Config]) -> None:
    imap = """
[[imap]]
name = "provider"
host = "imap.example.test"
username = "support"
password = "secret-password"
trusted_received = 1

[[imap]]
name = "other"
host = "imap.example.test"
username = "other"
password = "secret-password"
"""
    cfg = make_config(AGENTS + imap, gateway='authserv_id = "mx.example.test"')
    fetched = Envelope("", (SUPPORT,), Source.IMAP, source_ref="provider/INBOX/7/42")
    assert identity.trusted_received(cfg, fetched) == 1
    assert identity.trusted_received(cfg, replace(fetched, source_ref="other/INBOX/7/42")) == 0
    assert identity.trusted_received(cfg, replace(fetched, source_ref="gone/INBOX/7/42")) == 0
