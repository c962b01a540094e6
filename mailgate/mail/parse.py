"""Turn wire bytes into a ParsedMail: one compat32 parse, guarded header reads, charset fallback."""

from __future__ import annotations

import binascii
import dataclasses
import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from email._policybase import Compat32
from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import compat32
from email.utils import decode_params, unquote

from mailgate.mail import addresses, mime_repair, quotes
from mailgate.mail.charsets import codec_for, decode_bytes, decode_words, fix_surrogates, scrub
from mailgate.mail.classify import Signals, classify, original_message_id
from mailgate.mail.text import HTML_LAYOUT_LIMIT, html_to_text, sanitize_html, strip_tags, too_deep, visible_name
from mailgate.models import Address, Attachment, MailKind, ParsedMail

log = logging.getLogger("mailgate.parse")

# Defects that mean the sender's bytes were hostile or beyond a budget: worth one log line.
_DEGRADED = (
    "UnknownCharset", "CharsetDecodeError", "NestingTooDeep", "HtmlToo", "TooManyParts", "ParseError", "BodyParseError",
)  # fmt: skip

# Entities nested deeper than this (multipart in multipart, message/rfc822 in message/rfc822)
# are kept as one opaque attachment. The stdlib parser, walker and generator recurse once or
# more per level: 2,000 nested multiparts or 1,500 nested messages raised RecursionError and
# the mail lost its sender. Forward-as-attachment chains in real mail stay below 20 levels.
MAX_DEPTH = 40
# Attachments taken from one mail. Each becomes a file and a row: 100,000 one-byte parts (an
# 11 MB mail) held the worker 21 s. Past this the mail itself is kept whole as original.eml.
MAX_ATTACHMENTS = 1000
# Text kept from the body of a mail whose MIME structure could not be read at all.
_FALLBACK_TEXT = 1 << 20


class _Part(Message):
    """A compat32 message whose boundary lookup never raises.

    compat32 decodes an RFC 2231 boundary (boundary*=charset''value) with the sender's charset
    and only catches LookupError: "undefined" or "idna" raised UnicodeError out of the parser.
    A boundary that cannot be read is no boundary: the part's body stays text, with a defect.
    """

    def get_boundary(self, failobj: object = None) -> str | None:  # type: ignore[override]
        try:
            return super().get_boundary(failobj)  # type: ignore[arg-type,no-any-return]
        except Exception:
            return failobj  # type: ignore[return-value]


class _Opaque(_Part):
    """An entity nested deeper than MAX_DEPTH: the parser keeps its body as written, unparsed."""

    def get_content_type(self) -> str:
        return "application/octet-stream"


class _BoundedParser(BytesFeedParser):
    """compat32 feed parser that stops descending at MAX_DEPTH.

    The feed parser asks its factory for every new entity while the entities around it are on
    its stack; past MAX_DEPTH it gets an _Opaque one, whose content type tells the parser not to
    look inside (the stack is stdlib-internal; tests pin the behaviour).
    """

    def __init__(self) -> None:
        super().__init__(self._entity, policy=compat32)

    def _entity(self, policy: Compat32 = compat32) -> Message:
        depth = len(getattr(self, "_msgstack", ()))
        return _Opaque(policy) if depth >= MAX_DEPTH else _Part(policy)


def parse_bytes(raw: bytes, headersonly: bool = False) -> Message:
    """compat32 parse with bounded nesting; may raise on bytes the stdlib cannot read."""
    parser = _BoundedParser()
    if headersonly:
        parser._set_headersonly()
    parser.feed(raw)
    return parser.close()


class _Compat32Short(Compat32):
    """compat32 that writes a short one-line ASCII header without running it through Header.

    For such a value Header.encode() returns it unchanged (nothing to wrap, encode, or trim), so
    the bytes are compat32's; it only skips the ~50 µs that encode costs per header when an
    attached message is flattened back to bytes.
    """

    def _fold(self, name: str, value: object, sanitize: bool) -> str:
        limit = self.max_line_length or 0
        if (
            isinstance(value, str)
            and value.isascii()
            and value.isprintable()  # no line breaks, tabs or controls that Header would rework
            and not value.endswith(" ")  # Header drops one trailing space
            and len(name) + 2 + len(value) <= limit
        ):
            return f"{name}: {value}{self.linesep}"
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]


_AS_WRITTEN = _Compat32Short()

_FOLD = re.compile(r"\r?\n[ \t]+")


_LINE_BREAKS = re.compile(r"[\r\n]+[ \t]?|[\x00-\x08\x0b-\x1f\x7f]")

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

