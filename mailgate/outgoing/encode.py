"""Write outgoing mail's bytes directly: folded headers, RFC 2047 words, RFC 2231 names, a fixed MIME skeleton.

The email package's header registry and generator spend milliseconds a mail re-parsing what we
just built; every value here is ours or already cleaned (compose.clean), so it is written once, in
the forms the email package itself writes, with the C encoders of binascii for the bodies.
"""

from __future__ import annotations

import binascii
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CRLF = "\r\n"
LINE = 78  # RFC 5322 2.1.1: a line SHOULD stay within 78 characters (998 is the hard limit)
WORD = 75  # RFC 2047 2: an encoded word is at most 75 characters

# RFC 5322 3.2.3 atext: what a display name may hold without quotes.
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~ ")
# RFC 2047 5(3): all a Q-encoded word in a phrase may carry as itself; space is "_".
_Q_SAFE = frozenset((string.ascii_letters + string.digits + "!*+-/").encode())
_Q = [chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in range(256)]
_Q_LEN = [len(q) for q in _Q]
# RFC 2231 7: attribute-char, what a percent-encoded parameter value keeps as itself.
_PCT_SAFE = frozenset((string.ascii_letters + string.digits + "!#$&+-.^_`|~").encode())
_PCT = [chr(b) if b in _PCT_SAFE else f"%{b:02X}" for b in range(256)]
# email.headerregistry quotes a local part holding any of these (its DOT_ATOM_ENDS): the same here.
_LOCAL_SPECIALS = frozenset('()<>@,:;\\"[] \t')


@dataclass(frozen=True, slots=True)
class Encoded:
    """Text that goes as RFC 2047 encoded words (non-ASCII, or ASCII that would read as an encoded word)."""

    text: str


def _plain(word: str, allowed: frozenset[str] | None, utf8: bool) -> bool:
    """Whether a word can stand as itself: no "=?" a reader would decode, ASCII (or any text in
    RFC 6532 UTF-8 headers), only allowed characters."""
    if "=?" in word or not (utf8 or word.isascii()):
        return False
    return allowed is None or all(ch in allowed or not ch.isascii() for ch in word)


def _runs(text: str, allowed: frozenset[str] | None, utf8: bool) -> list[str | Encoded]:
    """Words as tokens; consecutive words that need encoding become one Encoded run (the spaces inside it).

    A space between a plain word and an encoded word is read back by every client; between two
    encoded words RFC 2047 6.2 drops it, so such words are joined into one run and encoded together.
    """
    tokens: list[str | Encoded] = []
    run: list[str] = []
    for word in text.split(" "):
        if _plain(word, allowed, utf8):
            if run:
                tokens.append(Encoded(" ".join(run)))
                run = []
            tokens.append(word)
        else:
            run.append(word)
    if run:
        tokens.append(Encoded(" ".join(run)))
    return tokens


def _encoded_words(text: str, first: int) -> list[str]:
    """RFC 2047 words for text, Q or B as the email package picks (Q, readable, unless B is clearly
    shorter), whole characters in each (RFC 2047 5); the first word within `first` characters, the
    others within WORD."""
    data = text.encode()
    q_size = sum(_Q_LEN[b] for b in data)
    b_size = (len(data) + 2) // 3 * 4
    b = q_size - b_size >= 5
    if (b_size if b else q_size) + 12 <= first:
        return [_word(data, b)]
    words: list[str] = []
    room, chunk, size = first - 12, bytearray(), 0
    for ch in text:
        piece = ch.encode()
        cost = (len(chunk) + len(piece) + 2) // 3 * 4 if b else size + sum(_Q_LEN[x] for x in piece)
        if cost > room and chunk:
            words.append(_word(bytes(chunk), b))
            room, chunk, size = WORD - 12, bytearray(), 0
            cost = (len(piece) + 2) // 3 * 4 if b else sum(_Q_LEN[x] for x in piece)
        chunk += piece
        size = cost
    words.append(_word(bytes(chunk), b))
    return words


def _word(data: bytes, b: bool) -> str:
    if b:
        return "=?utf-8?b?" + binascii.b2a_base64(data, newline=False).decode("ascii") + "?="
    return "=?utf-8?q?" + "".join([_Q[x] for x in data]) + "?="


def fold(name: str, tokens: Iterable[str | Encoded]) -> str:
    """One header, folded before a token once a line would pass LINE characters; ends with CRLF.

    A token longer than a line (a long Message-ID, a URL in a subject) stays whole on its own line:
    folding inside it, or encoding it as the email package does, breaks it for every reader.
    """
    lines: list[str] = []
    line = name + ":"
    start = True  # nothing after "Name:" yet: never fold there
    for token in tokens:
        if isinstance(token, Encoded):
            # One word where one will do, even on a line of its own: RFC 2047 6.2 readers join
            # adjacent words, but the email package's phrase reader shows a space between them.
            words = _encoded_words(token.text, WORD)
            room = LINE - len(line) - 1
            if len(words) > 1 or (start and len(words[0]) > room):
                # A long run fills the current line first, as the email package does.
                first = min(WORD, room)
                if first < 24 and not start:  # too little room left: the words start on the next line
                    lines.append(line)
                    line, start, first = "", False, WORD
                words = _encoded_words(token.text, first)
            for word in words:
                line, start = _put(lines, line, start, word), False
        else:
            line, start = _put(lines, line, start, token), False
    lines.append(line)
    return CRLF.join(lines) + CRLF


