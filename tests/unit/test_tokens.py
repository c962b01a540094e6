"""Tokens already out there (in reply addresses, Message-IDs, VERP paths) keep verifying, to the character."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest

from mailgate import tokens
from mailgate.tokens import Token

# Made by the first implementation (hmac.new + base64.b32encode); these strings are in mail sent.
ISSUED = [
    (b"bench-secret-0123456789", Token("r", 1042), "r-1042-5dci6weareqf3jq7"),
    (b"bench-secret-0123456789", Token("a", 7, "aino"), "a-7-aino-zazzaan2p3zzmurg"),
    (b"s3cr3t-\xff\x00key", Token("b", 999999999999), "b-999999999999-qxwsn72kaohjpu4n"),
    (b"another secret for the example test", Token("n", 0, "agent_12"), "n-0-agent_12-ddhnrt32nzqxle3g"),
    (b"x" * 64, Token("t", 31, "a" * 40), "t-31-" + "a" * 40 + "-royktz5hs33nrhs6"),
    (b"k", Token("f", 5, "17"), "f-5-17-tde3m3sojfnl32mi"),
]


@pytest.mark.parametrize(("secret", "token", "text"), ISSUED)
def test_issued_tokens_are_made_and_found_unchanged(secret: bytes, token: Token, text: str) -> None:
    assert tokens.make(secret, token) == text
    assert tokens.find(secret, f"Reply to support+{text.upper()}@example.test please") == [token]
    assert tokens.find(b"another key", text) == []


def test_the_mac_is_rfc4648_base32_of_the_hmac_for_any_secret_and_payload() -> None:
    rng = random.Random(7)
    for _ in range(500):
        secret = rng.randbytes(rng.randrange(1, 80))
        token = Token(rng.choice("rbanfht"), rng.randrange(10**12), rng.choice([None, "aino", "x_9"]))
        digest = hmac.new(secret, token.payload().encode(), hashlib.sha256).digest()
        expected = base64.b32encode(digest[:10]).decode().lower()
        assert tokens.make(secret, token) == f"{token.payload()}-{expected}"


def test_a_changed_character_is_refused() -> None:
    secret, token, text = ISSUED[0]
    last = "a" if text[-1] != "a" else "b"
    assert tokens.find(secret, text[:-1] + last) == []
    assert tokens.find(secret, text.replace("1042", "1043")) == []


def test_malformed_purposes_and_agents_are_refused() -> None:
    for bad in (Token("rr", 1), Token("R", 1), Token("a", 1, "Aino"), Token("a", 1, "a-b"), Token("a", 1, "x" * 41)):
        with pytest.raises(ValueError):
            tokens.make(b"k", bad)