_UU_BEGIN = re.compile(r"^begin [0-7]{3,4} ([^\n]+)\n", re.M)
_UU_END = re.compile(r"^end[ \t]*$\n?", re.M)


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
    untaken: int = 0  # parts past MAX_ATTACHMENTS, kept only inside the original

    def room(self) -> bool:
        """Whether one more attachment may be taken; counts the ones that may not."""
        if len(self.attachments) < MAX_ATTACHMENTS:
            return True
        self.untaken += 1
        return False


def parse(raw: bytes) -> ParsedMail:
    """Parse one raw message; never raises, whatever the bytes, and never returns unstorable text."""
    try:
        data = bytes(raw)
    except Exception:
        data = b""
    try:
        mail = _storable(_parse(data))
    except Exception as exc:  # the last line of defence: a parse must never sink the worker
        mail = _storable(_fallback(data, exc))
    degraded = [d for d in mail.defects if d.startswith(_DEGRADED)]
    if degraded:
        sender = mail.from_[0].address if mail.from_ else ""
        log.warning(
            "parse.degraded message_id=%s from=%s defects=%s",
            mail.message_id[:200], sender[:200], ",".join(degraded)[:500],
        )  # fmt: skip
    return mail


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


@dataclass(frozen=True, slots=True)
class _Heads:
    """What the top-level header block says: who, to whom, about what, in which thread."""

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


