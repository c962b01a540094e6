"""Turn wire bytes into a ParsedMail: one compat32 parse, guarded header reads, charset fallback."""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import getaddresses, parsedate_to_datetime

from mailgate import quotes
from mailgate.charsets import decode_bytes, decode_words, fix_surrogates
from mailgate.classify import Signals, classify, original_message_id
from mailgate.models import Address, Attachment, MailKind, ParsedMail
from mailgate.text import html_to_text, sanitize_html

_PARSER = BytesParser(policy=compat32)

_FOLD = re.compile(r"\r?\n(?=[ \t])")

# A mailbox list that policy.default would accept without any defect: quoted names without
# escapes or encoded words, phrases without periods (a period in a phrase is an obsolete-syntax
# defect), dot-atom addresses. Anything else goes to the slow, exact header registry parse.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ADDR = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
_WORD = r"[^\x00-\x20\"(),.:;<>@\[\]\\\x7f]+"
_MAILBOX = rf"""(?:(?:"(?P<quoted>(?:(?!=\?)[^"\\\r\n])*)"|(?P<phrase>{_WORD}(?:[ \t]+{_WORD})*))[ \t]*)?<(?P<angle>{_ADDR})>|(?P<bare>{_ADDR})"""
_MAILBOX_RE = re.compile(_MAILBOX)
_ANON = re.sub(r"\(\?P<\w+>", "(?:", _MAILBOX)
_MAILBOX_LIST_RE = re.compile(rf"[ \t]*(?:{_ANON})(?:[ \t]*,[ \t]*(?:{_ANON}))*[ \t]*")

_MSGID_BRACKETED = re.compile(r"<([^<>]*)>")
_MSGID_SPLIT = re.compile(r"[\s,]+")

_REPORT_PARTS = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/global-disposition-notification",
        "message/feedback-report",
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/global-headers",
    }
)
# Other renderings of the body in a multipart/alternative: not attachments, not the body we show.
_ALTERNATIVE_TEXT = frozenset({"text/enriched", "text/richtext", "text/watch-html"})

_UUENCODED = re.compile(r"^begin [0-7]{3,4} ([^\n]+)\n(.*?)^end[ \t]*$\n?", re.M | re.S)


@dataclass(slots=True)
class _Walk:
    """What the MIME walk collects; mutable only while one parse runs."""

    first_charset: str | None = None
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    part_types: set[str] = field(default_factory=set)
    dsn_actions: list[str] = field(default_factory=list)
    embedded_ids: list[str] = field(default_factory=list)


def parse(raw: bytes) -> ParsedMail:
    """Parse one raw message; never raises, whatever the bytes."""
    try:
        data = bytes(raw)
    except Exception:
        data = b""
    try:
        return _parse(data)
    except Exception as exc:  # the last line of defence: a parse must never sink the worker
        return _fallback(data, exc)


def header(msg: Message, name: str, fallback_charset: str | None = None) -> str | None:
    """The first header of that name, unfolded and RFC 2047 decoded; the raw value if decoding fails."""
    wanted = name.lower()
    try:
        items = msg.raw_items()
        for key, value in items:
            if key.lower() == wanted:
                try:
                    return decode_words(_unfold(fix_surrogates(value, fallback_charset)), fallback_charset)
                except Exception:
                    return str(value)
    except Exception:
        return None
    return None


def generated_message_id(raw: bytes) -> str:
    """A stable Message-ID for a message that has none: the same bytes always give the same id."""
    return f"sha256-{hashlib.sha256(raw).hexdigest()[:32]}@mailgate.invalid"


