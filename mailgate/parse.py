"""Turn wire bytes into a ParsedMail: one compat32 parse, guarded header reads, charset fallback."""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, UTC
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import decode_params, getaddresses, parsedate_to_datetime, unquote

from mailgate import quotes
from mailgate.charsets import codec_for, decode_bytes, decode_words, fix_surrogates
from mailgate.classify import Signals, classify, original_message_id
from mailgate.models import Address, Attachment, MailKind, ParsedMail
from mailgate.text import html_to_text, sanitize_html

_PARSER = BytesParser(policy=compat32)

_FOLD = re.compile(r"\r?\n[ \t]+")

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

_LINE_BREAKS = re.compile(r"[\r\n]+[ \t]?|[\x00-\x08\x0b-\x1f\x7f]")
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

    charsets: list[str] = field(default_factory=list)
    text: str | None = None
    html: str | None = None
    named_text: str | None = None  # an inline text/plain part with a file name: the body if nothing else is
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


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_IDENTITY_HEADERS = (b"from:", b"to:", b"date:", b"subject:")


def content_key(raw: bytes) -> str:
    """sha256 of the body bytes with line endings made equal.

    The same mail fetched by IMAP and received by SMTP differs only in trace headers (Received,
    Delivered-To, Return-Path), line endings and the blank lines a transport appends at the end.
    """
    match = _HEADER_END.search(raw)
    body = raw[match.end() :] if match else b""
    return hashlib.sha256(body.replace(b"\r\n", b"\n").rstrip()).hexdigest()


def generated_message_id(raw: bytes) -> str:
    """A stable Message-ID for a message that has none.

    Derived from what every copy of the mail shares (body, From, To, Date, Subject), not from the
    trace headers each hop adds, so an SMTP and an IMAP copy get the same id and dedupe.
    """
    match = _HEADER_END.search(raw)
    head = raw[: match.start()] if match else raw
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", head)
    identity = sorted(
        line.strip() for line in unfolded.split(b"\n") if line.lower().startswith(_IDENTITY_HEADERS)
    )
    digest = hashlib.sha256(content_key(raw).encode() + b"\0" + b"\n".join(identity)).hexdigest()
    return f"sha256-{digest[:32]}@mailgate.invalid"


def _parse(raw: bytes) -> ParsedMail:
    msg = _PARSER.parsebytes(raw)
    repaired = False
    source = raw
    for _ in range(2):  # a banner line may hide a second breakage behind it
        try:
            fixed = _repair_headers(source, msg) if msg.defects else None
        except Exception:  # a bug in mending must not cost the plain parse
            fixed = None
        if fixed is None:
            break
        msg = _PARSER.parsebytes(fixed)
        source = fixed
        repaired = True
    top_type = _content_type(msg)
    walk = _Walk()
    _walk(msg, (), walk)
    for part in msg.walk():
        for defect in part.defects:
            walk.defects.append(type(defect).__name__)
    defects: list[str] = ["RepairedHeaders"] if repaired else []

    headers: list[tuple[str, str]] = []
    unfolded: dict[str, list[str]] = {}
    decoded_first: dict[str, str] = {}
    charset: str | None = None
    for name, value in msg.raw_items():
        name, value = str(name), str(value)
        if charset is None and not (name.isascii() and value.isascii()):
            # 8-bit header bytes carry no label; the body's charset is the sender's best guess.
            charset = _header_charset(msg, walk.charsets)
        try:
            name = fix_surrogates(name, charset)
            plain = _unfold(fix_surrogates(value, charset))
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
    from_: tuple[Address, ...] = ()
    from_clean = False
    for value in from_values:
        # A garbage first From ("[??????]") followed by a real one happens in spam-filtered mail.
        from_, from_clean = _addresses("From", value, defects)
        if from_:
            break
    from_is_clean = from_clean and len(from_) == 1 and len(from_values) == 1
    if not from_:
        # Someone must get the answer: fall back to Sender, then Reply-To (never a clean identity).
        for key in ("sender", "reply-to"):
            from_, _ = _addresses(key.title(), first(key), defects)
            if from_:
                defects.append(f"MissingFrom:{key}")
                break
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
    text = walk.text if walk.text is not None else (walk.named_text or "")
    if html is not None and not text.strip():
        # Some senders ship an empty text alternative next to the real HTML body.
        text = html_to_text(html) or text
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

    safe_html = sanitize_html(html) if html is not None else None
    try:
        reply = quotes.reply_text(text, safe_html)
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
        html=safe_html,
        reply_text=reply,
        attachments=tuple(walk.attachments),
        kind=kind,
        bounce_of=bounce_of,
        defects=tuple(dict.fromkeys(walk.defects + defects)),
        headers=tuple(headers),
    )


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_HEADER_START = re.compile(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]|From ")
_BAD_NAME = re.compile(rb"([^:\r\n]{1,200}):")
_NAME_JUNK = re.compile(rb"[^\x21-\x39\x3b-\x7e]")
_KNOWN_FIELD = re.compile(
    rb"(from|to|cc|subject|date|received|return-path|message-id|mime-version|content-type):", re.I
)
_TRANSPORT_FIELD = re.compile(rb"(received|return-path|message-id|mime-version|content-type|delivered-to):", re.I)