def _parse(raw: bytes) -> ParsedMail:
    msg = parse_bytes(raw)
    repaired = False
    source = raw
    for _ in range(2):  # a banner line may hide a second breakage behind it
        try:
            fixed = mime_repair.repair_headers(source, msg) if msg.defects else None
        except Exception:  # a bug in mending must not cost the plain parse
            fixed = None
        if fixed is None:
            break
        msg = parse_bytes(fixed)
        source = fixed
        repaired = True
    top_type = _content_type(msg)
    walk = _Walk()
    try:
        _walk(msg, (), walk)
    except Exception as exc:  # what was collected so far stays; the spool keeps the bytes
        walk.defects.append(f"BodyParseError:{type(exc).__name__}")
        if walk.text is None and walk.html is None:
            walk.text = _raw_body_text(raw)
    for part in msg.walk():
        for defect in part.defects:
            walk.defects.append(type(defect).__name__)
        if isinstance(part, _Opaque):
            walk.defects.append(f"NestingTooDeep:{MAX_DEPTH}")
    defects: list[str] = ["RepairedHeaders"] if repaired else []
    heads = _heads(msg, raw, walk.charsets, defects)

    html = walk.html
    text = walk.text if walk.text is not None else (walk.named_text or "")
    if html is not None and (len(html) > HTML_LAYOUT_LIMIT or too_deep(html)):
        # Too big to lay out in time (a 20 MB order list held the worker 24-49 s and 1.5 GB) or
        # nested as no client writes: read as plain text; the HTML itself stays as an attachment.
        reason = "HtmlTooLarge" if len(html) > HTML_LAYOUT_LIMIT else "HtmlTooDeep"
        defects.append(f"{reason}:{len(html) // 1024}KB")
        if not text.strip():
            text = strip_tags(html)
        walk.attachments.append(_attachment("message.html", "text/html", html.encode("utf-8", "replace")))
        html = None
    elif html is not None and not text.strip():
        # Some senders ship an empty text alternative next to the real HTML body.
        text = html_to_text(html) or text
    if walk.text is not None:
        text = _extract_uuencoded(text, walk)
    if walk.untaken:
        defects.append(f"TooManyParts:{len(walk.attachments) + walk.untaken}")
        walk.attachments.append(_attachment("original.eml", "message/rfc822", raw))

    report_type = _params(msg).get("report-type", "").lower() if top_type == "multipart/report" else ""
    sender = heads.from_[0].address if heads.from_ else ""
    kind = classify(
        Signals(
            headers=heads.headers,
            subject=heads.subject,
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
        own = None if heads.generated else heads.message_id
        candidates = [i for i in walk.embedded_ids if i != own]
        bounce_of = candidates[0] if candidates else original_message_id(text, own)

    safe_html = sanitize_html(html) if html is not None else None
    try:
        reply = quotes.reply_text(text, safe_html)
    except Exception as exc:  # another module's bug must not lose the mail
        defects.append(f"ReplyTextError:{type(exc).__name__}")
        reply = text

    return _mail(heads, text=text, html=safe_html, reply_text=reply, attachments=tuple(walk.attachments),
                 kind=kind, bounce_of=bounce_of, defects=walk.defects + defects)  # fmt: skip


def _heads(msg: Message, raw: bytes, body_charsets: list[str], defects: list[str]) -> _Heads:
    headers: list[tuple[str, str]] = []
    unfolded: dict[str, list[str]] = {}
    decoded_first: dict[str, str] = {}
    charset: str | None = None
    for name, value in msg.raw_items():
        name, value = str(name), str(value)
        if charset is None and not (name.isascii() and value.isascii()):
            # 8-bit header bytes carry no label; the body's charset is the sender's best guess.
            charset = _header_charset(msg, body_charsets)
        try:
            name = fix_surrogates(name, charset)
            plain = _unfold(fix_surrogates(value, charset))
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
    return _Heads(
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


def _mail(
    heads: _Heads,
    *,
    text: str,
    html: str | None,
    reply_text: str,
    attachments: tuple[Attachment, ...],
    kind: MailKind,
    bounce_of: str | None,
    defects: list[str],
) -> ParsedMail:
    return ParsedMail(
        message_id=heads.message_id,
        message_id_generated=heads.generated,
        in_reply_to=heads.in_reply_to,
        references=heads.references,
        from_=heads.from_,
        from_is_clean=heads.from_is_clean,
        to=heads.to,
        cc=heads.cc,
        reply_to=heads.reply_to,
        subject=heads.subject,
        date=heads.date,
        text=text,
        html=html,
        reply_text=reply_text,
        attachments=attachments,
        kind=kind,
        bounce_of=bounce_of,
        defects=tuple(dict.fromkeys(defects)),
        headers=heads.headers,
    )


def _fallback(raw: bytes, exc: BaseException) -> ParsedMail:
    """The mail when its body could not be parsed: the header block still names sender and thread.

    Without the sender the customer would get no ticket of their own and no acknowledgement.
    """
    defects = [f"ParseError:{type(exc).__name__}"]
    text = _raw_body_text(raw)
    try:
        # A mail that could not be read is never an agent's proven command: identity needs more.
        heads = dataclasses.replace(_heads(parse_bytes(raw, headersonly=True), raw, [], defects), from_is_clean=False)
        kind = classify(Signals(heads.headers, heads.subject, heads.from_[0].address if heads.from_ else "",
                                "text/plain", "", frozenset(), (), text[:4000]))  # fmt: skip
    except Exception as again:
        defects.append(f"HeaderParseError:{type(again).__name__}")
        heads = _Heads((), generated_message_id(raw), True, None, (), (), False, (), (), (), "", None)
        kind = MailKind.MESSAGE
    return _mail(heads, text=text, html=None, reply_text=text, attachments=(), kind=kind, bounce_of=None,
                 defects=defects)  # fmt: skip


def _shown_name(name: str | None) -> str | None:
    # Bidi overrides and invisible characters make "invoice\u202efdp.exe" show as "invoiceexe.pdf"
    # in `tickets show` and in forwards; the spool keeps the name as sent.
    return (visible_name(name) or None) if name is not None else None


def _raw_body_text(raw: bytes) -> str:
    """The bytes after the header block as text (bounded), for a body no parser could read."""
    try:
        match = _HEADER_END.search(raw)
        body = raw[match.end() :] if match else raw
        return _newlines(body[:_FALLBACK_TEXT].decode("utf-8", errors="replace"))
    except Exception:
        return ""


def _storable(mail: ParsedMail) -> ParsedMail:
    """The mail with lone surrogates replaced everywhere: SQLite refuses them, and the mail got 250.

    Charset decoding already avoids them; this pass guards every field whatever produced it.
    """

    def addrs(values: tuple[Address, ...]) -> tuple[Address, ...]:
        return tuple(dataclasses.replace(a, name=scrub(a.name), address=scrub(a.address)) for a in values)

    return dataclasses.replace(
        mail,
        message_id=scrub(mail.message_id),
        in_reply_to=scrub(mail.in_reply_to) if mail.in_reply_to is not None else None,
        references=tuple(scrub(r) for r in mail.references),
        from_=addrs(mail.from_),
        to=addrs(mail.to),
        cc=addrs(mail.cc),
        reply_to=addrs(mail.reply_to),
        subject=scrub(mail.subject),
        text=scrub(mail.text),
        html=scrub(mail.html) if mail.html is not None else None,
        reply_text=scrub(mail.reply_text),
        attachments=tuple(
            dataclasses.replace(
                a,
                filename=_shown_name(a.filename),
                content_type=scrub(a.content_type),
                content_id=scrub(a.content_id) if a.content_id is not None else None,
            )
            for a in mail.attachments
        ),
        bounce_of=scrub(mail.bounce_of) if mail.bounce_of is not None else None,
        defects=tuple(scrub(d) for d in mail.defects),
        headers=tuple((scrub(k), scrub(v)) for k, v in mail.headers),
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
            return b"".join(m.as_bytes(unixfrom=False, policy=_AS_WRITTEN) for m in inner if isinstance(m, Message))
        if isinstance(inner, str):
            return inner.encode("utf-8", errors="surrogateescape")
    except Exception:
        return b""
    return b""


def _walk(part: Message, ancestors: tuple[Message, ...], walk: _Walk) -> None:
    ctype = _content_type(part)
    walk.part_types.add(ctype)
    parent = _content_type(ancestors[-1]) if ancestors else ""
    # is_multipart(), not get_payload(): compat32 decodes an 8-bit leaf with its declared charset
    # there, and a hostile label ("undefined") raised out of the walk.
    if part.is_multipart() and ctype.startswith("multipart/"):
        payload = part.get_payload()
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
    if not walk.room():
        return
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


def _attachment(filename: str | None, content_type: str, data: bytes) -> Attachment:
    return Attachment(
        filename=filename,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        inline=False,
        content_id=None,
        data=data,
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
            inner = parse_bytes(_payload_bytes(part), headersonly=True)
        except Exception:
            return []
    value = header(inner, "message-id")
    found = addresses.msgid(value)
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
    text = _newlines(text)
    if ct_params.get("format", "").lower() == "flowed":
        # Thunderbird and mutt (text_flowed) send plain text this way: read as sent, a paragraph
        # would reach the next reader broken at the writer's 72 columns, with stuffed spaces.
        text = unflow(text, delsp=ct_params.get("delsp", "").lower() == "yes")
    return text


def unflow(text: str, *, delsp: bool = False) -> str:
    """RFC 3676 format=flowed as the writer's lines: soft breaks joined per quote depth, stuffing removed."""
    out: list[str] = []
    pending: str | None = None
    depth_of_pending = 0

    def emit(depth: int, content: str) -> None:
        out.append(f"{'>' * depth} {content}" if depth and content else ">" * depth + content)

    for line in text.split("\n"):
        content = line.lstrip(">")
        depth = len(line) - len(content)
        content = content.removeprefix(" ")  # space-stuffing (RFC 3676 4.4)
        soft = content.endswith(" ") and content != "-- "  # the signature delimiter never flows (4.3)
        if pending is not None and depth != depth_of_pending:
            emit(depth_of_pending, pending.rstrip(" "))  # a change of quote depth ends the paragraph (4.5)
            pending = None
        if pending is None:
            pending, depth_of_pending = "", depth
        pending += content[:-1] if soft and delsp else content
        if not soft:
            emit(depth, pending)
            pending = None
    if pending is not None:
        emit(depth_of_pending, pending)
    return "\n".join(out)


def _extract_uuencoded(text: str, walk: _Walk) -> str:
    """Move uuencoded files out of a plain-text body into attachments (old clients still send them).

    Each "begin" looks for its "end" once, from where it stands: one regex from "begin" to "end"
    rescanned the rest of the body from every begin line (50,000 of them: 144 s).
    """
    if "begin " not in text:
        return text
    out: list[str] = []
    pos = 0
    while (begin := _UU_BEGIN.search(text, pos)) is not None:
        end = _UU_END.search(text, begin.end())
        if end is None:
            break  # no end line after this begin, so none after a later one either
        data = _uudecode(text[begin.end() : end.start()]) if walk.room() else None
        if data is None:
            out.append(text[pos : end.end()])
        else:
            out.append(text[pos : begin.start()])
            walk.attachments.append(_attachment(begin.group(1).strip() or None, "application/octet-stream", data))
        pos = end.end()
    out.append(text[pos:])
    return "".join(out)


def _uudecode(block: str) -> bytes | None:
    chunks: list[bytes] = []
    try:
        for line in block.splitlines():
            if line.strip() in ("", "`"):
                continue
            try:
                chunks.append(binascii.a2b_uu(line))
            except binascii.Error:
                # Some encoders pad lines short; decode what the length byte promises.
                nbytes = (((ord(line[0]) - 32) & 63) * 4 + 5) // 3
                chunks.append(binascii.a2b_uu(line[:nbytes]))
    except (binascii.Error, IndexError, ValueError):
        return None
    return b"".join(chunks)
