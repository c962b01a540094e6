"""Mend broken top-level header blocks that compat32 gives up on; the spool keeps the original."""

from __future__ import annotations

import re
from email.message import Message

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_HEADER_START = re.compile(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]|From ")
_BAD_NAME = re.compile(rb"([^:\r\n]{1,200}):")
_NAME_JUNK = re.compile(rb"[^\x21-\x39\x3b-\x7e]")
_KNOWN_FIELD = re.compile(
    rb"(from|to|cc|subject|date|received|return-path|message-id|mime-version|content-type):", re.I
)
_TRANSPORT_FIELD = re.compile(rb"(received|return-path|message-id|mime-version|content-type|delivered-to):", re.I)


def repair_headers(raw: bytes, msg: Message) -> bytes | None:
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
