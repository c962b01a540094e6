"""Signed ticket tokens: in reply addresses, Message-IDs and body markers; unguessable by HMAC."""

from __future__ import annotations

import functools
import hmac
import re
import secrets
from dataclasses import dataclass

# Lowercase only: some MTAs fold the local part, and the token must survive that.
_TOKEN = re.compile(r"(?<![a-z0-9])([a-z])-(\d{1,12})(?:-([a-z0-9_]{1,40}))?-([a-z2-7]{16})(?![a-z0-9])")
_MARKER = "ref:"

# Purposes. An agent's addresses carry the agent's id, so the token is that agent's proof of identity.
REPLY = "r"  # a customer's reply address: threads into the ticket
BOUNCE = "b"  # the VERP return path of one outbox row
AGENT_REPLY = "a"  # agent X answers the customer on this ticket (ticket 0: X's command address)
AGENT_NOTE = "n"  # agent X adds an internal note to this ticket: never reaches the customer
FORWARD = "f"  # an outside person the ticket was forwarded to answers: an internal note (agent = forwards row id)
HELP = "h"  # a colleague asked for help answers: an internal note, the asker is told (agent = forwards row id)
TASK = "t"  # a member of a task's queue answers the task: a note on its ticket (ticket = task id, agent = the member)


@dataclass(frozen=True, slots=True)
class Token:
    """What a verified token says: which ticket, what for, and (for agents) whose."""

    purpose: str  # 'r' reply to the ticket; 'b' VERP bounce address; 'a'/'n' an agent's reply/note address
    ticket: int  # the ticket number; for 'b' the outbox row the bounce reports on
    agent: str | None = None

    def payload(self) -> str:
        return f"{self.purpose}-{self.ticket}" + (f"-{self.agent}" if self.agent else "")


# RFC 4648 base32 in lowercase, ten bits (two characters) at a time: the 80-bit MAC is eight
# lookups, where base64.b32encode is pure Python over 5-byte blocks.
_PAIRS = [a + b for a in "abcdefghijklmnopqrstuvwxyz234567" for b in "abcdefghijklmnopqrstuvwxyz234567"]
_PURPOSE = re.compile(r"[a-z]")
_AGENT = re.compile(r"[a-z0-9_]{1,40}")


@functools.lru_cache(maxsize=8)  # the gateway's secret (and an old one while it is rotated)
def _keyed(secret: bytes) -> hmac.HMAC:
    """HMAC-SHA256 with the key already absorbed: a copy of it costs less than a new one per token."""
    return hmac.new(secret, digestmod="sha256")


def _mac(secret: bytes, payload: str) -> str:
    # 16 base32 characters = 80 bits: far beyond guessing at SMTP speed. The same characters as
    # base64.b32encode(digest[:10]).lower(), which made every token already sent.
    mac = _keyed(secret).copy()
    mac.update(payload.encode())
    n = int.from_bytes(mac.digest()[:10], "big")
    pairs = _PAIRS
    return (pairs[n >> 70] + pairs[(n >> 60) & 1023] + pairs[(n >> 50) & 1023] + pairs[(n >> 40) & 1023]
            + pairs[(n >> 30) & 1023] + pairs[(n >> 20) & 1023] + pairs[(n >> 10) & 1023] + pairs[n & 1023])


def make(secret: bytes, token: Token) -> str:
    """The signed text form, e.g. 'r-1042-k3j5...'."""
    if not _PURPOSE.fullmatch(token.purpose) or (token.agent and not _AGENT.fullmatch(token.agent)):
        raise ValueError("token purpose is one letter a-z; agent ids are [a-z0-9_]")
    payload = token.payload()
    return f"{payload}-{_mac(secret, payload)}"


def find(secret: bytes, text: str) -> list[Token]:
    """Every correctly signed token in a text, in order of appearance; forged ones are ignored."""
    found = []
    for match in _TOKEN.finditer(text.lower()):
        token = Token(match.group(1), int(match.group(2)), match.group(3))
        if hmac.compare_digest(_mac(secret, token.payload()), match.group(4)):
            found.append(token)
    return found


def reply_address(secret: bytes, support_address: str, token: Token) -> str:
    """support@x → support+<token>@x: replies to it thread by token."""
    local, domain = support_address.rsplit("@", 1)
    return f"{local}+{make(secret, token)}@{domain}"


def message_id(secret: bytes, domain: str, token: Token) -> str:
    """A Message-ID for mailgate's own mail that carries the token (without angle brackets)."""
    return f"mg.{make(secret, token)}.{secrets.token_hex(6)}@{domain}"


def body_marker(secret: bytes, token: Token) -> str:
    """A short marker for the quoted body; it survives providers that rewrite Message-IDs."""
    return f"[{_MARKER}{make(secret, token)}]"