def _repair_headers(raw: bytes, msg: Message) -> bytes | None:
    """The raw bytes with a broken top-level header block mended, or None when there is nothing to mend.

    Real-world breakages that hide the whole MIME structure from compat32:
    - a field name with a space or tab in it (letters' hostile "X-Script/function/\t !..." header),
      or a continuation line without indentation, ends the header block there, and every header
      after it, Content-Type included, becomes body;
    - a boundary parameter folded inside its quotes (Outlook 2000) keeps the line break in the
      boundary, so no delimiter line matches.
    Only the parse sees the mended bytes; the spool keeps the original.
    """
    names = set(type(d).__name__ for d in msg.defects)
    if "MissingHeaderBodySeparatorDefect" in names and len(msg) == 0:
        return _drop_leading_junk(raw)
    bad_names = "MissingHeaderBodySeparatorDefect" in names
    boundary = msg.get_boundary() if "StartBoundaryNotFoundDefect" in names else None
    folded_boundary = boundary is not None and ("\n" in boundary or "\r" in boundary)
    if not bad_names and not folded_boundary:
        return None
    end = _HEADER_END.search(raw)
    if end is None:
        return None
    lines = raw[: end.start()].split(b"\n")
    known_after = [False] * len(lines)
    for index in range(len(lines) - 2, -1, -1):
        known_after[index] = known_after[index + 1] or bool(_KNOWN_FIELD.match(lines[index + 1]))
    changed = False
    in_content_type = False
    for index, line in enumerate(lines):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if in_content_type and folded_boundary:
                lines[index - 1] = lines[index - 1].rstrip(b"\r")
                lines[index] = b"\x00" + line  # marker: join with the previous line below
                changed = True
            continue
        in_content_type = line[:13].lower() == b"content-type:"
        if _HEADER_START.match(line):
            continue
        if not bad_names:
            return None
        bad = _BAD_NAME.match(line)
        continued = index + 1 < len(lines) and lines[index + 1][:1] in (b" ", b"\t")
        if known_after[index]:
            # An unindented continuation line (seen in Kerio-exported mail): indent it.
            lines[index] = b" " + line
        elif bad is not None and (continued or line[:2].lower() == b"x-"):
            lines[index] = _NAME_JUNK.sub(b"-", bad.group(1)) + line[bad.end(1) :]
        else:
            return None
        changed = True
    if not changed:
        return None
    block = b"\n".join(lines).replace(b"\n\x00", b"")
    return block + raw[end.start() :]


def _drop_leading_junk(raw: bytes) -> bytes | None:
    """The raw bytes without a banner line before the headers ("---- Original email message ----").

    Mail exported or forwarded by some servers (Kerio) starts with such a line; compat32 then
    reads the whole message as body. Only done when real header lines follow.
    """
    lines = raw[:20000].split(b"\n", 40)
    for skip in (1, 2):
        if len(lines) < skip + 3 or not lines[skip - 1].strip():
            return None  # a blank line ends the header block: what follows is body text
        following = lines[skip : skip + 3]
        headers_follow = all(line.strip(b"\r") and _HEADER_START.match(line) for line in following)
        # Quoted Outlook header blocks have From/Sent/To/Subject; only real mail has these.
        if headers_follow and any(_TRANSPORT_FIELD.match(line) for line in lines[skip:40]):
            return raw[sum(len(line) + 1 for line in lines[:skip]) :]
    return None


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
    # Clients display a fold as one space; RFC 5322's "remove the CRLF" leaves runs of indentation.
    value = _FOLD.sub(" ", value)
    if "\r" in value or "\n" in value:
        value = value.replace("\r", " ").replace("\n", " ")
    return value


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
                if _content_type(part).startswith("text/"):
                    label = _params(part).get("charset")
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
        strict: list[Address] = []
        for addr in parsed.addresses:
            spec = f"{addr.username}@{addr.domain}" if addr.domain else addr.username
            if spec.strip():
                strict.append(Address(_name(addr.display_name), spec.strip()))
        # CVE-2023-27043: only policy.default sees that "a@x)<b@y>" is not one clean mailbox.
        # Obsolete-but-unambiguous syntax (a period in a display name) still counts as clean.
        serious = [d for d in parsed.defects if type(d).__name__ != "ObsoleteHeaderDefect"]
    except Exception as exc:  # CPython #83281 family: "undisclosed-recipients:;>" and friends
        defects.append(f"HeaderDecodeError:{name}:{type(exc).__name__}")
        return _lenient_addresses(value), False
    if not serious and "(" not in value:
        return tuple(strict), True
    # For display, the lenient parser recovers more: names from comments ("a@x (Alice)") and
    # addresses policy.default gives up on ("<a@example.com.>"). Cleanliness stays strict.
    lenient = _lenient_addresses(value)
    if serious and sum("@" in a.address for a in lenient) > sum("@" in a.address for a in strict):
        return lenient, False
    names = {a.address: a.name for a in lenient}
    return tuple(Address(a.name or names.get(a.address, ""), a.address) for a in strict), not serious