def _parse(raw: bytes) -> ParsedMail:
    msg = _PARSER.parsebytes(raw)
    top_type = _content_type(msg)
    walk = _Walk()
    _walk(msg, "", walk)
    for part in msg.walk():
        for defect in part.defects:
            walk.defects.append(type(defect).__name__)
    # 8-bit header bytes carry no label; the body's charset is the sender's best guess.
    charset = walk.first_charset
    defects: list[str] = []

    headers: list[tuple[str, str]] = []
    unfolded: dict[str, list[str]] = {}
    decoded_first: dict[str, str] = {}
    for name, value in msg.raw_items():
        name = fix_surrogates(str(name), charset)
        try:
            plain = _unfold(fix_surrogates(str(value), charset))
            decoded = decode_words(plain, charset)
        except Exception:
            defects.append(f"HeaderDecodeError:{name[:40]}")
            plain = decoded = str(value)
        headers.append((name, decoded))
        key = name.lower()
        unfolded.setdefault(key, []).append(plain)
        decoded_first.setdefault(key, decoded)

    def first(key: str) -> str | None:
        values = unfolded.get(key)
        return values[0] if values else None

    from_values = unfolded.get("from", [])
    from_, from_clean = _addresses("From", from_values[0] if from_values else None, defects)
    from_is_clean = from_clean and len(from_) == 1 and len(from_values) == 1
    to, _ = _addresses("To", _joined(unfolded.get("to")), defects)
    cc, _ = _addresses("Cc", _joined(unfolded.get("cc")), defects)
    reply_to, _ = _addresses("Reply-To", first("reply-to"), defects)
    subject = decoded_first.get("subject", "")

    message_id = _msgid(first("message-id"))
    generated = message_id is None
    if message_id is None:
        message_id = generated_message_id(raw)
    in_reply_to_ids = _msgids(first("in-reply-to") or "")
    references = tuple(_msgids(" ".join(unfolded.get("references", []))))

    html = walk.html
    text = walk.text or ""
    if html is not None and not text.strip():
        text = html_to_text(html)
    if walk.text is not None:
        text = _extract_uuencoded(text, walk)

    report_type = _params(msg).get("report-type", "").lower() if top_type == "multipart/report" else ""
    sender = from_[0].address if from_ else ""
    kind = classify(
        Signals(
            headers=tuple(headers),
            subject=subject,
            sender=sender,
            content_type=top_type,
            report_type=report_type,
            part_types=frozenset(walk.part_types),
            dsn_actions=tuple(walk.dsn_actions),
            text=text[:4000],
        )
    )
    bounce_of: str | None = None
    if kind is MailKind.BOUNCE:
        own = None if generated else message_id
        candidates = [i for i in walk.embedded_ids if i != own]
        bounce_of = candidates[0] if candidates else original_message_id(text, own)

    try:
        reply = quotes.reply_text(text, html)
    except Exception as exc:  # another module's bug must not lose the mail
        defects.append(f"ReplyTextError:{type(exc).__name__}")
        reply = text

    return ParsedMail(
        message_id=message_id,
        message_id_generated=generated,
        in_reply_to=in_reply_to_ids[0] if in_reply_to_ids else None,
        references=references,
        from_=from_,
        from_is_clean=from_is_clean,
        to=to,
        cc=cc,
        reply_to=reply_to,
        subject=subject,
        date=_date(first("date")),
        text=text,
        html=sanitize_html(html) if html is not None else None,
        reply_text=reply,
        attachments=tuple(walk.attachments),
        kind=kind,
        bounce_of=bounce_of,
        defects=tuple(dict.fromkeys(walk.defects + defects)),
        headers=tuple(headers),
    )


def _fallback(raw: bytes, exc: BaseException) -> ParsedMail:
    try:
        text = _newlines(raw.decode("utf-8", errors="replace"))
    except Exception:
        text = ""
    return ParsedMail(
        message_id=generated_message_id(raw),
        message_id_generated=True,
        in_reply_to=None,
        references=(),
        from_=(),
        from_is_clean=False,
        to=(),
        cc=(),
        reply_to=(),
        subject="",
        date=None,
        text=text,
        html=None,
        reply_text=text,
        attachments=(),
        kind=MailKind.MESSAGE,
        bounce_of=None,
        defects=(f"ParseError:{type(exc).__name__}",),
        headers=(),
    )


def _newlines(text: str) -> str:
    if "\r" in text:
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _unfold(value: str) -> str:
    value = _FOLD.sub("", value)
    if "\r" in value or "\n" in value:
        value = value.replace("\r", " ").replace("\n", " ")
    return value


