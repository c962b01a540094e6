"""The charset a mislabelled part was really written in: the label's family, tried as mail clients do."""

from __future__ import annotations

import re

# Codecs that share a script, in the order mail clients try them when the label fails. Japanese
# mail is the classic case: Windows and feature-phone gateways label Shift_JIS (cp932) text
# "ISO-2022-JP" because the header said so at composition time, and Unix mailers sent EUC-JP under
# either name (Thunderbird's and Apple Mail's Japanese detectors try exactly these three).
_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("iso2022_jp_ext", "cp932", "euc_jis_2004"),
    ("gb18030", "big5hkscs"),
    ("big5hkscs", "gb18030"),
    ("cp949", "iso2022_kr"),
)
_MEMBERS: dict[str, tuple[str, ...]] = {
    "iso2022_jp": _FAMILIES[0], "iso2022_jp_1": _FAMILIES[0], "iso2022_jp_2": _FAMILIES[0],
    "iso2022_jp_3": _FAMILIES[0], "iso2022_jp_ext": _FAMILIES[0], "iso2022_jp_2004": _FAMILIES[0],
    "cp932": _FAMILIES[0], "shift_jis": _FAMILIES[0], "shift_jis_2004": _FAMILIES[0],
    "shift_jisx0213": _FAMILIES[0], "euc_jp": _FAMILIES[0], "euc_jis_2004": _FAMILIES[0],
    "euc_jisx0213": _FAMILIES[0],
    "gb2312": _FAMILIES[1], "gbk": _FAMILIES[1], "gb18030": _FAMILIES[1], "hz": _FAMILIES[1],
    "big5": _FAMILIES[2], "big5hkscs": _FAMILIES[2], "cp950": _FAMILIES[2],
    "cp949": _FAMILIES[3], "euc_kr": _FAMILIES[3], "iso2022_kr": _FAMILIES[3], "johab": _FAMILIES[3],
}  # fmt: skip

# Signs of text decoded with the wrong multi-byte codec: EUC-JP read as Shift_JIS turns into runs
# of half-width katakana (U+FF61-U+FF9F), which Japanese mail almost never holds since the 1990s;
# private-use and C1 control characters come from lead bytes read at the wrong offset; an escape
# left in the text is ISO-2022-JP read as anything but itself.
_MOJIBAKE = re.compile("[\uff61-\uff9f\ue000-\uf8ff\x80-\x9f\ufffd]")


# A well-formed UTF-8 multi-byte sequence. Text labelled utf-8 that fails to decode but holds not
# one of these was written in a legacy 8-bit charset (Outlook Express and PHP mailers sent
# "Det h\xe4r \xe4r" under a utf-8 label); text that holds them is UTF-8 with a damaged byte.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def legacy_under_utf8(data: bytes) -> bool:
    """Whether bytes that failed to decode as UTF-8 hold no UTF-8 at all (so a legacy charset wrote them)."""
    return _UTF8_SEQUENCE.search(data) is None


def family(codec: str) -> tuple[str, ...]:
    """The codecs to try, in order, for text whose label names `codec`; empty for single-byte charsets."""
    return _MEMBERS.get(codec, ())


def mojibake(text: str) -> float:
    """The share of characters that only a wrong multi-byte decoding produces (0 for clean text)."""
    if "\x1b" in text:
        return 1.0  # an ISO-2022 escape left in the text: the bytes were stateful 7-bit Japanese
    if not text or text.isascii():
        return 0.0
    wide = sum(1 for c in text if ord(c) > 0x7F)
    return len(_MOJIBAKE.findall(text)) / wide if wide else 0.0


def best_of_family(data: bytes, codec: str, tried: str | None = None) -> tuple[str, str] | None:
    """The text and codec of the family member that reads `data` most cleanly, or None.

    `tried` (the labelled codec's own reading, when it decoded) competes too: it keeps the text
    unless another member reads the bytes with clearly fewer mojibake signs.
    """
    best: tuple[str, str] | None = None
    score = mojibake(tried) if tried is not None else 2.0
    for candidate in family(codec):
        if candidate == codec and tried is not None:
            continue
        if candidate.startswith("iso2022") and b"\x1b" not in data:
            continue  # a stateful 7-bit codec reads plain ASCII too: no evidence either way
        try:
            text = data.decode(candidate)
        except (UnicodeError, LookupError):
            continue
        found = mojibake(text)
        if found + 0.05 < score:
            best, score = (text, candidate), found
    return best