def _lenient_addresses(value: str) -> tuple[Address, ...]:
    try:
        pairs = getaddresses([value])
    except Exception:
        return ()
    return tuple(Address(_name(n), a.strip()) for n, a in pairs if a.strip())


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
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def _params(part: Message, key: str = "content-type") -> dict[str, str]:
    """The parameters of a structured header, lowercased names, RFC 2231 values decoded; never raises.

    Read from the raw value: compat32's get_params() turns 8-bit bytes into U+FFFD first.
    """
    raw = _raw_header(part, key)
    if raw is None:
        return {}
    try:
        pairs = decode_params(_split_params(fix_surrogates(raw)))
    except Exception:
        return {}
    found: dict[str, str] = {}
    for name, value in pairs[1:]:
        if name in found:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, value)
            try:
                data = unquote(value[2]).encode("latin-1", errors="replace")
                found[name] = decode_bytes(data, value[0] or None)[0]
            except Exception:
                found[name] = unquote(str(value[2]))
        else:
            found[name] = unquote(value)
    return found


def _raw_header(part: Message, key: str) -> str | None:
    for name, value in part.raw_items():
        if name.lower() == key:
            return _unfold(str(value))
    return None


def _split_params(value: str) -> list[tuple[str, str]]:
    """Split "type; a=1; b=\"x;y\"" at semicolons outside quotes into (name, value) pairs."""
    parts: list[str] = []
    start = 0
    quoted = False
    escaped = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append(value[start:index])
            start = index + 1
    parts.append(value[start:])
    pairs: list[tuple[str, str]] = [(parts[0].strip().lower(), "")]
    for item in parts[1:]:
        name, sep, val = item.partition("=")
        if sep and name.strip():
            pairs.append((name.strip().lower(), val.strip()))
    return pairs


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
    # Folded parameters leave line breaks behind; inner spaces are part of the name.
    name = _LINE_BREAKS.sub("", name).strip()
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


def _walk(part: Message, ancestors: tuple[Message, ...], walk: _Walk) -> None:
    ctype = _content_type(part)
    walk.part_types.add(ctype)
    parent = _content_type(ancestors[-1]) if ancestors else ""
    payload = part.get_payload()
    if isinstance(payload, list) and ctype.startswith("multipart/"):
        for index, child in enumerate(payload):
            if not isinstance(child, Message):
                continue
            child_type = _content_type(child)
            if ctype == "multipart/report" and index > 0 and child_type in _REPORT_PARTS:
                _report_part(child, child_type, walk)
            _walk(child, (*ancestors, part), walk)
        return
    disposition = _disposition(part)
    ct_params = _params(part)
    cd_params = _params(part, "content-disposition") if disposition is not None else {}
    charset = ct_params.get("charset")
    if charset and ctype.startswith("text/"):
        walk.charsets.append(charset)
    filename = _filename(ct_params, cd_params, charset)
    named_or_attached = disposition == "attachment" or filename is not None
    if not named_or_attached:
        if ctype == "text/plain" or ctype.startswith("multipart/"):
            if walk.text is None:
                walk.text = _decode_text(part, ct_params, ancestors, walk)
                return
        elif ctype == "text/html":
            if walk.html is None:
                walk.html = _decode_text(part, ct_params, ancestors, walk)
                return
        elif ctype in _ALTERNATIVE_TEXT and parent == "multipart/alternative":
            return
    elif ctype == "text/plain" and disposition != "attachment" and walk.named_text is None:
        walk.named_text = _decode_text(part, ct_params, ancestors, walk)
    if ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
        walk.embedded_ids.extend(_embedded_ids(part))
    data = _payload_bytes(part)
    content_id = _content_id(part)
    inline = disposition == "inline" or (
        disposition is None and (content_id is not None or parent == "multipart/related")
    )
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
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        blocks = part.get_payload()
        if isinstance(blocks, list):
            for block in blocks:
                if isinstance(block, Message):
                    action = header(block, "action")
                    if action:
                        walk.dsn_actions.append(action.strip().lower())


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


def _decode_text(part: Message, ct_params: dict[str, str], ancestors: tuple[Message, ...], walk: _Walk) -> str:
    data = _payload_bytes(part)
    label = ct_params.get("charset")
    inherited = None
    if not label and (not data.isascii() or b"\x1b" in data):
        # Some clients label the multipart container instead of the text part inside it.
        for ancestor in reversed(ancestors):
            inherited = _params(ancestor).get("charset")
            if inherited:
                break
    text, defect = decode_bytes(data, label, inherited)
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