def _joined(values: list[str] | None) -> str | None:
    # Duplicate To/Cc headers occur (broken list software); their addresses all count.
    return ", ".join(values) if values else None


def _addresses(name: str, value: str | None, defects: list[str]) -> tuple[tuple[Address, ...], bool]:
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
        result: list[Address] = []
        for addr in parsed.addresses:  # type: ignore[attr-defined]
            spec = f"{addr.username}@{addr.domain}" if addr.domain else addr.username
            if spec.strip():
                result.append(Address(_name(addr.display_name), spec.strip()))
        # CVE-2023-27043: only policy.default sees that "a@x)<b@y>" is not one clean mailbox.
        # Obsolete-but-unambiguous syntax (a period in a display name) still counts as clean.
        serious = [d for d in parsed.defects if type(d).__name__ != "ObsoleteHeaderDefect"]
        return tuple(result), not serious
    except Exception as exc:  # CPython #83281 family: "undisclosed-recipients:;>" and friends
        defects.append(f"HeaderDecodeError:{name}:{type(exc).__name__}")
    try:
        pairs = getaddresses([value])
    except Exception:
        return (), False
    return tuple(Address(_name(n), a.strip()) for n, a in pairs if a.strip()), False


def _name(display: str) -> str:
    if "=?" in display:
        display = decode_words(display)
    return display.strip()


def _msgid(value: str | None) -> str | None:
    if value is None:
        return None
    ids = _msgids(value)
    if not ids:
        return None
    candidate = ids[0]
    # Unusable ids would break threading (RFC 5322 caps a line at 998 characters).
    if len(candidate) > 900 or any(ord(c) < 0x21 for c in candidate):
        return None
    return candidate


def _msgids(value: str) -> list[str]:
    """The msg-ids in a header, in order, tolerating missing brackets, commas and garbage."""
    ids = ["".join(m.split()) for m in _MSGID_BRACKETED.findall(value)]
    if not ids:
        ids = [token.strip("<>") for token in _MSGID_SPLIT.split(value) if "@" in token]
        if not ids and value.strip() and not any(c.isspace() for c in value.strip()):
            ids = [value.strip().strip("<>")]
    return list(dict.fromkeys(i for i in ids if i))


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:  # TypeError/ValueError/IndexError on garbage, OverflowError on year 99999
        return None
    if parsed.tzinfo is None:
        # "-0000" and zone-less dates: RFC 5322 section 3.3 says the zone is unknown; UTC is the
        # honest guess that keeps comparisons working.
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def _params(part: Message, key: str = "content-type") -> dict[str, str]:
    """The parameters of a structured header, lowercased names, RFC 2231 values decoded; never raises."""
    if part.get(key) is None:
        return {}
    try:
        pairs = part.get_params(header=key) or []
    except Exception:
        return {}
    found: dict[str, str] = {}
    for name, value in pairs[1:]:
        name = name.strip().lower()
        if name in found:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, value)
            try:
                raw = value[2].encode("latin-1", errors="surrogateescape")
                value = decode_bytes(raw, value[0] or None)[0]
            except Exception:
                value = str(value[2])
        else:
            value = str(value)
            if len(value) > 1 and value[0] == value[-1] == '"':
                value = value[1:-1]
        found[name] = value
    return found


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _filename(ct_params: dict[str, str], cd_params: dict[str, str], fallback: str | None) -> str | None:
    name = cd_params.get("filename") or ct_params.get("name")
    if name is None:
        return None
    name = fix_surrogates(name, fallback)
    # Broken clients put RFC 2047 words into parameters, even inside quotes.
    name = decode_words(name, fallback)
    name = " ".join(name.split())
    return name or None


def _content_id(part: Message) -> str | None:
    value = header(part, "content-id")
    if value is None:
        return None
    value = value.strip().strip("<>").strip()
    return value or None


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    try:
        inner = part.get_payload()
        if isinstance(inner, list):
            # message/rfc822 and friends: compat32 keeps headers as written, so this is close to the wire.
            return b"".join(m.as_bytes(unixfrom=False) for m in inner if isinstance(m, Message))
        if isinstance(inner, str):
            return inner.encode("utf-8", errors="surrogateescape")
    except Exception:
        return b""
    return b""