def _put(lines: list[str], line: str, start: bool, token: str) -> str:
    if not start and line and len(line) + 1 + len(token) > LINE:
        lines.append(line)
        return " " + token
    return line + " " + token


def unstructured(name: str, text: str, utf8: bool = False) -> str:
    """A text header (Subject): ASCII words as they are, the others as encoded words (in UTF-8
    headers, RFC 6532, as they are too)."""
    return fold(name, _runs(text, None, utf8))


def addr_spec(local: str, domain: str) -> str:
    """local@domain, the local part quoted exactly when email.headerregistry.Address would quote it."""
    if not _LOCAL_SPECIALS.isdisjoint(local):
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{local}@{domain}"


def phrase(display: str, utf8: bool = False) -> list[str | Encoded]:
    """A display name's tokens (RFC 5322 3.2.5): atoms as they are, quoted when ASCII with specials,
    encoded words for the rest (in UTF-8 headers, RFC 6532, non-ASCII text is atext too). Quoted
    text is split at its spaces, where it may fold (FWS)."""
    if not display:
        return []
    if "=?" in display or not (utf8 or display.isascii()):
        return _runs(display, _ATEXT, utf8)
    if not all(ch in _ATEXT or not ch.isascii() for ch in display):
        display = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return [*display.split(" ")]


def addresses(name: str, boxes: Sequence[tuple[str, str]], utf8: bool = False) -> str:
    """An address header from (display name, addr-spec) pairs, comma-separated, folded between tokens."""
    tokens: list[str | Encoded] = []
    for i, (display, spec) in enumerate(boxes):
        comma = "," if i < len(boxes) - 1 else ""
        if display:
            tokens += phrase(display, utf8)
            tokens.append(f"<{spec}>{comma}")
        else:
            tokens.append(spec + comma)
    return fold(name, tokens)


def text_part(subtype: str, text: str) -> tuple[str, bytes]:
    """Headers and body of a text part: UTF-8, lines split as the email package splits them
    (CR, LF, CRLF) and ended with CRLF, quoted-printable unless base64 is shorter (mostly non-Latin text)."""
    data = b"\r\n".join(text.encode("utf-8").splitlines()) + b"\r\n"
    qp = binascii.b2a_qp(data, quotetabs=False, istext=True)
    if len(qp) > len(data) * 4 // 3 + len(data) // 28:  # base64 with its CRLF every 76 characters
        cte, body = "base64", base64_lines(data)
    else:
        cte, body = "quoted-printable", qp
    head = f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}Content-Transfer-Encoding: {cte}{CRLF}'
    return head, body


def base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters with CRLF (RFC 2045 6.8)."""
    encoded = binascii.b2a_base64(data, newline=False)
    if not encoded:
        return b""
    return b"\r\n".join([encoded[i:i + 76] for i in range(0, len(encoded), 76)]) + b"\r\n"


def attachment_part(content_type: str, filename: str, data: bytes) -> tuple[str, bytes]:
    """Headers and base64 body of an attachment, its file name in the form the email package writes:
    quoted when printable ASCII that fits a line, else RFC 2231 UTF-8 in continuations that keep lines short."""
    return (
        f"Content-Type: {content_type}{CRLF}Content-Transfer-Encoding: base64{CRLF}"
        + fold("Content-Disposition", ["attachment;", *_filename(filename)]),
        base64_lines(data),
    )


def _filename(name: str) -> list[str]:
    quoted = 'filename="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if name.isascii() and name.isprintable() and len(quoted) < LINE:
        return [quoted]
    # RFC 2231 3-4: filename*0*=utf-8''…; filename*1*=…; percent-encoded, never split inside a %XX.
    pieces: list[str] = []
    current = "utf-8''"
    for ch in name.encode("utf-8"):
        item = _PCT[ch]
        if len(current) + len(item) > LINE - 20:
            pieces.append(current)
            current = ""
        current += item
    pieces.append(current)
    if len(pieces) == 1:
        return [f"filename*={pieces[0]}"]
    return [f"filename*{i}*={p}{';' if i < len(pieces) - 1 else ''}" for i, p in enumerate(pieces)]


def multipart(subtype: str, boundary: str, parts: Sequence[tuple[str, bytes]]) -> tuple[str, bytes]:
    """Headers and body of a multipart: each part after its delimiter, a CRLF before the next one
    (RFC 2046 5.1.1: the CRLF before a delimiter belongs to it, not to the part), then the close.

    The boundary starts with "=_": quoted-printable writes "=" only before hex digits or a line
    end and base64 has neither "=" inside nor "_", so no encoded part can hold it.
    """
    body = bytearray()
    for head, content in parts:
        body += f"--{boundary}{CRLF}{head}{CRLF}".encode() + content + b"\r\n"
    body += f"--{boundary}--{CRLF}".encode()
    return fold("Content-Type", [f"multipart/{subtype};", f'boundary="{boundary}"']), bytes(body)
