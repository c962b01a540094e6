"""Turn mail bytes and RFC 2047 encoded words into text, whatever charset label they carry."""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re

from mailgate.mail.charset_guess import best_of_family, family, legacy_under_utf8, mojibake

# Labels seen in real mail that Python's codec registry does not know, or knows as a narrower
# charset than the sender really used. Supersets win: Outlook labels cp949 text "ks_c_5601-1987",
# Windows labels cp932 text "shift_jis", and GB2312/GBK bodies routinely contain GB18030-only
# characters (WHATWG Encoding maps all three to gb18030 for the same reason).
_ALIASES: dict[str, str] = {
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "iso-8859-8-i": "iso8859_8",
    "iso-8859-8-e": "iso8859_8",
    "iso-8859-6-i": "iso8859_6",
    "iso-8859-6-e": "iso8859_6",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode-2-0-utf-7": "utf-7",
    "utf-7": "utf-7",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "chinese": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "x-euc-jp": "euc_jis_2004",
    "euc-jp": "euc_jis_2004",
    # ISO-2022-JP mail from Windows clients carries NEC/IBM extensions; the _ext codec reads them.
    "iso-2022-jp": "iso2022_jp_ext",
    "csiso2022jp": "iso2022_jp_ext",
    "koi8-r": "koi8_r",
    "koi8-u": "koi8_u",
}

# Labels that say "I don't know": treat them like no label at all.
_NO_CHARSET = frozenset(
    {"", "unknown", "x-unknown", "unknown-8bit", "x-user-defined", "default", "none", "8bit", "binary"}
)

_ASCII_LABELS = frozenset({"ascii"})


# The codecs mail is really written in. Python's registry also holds codecs that are no mail
# charset at all, and a sender picks the label: "unicode_escape" and "raw_unicode_escape" turn
# "\\ud800" into a lone surrogate that SQLite refuses, "undefined" and "idna" raise UnicodeError
# instead of UnicodeDecodeError, "punycode" and the bytes-to-bytes codecs ("base64", "zlib",
# "rot13") are transforms, not text. Only these names are decoded with; any other label is read
# as if it had none, with a recorded defect.
_MAIL_CODECS = frozenset(
    {
        "ascii", "utf-8", "utf-8-sig", "utf-7",
        "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
        *(f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
        *(f"cp{n}" for n in range(1250, 1259)),
        "cp874", "tis-620", "koi8-r", "koi8-u", "koi8-t", "kz1048", "ptcp154",
        "mac-roman", "mac-cyrillic", "mac-greek", "mac-turkish", "mac-iceland", "mac-latin2",
        "cp437", "cp850", "cp852", "cp855", "cp857", "cp858", "cp860", "cp861", "cp862", "cp863",
        "cp865", "cp866", "cp869", "cp1125",
        "big5", "big5hkscs", "cp950", "gb2312", "gbk", "gb18030", "hz",
        "euc_jp", "euc_jis_2004", "euc_jisx0213", "shift_jis", "shift_jis_2004", "shift_jisx0213", "cp932",
        "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp_ext", "iso2022_jp_2004",
        "iso2022_kr", "euc_kr", "cp949", "johab",
    }
)  # fmt: skip

# RFC 2047 encoded words must not contain NUL or line breaks once decoded into a header; the
# 16/32-bit encodings are ASCII-incompatible and only appear in headers to smuggle such text.
_WIDE = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})

_SURROGATE = re.compile("[\ud800-\udfff]")


def codec_for(label: str | None, *, header: bool = False) -> str | None:
    """The Python codec name for a MIME charset label, or None when it is unknown, meaningless or not a mail charset."""
    if label is None:
        return None
    key = label.strip().strip("\"'").lower()
    if key in _NO_CHARSET:
        return None
    # RFC 2231 allows a language suffix: "utf-8*en".
    key = key.split("*", 1)[0]
    name = _canonical(_ALIASES.get(key, key))
    if name is None or (header and name in _WIDE):
        return None
    return name


@functools.lru_cache(maxsize=512)
def _canonical(key: str) -> str | None:
    try:
        name = codecs.lookup(key).name
    except (LookupError, ValueError, TypeError):
        return None
    return name if name in _MAIL_CODECS else None


def scrub(text: str) -> str:
    """The text with lone surrogates replaced by U+FFFD: SQLite and UTF-8 encoders refuse them.

    A well-formed surrogate pair (what a "\\ud83d\\ude00" escape or UTF-7 yields) becomes its
    real character; only unpaired halves are replaced.
    """
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def decode_bytes(
    data: bytes, label: str | None, fallback: str | None = None, *, header: bool = False
) -> tuple[str, str | None]:
    """Decode bytes labelled with a MIME charset; never raises, never yields lone surrogates.

    Returns the text and a defect name or None. Unknown, absent or hostile labels fall back to
    utf-8, then to `fallback` (the mail's own charset), then windows-1252: a byte sequence that is
    valid utf-8 is almost never meant as anything else.
    """
    try:
        text, defect = _decode(data, label, fallback, header)
    except Exception:  # a codec bug must not cost the mail; latin-1 maps every byte
        text, defect = data.decode("latin-1"), f"CharsetDecodeError:{_short(label)}"
    return scrub(text), defect


