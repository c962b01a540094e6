"""Walk the MIME tree once: the body text and HTML, the attachments, and what reports carry."""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message

from mailgate.mail import addresses, mime
from mailgate.mail.charsets import decode_bytes, decode_words, fix_surrogates
from mailgate.mail.flowed import unflow
from mailgate.models import Attachment

# Attachments taken from one mail. Each becomes a file and a row: 100,000 one-byte parts (an
# 11 MB mail) held the worker 21 s. Past this the mail itself is kept whole as original.eml.
MAX_ATTACHMENTS = 1000

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
class Walk:
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
    value = mime.header(part, "content-id")
    if value is None:
        return None
    value = value.strip().strip("<>").strip()
    return value or None


def walk_part(part: Message, ancestors: tuple[Message, ...], walk: Walk) -> None:
    ctype = mime.content_type(part)
    walk.part_types.add(ctype)
    parent = mime.content_type(ancestors[-1]) if ancestors else ""
    # is_multipart(), not get_payload(): compat32 decodes an 8-bit leaf with its declared charset
    # there, and a hostile label ("undefined") raised out of the walk.
    if part.is_multipart() and ctype.startswith("multipart/"):
        payload = part.get_payload()
        for index, child in enumerate(payload):
            if not isinstance(child, Message):
                continue
            child_type = mime.content_type(child)
            if ctype == "multipart/report" and index > 0 and child_type in _REPORT_PARTS:
                _report_part(child, child_type, walk)
            walk_part(child, (*ancestors, part), walk)
        return
    disposition = mime.disposition(part)
    ct_params = mime.params(part)
    cd_params = mime.params(part, "content-disposition") if disposition is not None else {}
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
    data = mime.payload_bytes(part)
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


def attachment(filename: str | None, content_type: str, data: bytes) -> Attachment:
    return Attachment(
        filename=filename,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        inline=False,
        content_id=None,
        data=data,
    )


def _report_part(part: Message, ctype: str, walk: Walk) -> None:
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        blocks = part.get_payload()
        if isinstance(blocks, list):
            for block in blocks:
                if isinstance(block, Message):
                    action = mime.header(block, "action")
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
            inner = mime.parse_bytes(mime.payload_bytes(part), headersonly=True)
        except Exception:
            return []
    value = mime.header(inner, "message-id")
    found = addresses.msgid(value)
    return [found] if found else []


def _decode_text(part: Message, ct_params: dict[str, str], ancestors: tuple[Message, ...], walk: Walk) -> str:
    data = mime.payload_bytes(part)
    label = ct_params.get("charset")
    inherited = None
    if not label and (not data.isascii() or b"\x1b" in data):
        # Some clients label the multipart container instead of the text part inside it.
        for ancestor in reversed(ancestors):
            inherited = mime.params(ancestor).get("charset")
            if inherited:
                break
    text, defect = decode_bytes(data, label, inherited)
    if defect:
        walk.defects.append(defect)
    text = mime.newlines(text)
    if ct_params.get("format", "").lower() == "flowed":
        # Thunderbird and mutt (text_flowed) send plain text this way: read as sent, a paragraph
        # would reach the next reader broken at the writer's 72 columns, with stuffed spaces.
        text = unflow(text, delsp=ct_params.get("delsp", "").lower() == "yes")
    return text


def extract_uuencoded(text: str, walk: Walk) -> str:
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
            walk.attachments.append(attachment(begin.group(1).strip() or None, "application/octet-stream", data))
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