def _walk(part: Message, parent: str, walk: _Walk) -> None:
    ctype = _content_type(part)
    walk.part_types.add(ctype)
    payload = part.get_payload()
    if isinstance(payload, list) and ctype.startswith("multipart/"):
        for index, child in enumerate(payload):
            if not isinstance(child, Message):
                continue
            child_type = _content_type(child)
            if ctype == "multipart/report" and index > 0 and child_type in _REPORT_PARTS:
                _report_part(child, child_type, walk)
                continue
            _walk(child, ctype, walk)
        return
    disposition = _disposition(part)
    ct_params = _params(part)
    cd_params = _params(part, "content-disposition") if disposition is not None else {}
    charset = ct_params.get("charset")
    if charset and walk.first_charset is None and ctype.startswith("text/"):
        walk.first_charset = charset
    filename = _filename(ct_params, cd_params, charset)
    named_or_attached = disposition == "attachment" or filename is not None
    if not named_or_attached:
        if ctype == "text/plain" or ctype.startswith("multipart/"):
            if walk.text is None:
                walk.text = _decode_text(part, ct_params, walk)
                return
        elif ctype == "text/html":
            if walk.html is None:
                walk.html = _decode_text(part, ct_params, walk)
                return
        elif ctype in _ALTERNATIVE_TEXT and parent == "multipart/alternative":
            return
    if ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
        walk.embedded_ids.extend(_embedded_ids(part))
    data = _payload_bytes(part)
    content_id = _content_id(part)
    inline = disposition == "inline" or (disposition is None and (content_id is not None or parent == "multipart/related"))
    walk.attachments.append(
        Attachment(
            filename=filename,
            content_type=ctype,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            inline=inline,
            content_id=content_id,
            data=data,
        )
    )


def _report_part(part: Message, ctype: str, walk: _Walk) -> None:
    walk.part_types.add(ctype)
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        blocks = part.get_payload()
        if isinstance(blocks, list):
            for block in blocks:
                if isinstance(block, Message):
                    action = header(block, "action")
                    if action:
                        walk.dsn_actions.append(action.strip().lower())
        return
    walk.embedded_ids.extend(_embedded_ids(part))


def _embedded_ids(part: Message) -> list[str]:
    """Message-IDs of a returned message or its headers (the bounce_of candidates)."""
    payload = part.get_payload()
    inner: Message | None = None
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        inner = payload[0]
    else:
        try:
            inner = _PARSER.parsebytes(_payload_bytes(part), headersonly=True)
        except Exception:
            return []
    value = header(inner, "message-id")
    found = _msgid(value)
    return [found] if found else []


def _decode_text(part: Message, ct_params: dict[str, str], walk: _Walk) -> str:
    data = _payload_bytes(part)
    text, defect = decode_bytes(data, ct_params.get("charset"))
    if defect:
        walk.defects.append(defect)
    return _newlines(text)


def _extract_uuencoded(text: str, walk: _Walk) -> str:
    """Move uuencoded files out of a plain-text body into attachments (old clients still send them)."""
    if "begin " not in text:
        return text

    def extract(match: re.Match[str]) -> str:
        chunks: list[bytes] = []
        try:
            for line in match.group(2).splitlines():
                if line.strip() in ("", "`"):
                    continue
                try:
                    chunks.append(binascii.a2b_uu(line))
                except binascii.Error:
                    # Some encoders pad lines short; decode what the length byte promises.
                    nbytes = (((ord(line[0]) - 32) & 63) * 4 + 5) // 3
                    chunks.append(binascii.a2b_uu(line[:nbytes]))
        except (binascii.Error, IndexError, ValueError):
            return match.group(0)
        data = b"".join(chunks)
        walk.attachments.append(
            Attachment(
                filename=match.group(1).strip() or None,
                content_type="application/octet-stream",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                inline=False,
                content_id=None,
                data=data,
            )
        )
        return ""

    return _UUENCODED.sub(extract, text)