def _short(label: str | None) -> str:
    return (label or "").strip()[:40].encode("ascii", "replace").decode("ascii")


def _decode(data: bytes, label: str | None, fallback: str | None, header: bool) -> tuple[str, str | None]:
    codec = codec_for(label, header=header)
    defect: str | None = None
    if codec is None and label is not None and label.strip().strip("\"'").lower() not in _NO_CHARSET:
        defect = f"UnknownCharset:{_short(label)}"
    if codec is not None and codec not in _ASCII_LABELS:
        try:
            text = data.decode(codec)
        except UnicodeError:
            pass
        except LookupError:
            codec = None
        else:
            if not family(codec) or mojibake(text) < 0.2:
                return text, None
            # Decoded, but to text no person wrote (EUC-JP bytes under a Shift_JIS label).
            real = best_of_family(data, codec, text)
            if real is None:
                return text, None
            return real[0], f"CharsetMislabelled:{codec}>{real[1]}"
        # A mislabelled part (declared latin-1, really utf-8) is common from web forms.
        try:
            return data.decode("utf-8"), defect
        except UnicodeDecodeError:
            pass
        if codec is not None:
            # Japanese mail labelled ISO-2022-JP but written in Shift_JIS (Windows clients, KDDI and
            # docomo gateways) fails the label; its family reads it the way mail clients do.
            real = best_of_family(data, codec)
            if real is not None:
                return real[0], f"CharsetMislabelled:{codec}>{real[1]}"
        if codec == "cp1252":
            # Labelled latin-1 text with one of the five bytes cp1252 leaves undefined.
            return data.decode("latin-1"), defect
        if codec == "utf-8" and legacy_under_utf8(data):
            # The label's family for utf-8 is what mail clients fall back to: windows-1252.
            try:
                return data.decode("cp1252"), "CharsetMislabelled:utf-8>cp1252"
            except UnicodeDecodeError:
                return data.decode("latin-1"), "CharsetMislabelled:utf-8>latin-1"
        if codec is not None:
            return data.decode(codec, errors="replace"), f"CharsetDecodeError:{codec}"
    # us-ascii, no label, or an unknown label: utf-8, then the mail's charset, then windows-1252.
    if b"\x1b" in data:
        # 7-bit stateful encodings (ISO-2022-JP, RFC 1468) are valid ASCII, so utf-8 would "succeed".
        for candidate in (codec_for(fallback), "iso2022_jp_ext"):
            if candidate is not None and candidate.startswith("iso2022"):
                try:
                    return data.decode(candidate), defect
                except (UnicodeError, LookupError):
                    pass
    try:
        return data.decode("utf-8"), defect
    except UnicodeDecodeError:
        pass
    other = codec_for(fallback, header=header)
    if other is not None and other not in _ASCII_LABELS and other != "utf-8":
        try:
            return data.decode(other), defect
        except (UnicodeError, LookupError):
            pass
        guessed = best_of_family(data, other)
        if guessed is not None:
            return guessed[0], defect
    try:
        return data.decode("cp1252"), defect
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; latin-1 maps them to C1 controls instead of failing.
        return data.decode("latin-1"), defect


def fix_surrogates(value: str, fallback: str | None = None) -> str:
    """Recover 8-bit header bytes that compat32 parsing kept as surrogate escapes."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    raw = value.encode("utf-8", errors="surrogateescape")
    return decode_bytes(raw, None, fallback)[0]


# Encoded text never holds "?" (RFC 2047 section 5): stopping there keeps a header full of
# unclosed "=?utf-8?q?" openings linear; ".*?" rescanned to the end from each one (600 KB: 165 s).
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*)\?=")
_BETWEEN_WORDS = re.compile(r"\s*")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    if encoding in "bB":
        cleaned = "".join(payload.split())
        cleaned += "=" * (-len(cleaned) % 4)
        try:
            return base64.b64decode(cleaned, validate=True)
        except (binascii.Error, ValueError):
            return None
    raw = payload.replace("_", " ").encode("latin-1", errors="replace")
    return _QP_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_words(value: str, fallback: str | None = None, defects: list[str] | None = None) -> str:
    """Decode RFC 2047 encoded words in a header value, tolerating the broken forms clients send.

    Adjacent words in the same charset are joined before decoding, because some clients split a
    multi-byte character across two encoded words. Whitespace between adjacent words is dropped
    (RFC 2047 section 6.2); undecodable words are left as written. A word in a charset that is no
    mail charset is read as utf-8 (else windows-1252) and noted in defects.
    """
    if "=?" not in value:
        return scrub(value)
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_cs: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_cs
        if pending_cs is not None:
            text, defect = decode_bytes(bytes(pending), pending_cs, fallback, header=True)
            out.append(text)
            if defect and defects is not None and defect not in defects:
                defects.append(defect)
        pending = bytearray()
        pending_cs = None

    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            flush()
            out.append(gap + match.group(0))
            pos = match.end()
            continue
        cs = match.group(1).split("*", 1)[0].lower()
        if gap and (pending_cs is None or not _BETWEEN_WORDS.fullmatch(gap)):
            flush()
            out.append(gap)
        if pending_cs is not None and pending_cs != cs:
            flush()
        pending_cs = cs
        pending += data
        pos = match.end()
    flush()
    out.append(value[pos:])
    return scrub("".join(out))
