"""The top-level header block read once: who, to whom, about what, in which thread; ids made from the bytes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message

from mailgate.mail import addresses, mime
from mailgate.mail.charsets import codec_for, decode_words, fix_surrogates, scrub
from mailgate.models import Address

HEADER_END = re.compile(rb"\r?\n\r?\n")
_IDENTITY_HEADERS = (b"from:", b"to:", b"date:", b"subject:")


def content_key(raw: bytes) -> str:
    """sha256 of the body bytes with line endings made equal.

    The same mail fetched by IMAP and received by SMTP differs only in trace headers (Received,
    Delivered-To, Return-Path), line endings and the blank lines a transport appends at the end.
    """
    match = HEADER_END.search(raw)
    body = raw[match.end() :] if match else b""
    return hashlib.sha256(body.replace(b"\r\n", b"\n").rstrip()).hexdigest()


def generated_message_id(raw: bytes) -> str:
    """A stable Message-ID for a message that has none.

    Derived from what every copy of the mail shares (body, From, To, Date, Subject), not from the
    trace headers each hop adds, so an SMTP and an IMAP copy get the same id and dedupe.
    """
    match = HEADER_END.search(raw)
    head = raw[: match.start()] if match else raw
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", head)
    identity = sorted(
        line.strip() for line in unfolded.split(b"\n") if line.lower().startswith(_IDENTITY_HEADERS)
    )
    digest = hashlib.sha256(content_key(raw).encode() + b"\0" + b"\n".join(identity)).hexdigest()
    return f"sha256-{digest[:32]}@mailgate.invalid"


@dataclass(frozen=True, slots=True)
class Heads:
    """What the top-level mime.header block says: who, to whom, about what, in which thread."""

    headers: tuple[tuple[str, str], ...]
    message_id: str
    generated: bool
    in_reply_to: str | None
    references: tuple[str, ...]
    from_: tuple[Address, ...]
    from_is_clean: bool
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str
    date: datetime | None


def read_heads(msg: Message, raw: bytes, body_charsets: list[str], defects: list[str]) -> Heads:
    headers: list[tuple[str, str]] = []
    unfolded: dict[str, list[str]] = {}
    decoded_first: dict[str, str] = {}
    charset: str | None = None
    for name, value in msg.raw_items():
        name, value = str(name), str(value)
        if charset is None and not (name.isascii() and value.isascii()):
            # 8-bit mime.header bytes carry no label; the body's charset is the sender's best guess.
            charset = _header_charset(msg, body_charsets)
        try:
            name = fix_surrogates(name, charset)
            plain = mime.unfold(fix_surrogates(value, charset))
            decoded = decode_words(plain, charset, defects)
        except Exception:
            defects.append(f"HeaderDecodeError:{scrub(name[:40])}")
            plain = decoded = scrub(str(value))
        headers.append((name, decoded))
        key = name.lower()
        unfolded.setdefault(key, []).append(plain)
        decoded_first.setdefault(key, decoded)

    def first(key: str) -> str | None:
        values = unfolded.get(key)
        return values[0] if values else None

    from_values = unfolded.get("from", [])
    from_: tuple[Address, ...] = ()
    from_clean = False
    for value in from_values:
        # A garbage first From ("[??????]") followed by a real one happens in spam-filtered mail.
        from_, from_clean = addresses.addresses("From", value, defects)
        if from_:
            break
    from_is_clean = from_clean and len(from_) == 1 and len(from_values) == 1
    if not from_:
        # Someone must get the answer: fall back to Sender, then Reply-To (never a clean identity).
        for key in ("sender", "reply-to"):
            from_, _ = addresses.addresses(key.title(), first(key), defects)
            if from_:
                defects.append(f"MissingFrom:{key}")
                break
    to, _ = addresses.addresses("To", _joined(unfolded.get("to")), defects)
    cc, _ = addresses.addresses("Cc", _joined(unfolded.get("cc")), defects)
    reply_to, _ = addresses.addresses("Reply-To", first("reply-to"), defects)

    message_id = addresses.msgid(first("message-id"))
    generated = message_id is None
    if message_id is None:
        message_id = generated_message_id(raw)
    in_reply_to_ids = addresses.msgids(first("in-reply-to") or "")
    return Heads(
        headers=tuple(headers),
        message_id=message_id,
        generated=generated,
        in_reply_to=in_reply_to_ids[0] if in_reply_to_ids else None,
        references=tuple(addresses.msgids(" ".join(unfolded.get("references", [])))),
        from_=from_,
        from_is_clean=from_is_clean,
        to=to,
        cc=cc,
        reply_to=reply_to,
        subject=decoded_first.get("subject", ""),
        date=addresses.date(first("date")),
    )


def _joined(values: list[str] | None) -> str | None:
    # Duplicate To/Cc headers occur (broken list software); their addresses all count.
    return ", ".join(values) if values else None


def _header_charset(msg: Message, labels: list[str]) -> str | None:
    """The charset to read unlabelled 8-bit headers with: a legacy CJK/Cyrillic label beats latin-1.

    A mail with a latin-1 text part and a gb2312 forwarded part most likely has gb2312 headers: the
    specific label tells more, and a wrong multi-byte guess fails to decode instead of garbling.
    """
    found = list(labels)
    if not any(_informative(label) for label in found):
        try:
            for part in msg.walk():
                if mime.content_type(part).startswith("text/"):
                    label = mime.params(part).get("charset")
                    if label:
                        found.append(label)
        except Exception:
            pass
    for label in found:
        if _informative(label):
            return label
    return found[0] if found else None


def _informative(label: str) -> bool:
    return codec_for(label) not in (None, "ascii", "utf-8", "cp1252", "iso8859-15")
