"""Which lines of a classified mail are its new words.

The layout rules follow Discourse's email_reply_trimmer (MIT): text, then a boundary, cuts the
rest; a quote followed by more text is an inline reply and kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate.mail import quote_phrases as P
from mailgate.mail.quote_lines import classify_lines

_DASH_SIGNOFF = re.compile(P.DASH_SIGNOFF)


@dataclass(frozen=True, slots=True)
class Cut:
    """The new words of a text, the sign-off cut from them, and where the quoted history sat."""

    text: str
    signature: str | None  # the mobile line, "-- " block or "-Ann" sign-off that was cut
    style: str  # top (new words above the history), bottom (below it), inline (between), none


def cut(text: str, *, answering: bool = False, keep_signature: bool = False) -> str:
    """The new words of a text: its lines classified, then selected, then a trailing sign-off dropped."""
    return read(text, answering=answering, keep_signature=keep_signature).text


def read(text: str, *, answering: bool = False, keep_signature: bool = False) -> Cut:
    """The cut of a text with the reasons an operator needs: what signature went, which quote style."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kinds = classify_lines(lines)
    keep = select(kinds, answering=answering, keep_signature=keep_signature)
    kept = [lines[i].rstrip() for i in keep]
    trimmed = drop_signoff(kept)
    signoff = "\n".join(kept[len(trimmed):]).strip() or None
    signature = _signature(lines, kinds, set(keep)) or signoff
    return Cut("\n".join(trimmed).strip(), signature, style(kinds, keep))


def style(kinds: list[str], keep: list[int]) -> str:
    """Where the quoted history sits relative to the kept lines."""
    history = [i for i, k in enumerate(kinds) if k in ("q", "b")]
    if not history or not keep:
        return "none"
    if any(kinds[i] == "q" for i in keep):
        return "inline"
    return "bottom" if history[0] < keep[0] else "top"


def _signature(lines: list[str], kinds: list[str], kept: set[int]) -> str | None:
    """The sign-off that was cut: mobile lines wherever they are, else the block under "-- "."""
    mobile = [lines[i].strip() for i, k in enumerate(kinds) if k == "m"]
    if mobile:
        return "\n".join(mobile)
    first_text = next((i for i, k in enumerate(kinds) if k == "t" and i in kept), None)
    if first_text is None:
        return None
    for i in range(first_text, len(kinds)):
        if kinds[i] == "s":
            block = [lines[i].strip()]
            for j in range(i + 1, len(kinds)):
                if kinds[j] not in ("t", "e") or j in kept:
                    break
                block.append(lines[j].rstrip())
            words = "\n".join(block[1:]).strip()
            return f"{block[0]}\n{words}" if words else None
        if kinds[i] in ("q", "b") and i not in kept:
            return None  # the history starts before any delimiter: nothing was signed
    return None


def select(kinds: list[str], *, answering: bool = False, keep_signature: bool = False) -> list[int]:
    """Indexes of the lines that make the new part of the reply."""
    idx = [i for i, k in enumerate(kinds) if k != "m"]  # mobile signatures go wherever they are
    first_text = next((p for p, i in enumerate(idx) if kinds[i] == "t"), None)
    if first_text is None:
        return []
    if answering and "b" in (lead_kinds := [kinds[i] for i in idx[:first_text] if kinds[i] != "e"]) \
            and lead_kinds[-1] == "b":
        # "From:/Sent:/To:" or "On … wrote:" and then unquoted lines: the answered mail, quoted the
        # Outlook way; whoever answers it wrote above (nothing, here) - the rest is history.
        return []
    # A signature delimiter after the first words ends the reply.
    for p in range(first_text, len(idx)):
        if kinds[idx[p]] == "s":
            block = _signature_block(kinds, idx, p) if keep_signature else []
            idx = idx[:p] + block
            break
    lead, rest = idx[:first_text], idx[first_text:]
    # Leading boundary or quote, then text: a bottom-posted reply, or a forward without comment.
    # Keep the leading quote only when the rest is an inline reply (quote, answer, quote, answer).
    keep = [i for i in lead if kinds[i] in ("q", "e")] if _is_inline(kinds, rest) else []
    # Text, then a boundary: everything from the boundary on is history - unless a quote follows
    # with answers below it and no further boundary (an inline reply after "On … wrote:").
    for p, i in enumerate(rest):
        if kinds[i] != "b":
            continue
        after = [k for k in rest[p:] if kinds[k] not in ("b", "e")]
        if after and kinds[after[0]] == "q" and _is_inline(kinds, after) and "b" not in _tail_kinds(kinds, rest, p):
            rest = [k for k in rest if kinds[k] != "b"]
        else:
            rest = rest[:p]
        break
    keep += rest
    while keep and kinds[keep[-1]] in ("e", "q", "b", "s"):
        keep.pop()
    return keep


def _signature_block(kinds: list[str], idx: list[int], p: int) -> list[int]:
    """The lines under the delimiter at idx[p], up to quoted history or the next boundary."""
    block: list[int] = []
    for i in idx[p + 1:]:
        if kinds[i] not in ("t", "e"):
            break
        block.append(i)
    return block


def _is_inline(kinds: list[str], idx: list[int]) -> bool:
    """A quote with new text after it: the writer answers between the quoted lines."""
    seen_quote = False
    for i in idx:
        if kinds[i] == "q":
            seen_quote = True
        elif kinds[i] == "t" and seen_quote:
            return True
    return False


def _tail_kinds(kinds: list[str], rest: list[int], p: int) -> str:
    """Kinds after the boundary run that starts at rest[p]."""
    q = p
    while q < len(rest) and kinds[rest[q]] in ("b", "e"):
        q += 1
    return "".join(kinds[i] for i in rest[q:])


def drop_signoff(kept: list[str]) -> list[str]:
    """Drop a "-Ann Example" sign-off after a blank line at the end (github email_1_1)."""
    last = len(kept) - 1
    while last >= 0 and not kept[last].strip():
        last -= 1
    if last < 2:
        return kept
    line = kept[last].strip()
    if not kept[last - 1].strip() and _DASH_SIGNOFF.fullmatch(line) and all(w[0].isupper() for w in line[1:].split()):
        return kept[:last]
    return kept
