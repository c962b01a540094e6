"""Address, Message-ID and date headers: fast exact paths, guarded fallbacks, CVE-2023-27043 aware."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.policy import default as default_policy
from email.utils import getaddresses, parsedate_to_datetime

from mailgate.mail.charsets import decode_words
from mailgate.models import Address

# A mailbox list that policy.default would accept without any defect: quoted names without
# escapes or encoded words, phrases without periods (a period in a phrase is an obsolete-syntax
# defect), dot-atom addresses. Anything else goes to the slow, exact header registry parse.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDR = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})*"
_WORD = r"[^\x00-\x20\"(),.:;<>@\[\]\\\x7f]+"
_DISPLAY = rf"""(?:"(?P<quoted>(?:(?!=\?)[^"\\\r\n])*)"|(?P<phrase>{_WORD}(?:[ \t]+{_WORD})*))"""
_MAILBOX = rf"(?:{_DISPLAY}[ \t]*)?<(?P<angle>{_ADDR})>|(?P<bare>{_ADDR})"
_MAILBOX_RE = re.compile(_MAILBOX)
_ANON = re.sub(r"\(\?P<\w+>", "(?:", _MAILBOX)
_MAILBOX_LIST_RE = re.compile(rf"[ \t]*(?:{_ANON})(?:[ \t]*,[ \t]*(?:{_ANON}))*[ \t]*")
_MSGID_BRACKETED = re.compile(r"<([^<>]*)>")
_MSGID_SPLIT = re.compile(r"[\s,]+")


def addresses(name: str, value: str | None, defects: list[str]) -> tuple[tuple[Address, ...], bool]:
    """The mailboxes in an address header and whether policy.default found it defect-free."""
    if value is None or not value.strip():
        return (), False
    if _MAILBOX_LIST_RE.fullmatch(value):
        found = []
        for m in _MAILBOX_RE.finditer(value):
            display = m.group("quoted") if m.group("quoted") is not None else (m.group("phrase") or "")
            found.append(Address(_name(display), (m.group("angle") or m.group("bare") or "").strip()))
        return tuple(found), True
    try:
        parsed = default_policy.header_factory(name, value)
        strict: list[Address] = []
        for addr in parsed.addresses:
            spec = addr_spec(addr.username, addr.domain)
            if spec.strip():
                strict.append(_unbracketed(Address(_name(addr.display_name), spec.strip()), value))
        # CVE-2023-27043: only policy.default sees that "a@x)<b@y>" is not one clean mailbox.
        # Obsolete-but-unambiguous syntax (a period in a display name) still counts as clean.
        serious = [d for d in parsed.defects if type(d).__name__ != "ObsoleteHeaderDefect"]
    except Exception as exc:  # CPython #83281 family: "undisclosed-recipients:;>" and friends
        defects.append(f"HeaderDecodeError:{name}:{type(exc).__name__}")
        return lenient_addresses(value), False
    if not serious and "(" not in value:
        return tuple(strict), True
    # For display, the lenient parser recovers more: names from comments ("a@x (Alice)") and
    # addresses policy.default gives up on ("<a@example.com.>"). Cleanliness stays strict.
    lenient = lenient_addresses(value)
    if serious and sum("@" in a.address for a in lenient) > sum("@" in a.address for a in strict):
        return lenient, False
    names = {a.address: a.name for a in lenient}
    return tuple(Address(a.name or names.get(a.address, ""), a.address) for a in strict), not serious


def lenient_addresses(value: str) -> tuple[Address, ...]:
    try:
        pairs = getaddresses([value])
    except Exception:
        return ()
    found = (Address(_name(n), _requoted(a.strip())) for n, a in pairs if a.strip())
    return tuple(_unbracketed(a, value) for a in found)


# What makes a local part need quotes (RFC 5322 3.2.3 specials, white space, controls). Dots in
# odd places are left alone: Japanese carriers issued "taro..hanako.@" addresses that their servers
# and everyone else's accept unquoted; non-ASCII is plain atext under RFC 6532.
_NEEDS_QUOTES = re.compile(r'[\s"(),:;<>@\[\]\\\x00-\x1f\x7f]')


def addr_spec(local: str, domain: str) -> str:
    """local@domain as RFC 5322 section 3.4.1 writes it: a local part with specials or spaces stays quoted.

    The parsers hand back the local part unquoted; '"First Last"@example.com' joined bare becomes
    "First Last@example.com", another (undeliverable) mailbox.
    """
    if not domain:
        return local  # no mailbox at all ("undisclosed-recipients", a bare word): shown as written
    if local and _NEEDS_QUOTES.search(local):
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{local}@{domain}"


def _requoted(spec: str) -> str:
    # getaddresses() unquotes too; only a spec with one "@" and a local part needing quotes changes.
    local, at, domain = spec.rpartition("@")
    if not at or not local or not _NEEDS_QUOTES.search(local):
        return spec
    if local.startswith('"') and local.endswith('"') and len(local) > 1:
        return spec
    return addr_spec(local, domain)


def _unbracketed(found: Address, value: str) -> Address:
    """'John Smith john@example.com' (a name without angle brackets, as some web forms write it)
    is John Smith at john@example.com, not the mailbox "John Smith john": the sender never quoted it."""
    local, at, domain = found.address.rpartition("@")
    bare = local.strip('"')
    if not at or not any(c.isspace() for c in bare) or f'"{bare}"' in value:
        return found
    *words, last = bare.split()
    return Address(found.name or " ".join(words), f"{last}@{domain}")


def _name(display: str) -> str:
    if "=?" in display:
        display = decode_words(display)
    return display.strip()


def msgid(value: str | None) -> str | None:
    if value is None:
        return None
    ids = msgids(value)
    if not ids:
        return None
    candidate = ids[0]
    # Unusable ids would break threading (RFC 5322 caps a line at 998 characters).
    if len(candidate) > 900 or any(ord(c) < 0x21 for c in candidate):
        return None
    return candidate


def msgids(value: str) -> list[str]:
    """The msg-ids in a header, in order, tolerating missing brackets, commas and garbage."""
    ids = ["".join(m.split()) for m in _MSGID_BRACKETED.findall(value)]
    if not ids:
        ids = [token.strip("<>") for token in _MSGID_SPLIT.split(value) if "@" in token]
        if not ids and value.strip() and not any(c.isspace() for c in value.strip()):
            ids = [value.strip().strip("<>")]
    return list(dict.fromkeys(i for i in ids if i))


def date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # TypeError/ValueError/IndexError on garbage, OverflowError on year 99999
        return None
    if parsed.tzinfo is None:
        # "-0000" and zone-less dates: RFC 5322 section 3.3 says the zone is unknown; UTC is the
        # honest guess that keeps comparisons working.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
