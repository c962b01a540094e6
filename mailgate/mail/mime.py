"""The stdlib's compat32 parser, bounded and made safe to read: entities, headers, parameters, payloads.

Every read here degrades instead of raising: hostile bytes (a boundary in an unknown charset,
"To: undisclosed-recipients:;>", 8-bit parameters) must never cost the mail its sender.
"""

from __future__ import annotations

import re
from email import feedparser
from email._policybase import Compat32
from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import compat32
from email.utils import decode_params, unquote

from mailgate.mail.charsets import decode_bytes, decode_words, fix_surrogates

# Entities nested deeper than this (multipart in multipart, message/rfc822 in message/rfc822)
# are kept as one opaque attachment. The stdlib parser, walker and generator recurse once or
# more per level: 2,000 nested multiparts or 1,500 nested messages raised RecursionError and
# the mail lost its sender. Forward-as-attachment chains in real mail stay below 20 levels.
MAX_DEPTH = 40


class Part(Message):
    """A compat32 message whose boundary lookup never raises.

    compat32 decodes an RFC 2231 boundary (boundary*=charset''value) with the sender's charset
    and only catches LookupError: "undefined" or "idna" raised UnicodeError out of the parser.
    A boundary that cannot be read is no boundary: the part's body stays text, with a defect.
    """

    def get_boundary(self, failobj: object = None) -> str | None:  # type: ignore[override]
        try:
            return super().get_boundary(failobj)  # type: ignore[arg-type]
        except Exception:
            return failobj  # type: ignore[return-value]


class Opaque(Part):
    """An entity nested deeper than MAX_DEPTH: the parser keeps its body as written, unparsed."""

    def get_content_type(self) -> str:
        return "application/octet-stream"


class BoundedParser(BytesFeedParser):
    """compat32 feed parser that stops descending at MAX_DEPTH.

    The feed parser asks its factory for every new entity while the entities around it are on
    its stack; past MAX_DEPTH it gets an Opaque one, whose content type tells the parser not to
    look inside (the stack is stdlib-internal; tests pin the behaviour).
    """

    def __init__(self) -> None:
        super().__init__(self._entity, policy=compat32)

    def _entity(self, policy: Compat32 = compat32) -> Message:
        depth = len(getattr(self, "_msgstack", ()))
        return Opaque(policy) if depth >= MAX_DEPTH else Part(policy)


# The feed parser compiles one regular expression per multipart boundary it meets: a boundary is
# unique to its mail, so re's cache never holds it, and compiling costs ~170 µs, as much as the
# rest of parsing a small multipart mail. The pattern only matches the literal separator and
# what may follow it (RFC 2046 5.1.1: "--" on the last one, then blanks); _Separator matches
# the same lines with a string comparison and one pattern compiled here once.
_SEPARATOR_HEAD = "(?P<sep>"
_SEPARATOR_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER_SEPARATOR = re.compile(_SEPARATOR_TAIL[1:])
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


class _Separator:
    """feedparser's compiled boundary pattern: the same match (groups end, ws, linesep) for the same lines."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def match(self, line: str) -> re.Match[str] | None:
        return _AFTER_SEPARATOR.match(line, len(self.text)) if line.startswith(self.text) else None


class _FeedParserRe:
    """The re module as email.feedparser sees it: its boundary patterns become _Separator, all else is re."""

    def compile(self, pattern: str, flags: int = 0) -> object:
        if flags == 0 and pattern.startswith(_SEPARATOR_HEAD) and pattern.endswith(_SEPARATOR_TAIL):
            escaped = pattern[len(_SEPARATOR_HEAD):-len(_SEPARATOR_TAIL)]
            text = _ESCAPED.sub(r"\1", escaped)
            if re.escape(text) == escaped:  # exactly what feedparser wrote: a literal separator
                return _Separator(text)
        return re.compile(pattern, flags)

    def __getattr__(self, name: str) -> object:
        return getattr(re, name)


vars(feedparser)["re"] = _FeedParserRe()


def parse_bytes(raw: bytes, headersonly: bool = False) -> Message:
    """compat32 parse with bounded nesting; may raise on bytes the stdlib cannot read."""
    parser = BoundedParser()
    if headersonly:
        # What email.parser.BytesParser(headersonly=True) does; typeshed leaves the private method out.
        parser._set_headersonly()  # type: ignore[attr-defined]
    parser.feed(raw)
    return parser.close()


class Compat32Short(Compat32):
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


AS_WRITTEN = Compat32Short()

_FOLD = re.compile(r"\r?\n[ \t]+")


def header(msg: Message, name: str, fallback_charset: str | None = None) -> str | None:
    """The first header of that name, unfolded and RFC 2047 decoded; the raw value if decoding fails."""
    wanted = name.lower()
    try:
        items = msg.raw_items()
        for key, value in items:
            if key.lower() == wanted:
                try:
                    return decode_words(unfold(fix_surrogates(value, fallback_charset)), fallback_charset)
                except Exception:
                    return str(value)
    except Exception:
        return None
    return None


def newlines(text: str) -> str:
    if "\r" in text:
        return text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def unfold(value: str) -> str:
    # Clients display a fold as one space; RFC 5322's "remove the CRLF" leaves runs of indentation.
    value = _FOLD.sub(" ", value)
    if "\r" in value or "\n" in value:
        value = value.replace("\r", " ").replace("\n", " ")
    return value


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def params(part: Message, key: str = "content-type") -> dict[str, str]:
    """The parameters of a structured header, lowercased names, RFC 2231 values decoded; never raises.

    Read from the raw value: compat32's get_params() turns 8-bit bytes into U+FFFD first.
    """
    raw = raw_header(part, key)
    if raw is None:
        return {}
    try:
        pairs = decode_params(split_params(fix_surrogates(raw)))
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


def raw_header(part: Message, key: str) -> str | None:
    for name, value in part.raw_items():
        if name.lower() == key:
            return unfold(str(value))
    return None


def split_params(value: str) -> list[tuple[str, str]]:
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


def disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def payload_bytes(part: Message) -> bytes:
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
            return b"".join(m.as_bytes(unixfrom=False, policy=AS_WRITTEN) for m in inner if isinstance(m, Message))
        if isinstance(inner, str):
            return inner.encode("utf-8", errors="surrogateescape")
    except Exception:
        return b""
    return b""
