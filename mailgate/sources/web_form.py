"""What a web form or API client sent: the body read by its type, each field checked, nothing trusted."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from urllib.parse import parse_qsl

from mailgate.mail.addresses import addresses

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
FIELDS = ("name", "email", "subject", "message", "phone", "token", "website")
HONEYPOT = "website"  # hidden from people by the page's CSS; robots fill in every field they find
# Lengths people need: RFC 5321 4.5.3.1.3 caps a path at 256 octets (254 for the address),
# a subject past a line is no subject, and E.164 numbers with extensions stay well under 40.
LIMITS = {"name": 200, "email": 254, "subject": 200, "message": 20_000, "phone": 40}
_PHONE_CHARS = frozenset("0123456789+-()./ xX#ext")
# Bidi embeddings and overrides (U+202A-202E, U+2066-2069) make a name or subject display
# other than it reads ("Trojan Source"); nobody types them in a contact form.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class Refusal(Exception):
    """A request answered with an error: its HTTP status and a message for the person or client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Submission:
    """A checked contact request: one person's address and words, ready to become a message."""

    name: str
    email: str
    subject: str
    message: str
    phone: str


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def read_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The submitted fields of a JSON object or a URL-encoded form; Refusal(400/415) for anything else."""
    kind = media_type(content_type)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal(400, "the body is not UTF-8") from None
    if kind == FORM:
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=50,
                              encoding="utf-8", errors="strict")
        except (ValueError, UnicodeDecodeError):
            raise Refusal(400, "the form is not valid URL-encoded UTF-8 (or has too many fields)") from None
        fields: dict[str, str] = {}
        for key, value in pairs:
            if key in FIELDS:
                if key in fields:
                    raise Refusal(400, f"the field {key!r} is given twice")
                fields[key] = value
        return fields  # other fields (a submit button's name, a consent box) are the page's business
    if kind == JSON:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise Refusal(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Refusal(400, "the body must be a JSON object")
        if "token" in data:
            raise Refusal(400, "send the token in the header 'Authorization: Bearer …', not in the JSON")
        unknown = sorted(k for k in data if k not in FIELDS)
        if unknown:
            raise Refusal(400, f"unknown field {unknown[0]!r} (known: name, email, subject, message, phone)")
        for key, value in data.items():
            if not isinstance(value, str):
                raise Refusal(400, f"the field {key!r} must be a string")
        return dict(data)
    raise Refusal(415, f"send {JSON} or {FORM}, not {kind or 'no Content-Type'}")


def _clean(field: str, value: str, *, multiline: bool = False) -> str:
    for ch in value:
        kind = unicodedata.category(ch)
        allowed_break = multiline and ch in "\r\n\t"
        # Cc: controls (CR/LF in a header field would start a new header); Cs: a lone surrogate,
        # which JSON can spell ("\ud800") and no UTF-8 mail can carry; Zl/Zp: line breaks.
        if (kind in ("Cc", "Cs") and not allowed_break) or (kind in ("Zl", "Zp") and not multiline) or ch in _BIDI:
            raise Refusal(400, f"the field {field!r} contains a control character (U+{ord(ch):04X})")
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    else:
        value = " ".join(value.split())
    if len(value) > LIMITS[field]:
        raise Refusal(400, f"the field {field!r} is longer than {LIMITS[field]} characters")
    return value


def email_address(value: str) -> str:
    """One bare addr-spec with a domain that has a dot; an IDN domain in its ASCII (punycode) form."""
    value = value.strip()
    if not value:
        raise Refusal(400, "the field 'email' is required")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise Refusal(400, f"{value!r} is not an email address")
    try:
        domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise Refusal(400, f"{value!r} has a domain that is not a valid hostname") from None
    if not local.isascii():
        raise Refusal(400, "write the address in ASCII: a non-ASCII local part cannot be answered by every mail server")
    candidate = f"{local}@{domain}"
    found, clean = addresses("From", candidate, [])
    # One mailbox, exactly as typed: "a@x.test, b@y.test" or "Name <a@x.test>" would smuggle a
    # second recipient or a display name into the acknowledgement's envelope.
    if not clean or len(found) != 1 or found[0].address != candidate or found[0].name:
        raise Refusal(400, f"{value!r} is not one plain email address")
    if "." not in domain or domain.startswith(".") or domain.endswith(".") or ".." in domain:
        raise Refusal(400, f"{value!r} has no valid domain")
    return candidate


def submission(fields: dict[str, str]) -> Submission:
    """The fields of a request checked one by one (lengths, control characters, the address)."""
    cleaned = {key: _clean(key, fields.get(key, ""), multiline=key == "message") for key in LIMITS}
    if not cleaned["message"]:
        raise Refusal(400, "the field 'message' is required")
    phone = cleaned["phone"]
    if phone and (not set(phone) <= _PHONE_CHARS or sum(c.isdigit() for c in phone) < 3):
        raise Refusal(400, f"{phone!r} is not a phone number")
    subject = cleaned["subject"] or _subject_from(cleaned["message"])
    return Submission(cleaned["name"], email_address(cleaned["email"]), subject, cleaned["message"], phone)


def _subject_from(message: str) -> str:
    """Many contact forms have no subject field: the first words of the message stand in for one."""
    first = " ".join(message.split("\n", 1)[0].split())
    return first if len(first) <= 78 else first[:77].rsplit(" ", 1)[0] + "…"
