"""Turn wire bytes into a ParsedMail: one compat32 parse, guarded header reads, charset fallback.

The steps live beside it: mime (the bounded parser and safe reads), headers (the header block),
body (the MIME walk), mime_repair, classify and quotes; the names callers import stay here.
"""

from __future__ import annotations

import dataclasses
import logging

from mailgate.mail import body, headers, mime, mime_repair, quotes
from mailgate.mail.body import MAX_ATTACHMENTS
from mailgate.mail.charsets import scrub
from mailgate.mail.classify import Signals, classify, original_message_id
from mailgate.mail.flowed import unflow
from mailgate.mail.headers import content_key, generated_message_id
from mailgate.mail.mime import MAX_DEPTH, header, parse_bytes
from mailgate.mail.quote_select import Cut
from mailgate.mail.text import HTML_LAYOUT_LIMIT, html_to_text, sanitize_html, strip_tags, too_deep, visible_name
from mailgate.models import Address, Attachment, MailKind, ParsedMail

__all__ = [
    "MAX_ATTACHMENTS", "MAX_DEPTH", "content_key", "generated_message_id", "header", "parse", "parse_bytes", "unflow",
]

log = logging.getLogger("mailgate.parse")

# Defects that mean the sender's bytes were hostile or beyond a budget: worth one log line.
_DEGRADED = (
    "UnknownCharset", "CharsetDecodeError", "NestingTooDeep", "HtmlToo", "TooManyParts", "ParseError", "BodyParseError",
)  # fmt: skip

# Text kept from the body of a mail whose MIME structure could not be read at all.
_FALLBACK_TEXT = 1 << 20


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


def _parse(raw: bytes) -> ParsedMail:
    msg = mime.parse_bytes(raw)
    repaired = False
    source = raw
    for _ in range(2):  # a banner line may hide a second breakage behind it
        try:
            fixed = mime_repair.repair_headers(source, msg) if msg.defects else None
        except Exception:  # a bug in mending must not cost the plain parse
            fixed = None
        if fixed is None:
            break
        msg = mime.parse_bytes(fixed)
        source = fixed
        repaired = True
    top_type = mime.content_type(msg)
    walk = body.Walk()
    try:
        body.walk_part(msg, (), walk)
    except Exception as exc:  # what was collected so far stays; the spool keeps the bytes
        walk.defects.append(f"BodyParseError:{type(exc).__name__}")
        if walk.text is None and walk.html is None:
            walk.text = _raw_body_text(raw)
    for part in msg.walk():
        for defect in part.defects:
            walk.defects.append(type(defect).__name__)
        if isinstance(part, mime.Opaque):
            walk.defects.append(f"NestingTooDeep:{mime.MAX_DEPTH}")
    defects: list[str] = ["RepairedHeaders"] if repaired else []
    heads = headers.read_heads(msg, raw, walk.charsets, defects)

    html = walk.html
    text = walk.text if walk.text is not None else (walk.named_text or "")
    if html is not None and (len(html) > HTML_LAYOUT_LIMIT or too_deep(html)):
        # Too big to lay out in time (a 20 MB order list held the worker 24-49 s and 1.5 GB) or
        # nested as no client writes: read as plain text; the HTML itself stays as an attachment.
        reason = "HtmlTooLarge" if len(html) > HTML_LAYOUT_LIMIT else "HtmlTooDeep"
        defects.append(f"{reason}:{len(html) // 1024}KB")
        if not text.strip():
            text = strip_tags(html)
        walk.attachments.append(body.attachment("message.html", "text/html", html.encode("utf-8", "replace")))
        html = None
    elif html is not None and not text.strip():
        # Some senders ship an empty text alternative next to the real HTML body.
        text = html_to_text(html) or text
    if walk.text is not None:
        text = body.extract_uuencoded(text, walk)
    if walk.untaken:
        defects.append(f"TooManyParts:{len(walk.attachments) + walk.untaken}")
        walk.attachments.append(body.attachment("original.eml", "message/rfc822", raw))

    report_type = mime.params(msg).get("report-type", "").lower() if top_type == "multipart/report" else ""
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
        # The HTML as sent: sanitizing drops the class and id attributes that mark quote
        # containers (Gmail's "gmail_quote", Outlook's "divRplyFwdMsg"); only text comes out here.
        reply = quotes.read(text, html)
    except Exception as exc:  # another module's bug must not lose the mail
        defects.append(f"ReplyTextError:{type(exc).__name__}")
        reply = Cut(text, None, "none")

    return _mail(heads, text=text, html=safe_html, reply_text=reply.text, attachments=tuple(walk.attachments),
                 kind=kind, bounce_of=bounce_of, defects=walk.defects + defects, signature=reply.signature,
                 quote_style=reply.style, html_as_sent=html)  # fmt: skip


def _mail(
    heads: headers.Heads,
    *,
    text: str,
    html: str | None,
    reply_text: str,
    attachments: tuple[Attachment, ...],
    kind: MailKind,
    bounce_of: str | None,
    defects: list[str],
    signature: str | None = None,
    quote_style: str = "none",
    html_as_sent: str | None = None,
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
        signature=signature,
        quote_style=quote_style,
        html_as_sent=html_as_sent,
    )


def _fallback(raw: bytes, exc: BaseException) -> ParsedMail:
    """The mail when its body could not be parsed: the mime.header block still names sender and thread.

    Without the sender the customer would get no ticket of their own and no acknowledgement.
    """
    defects = [f"ParseError:{type(exc).__name__}"]
    text = _raw_body_text(raw)
    try:
        # A mail that could not be read is never an agent's proven command: identity needs more.
        heads = dataclasses.replace(headers.read_heads(mime.parse_bytes(raw, headersonly=True), raw, [], defects), from_is_clean=False)
        kind = classify(Signals(heads.headers, heads.subject, heads.from_[0].address if heads.from_ else "",
                                "text/plain", "", frozenset(), (), text[:4000]))  # fmt: skip
    except Exception as again:
        defects.append(f"HeaderParseError:{type(again).__name__}")
        heads = headers.Heads((), headers.generated_message_id(raw), True, None, (), (), False, (), (), (), "", None)
        kind = MailKind.MESSAGE
    return _mail(heads, text=text, html=None, reply_text=text, attachments=(), kind=kind, bounce_of=None,
                 defects=defects)  # fmt: skip


def _shown_name(name: str | None) -> str | None:
    # Bidi overrides and invisible characters make "invoice\u202efdp.exe" show as "invoiceexe.pdf"
    # in `tickets show` and in forwards; the spool keeps the name as sent.
    return (visible_name(name) or None) if name is not None else None


def _raw_body_text(raw: bytes) -> str:
    """The bytes after the mime.header block as text (bounded), for a body no parser could read."""
    try:
        match = headers.HEADER_END.search(raw)
        body = raw[match.end() :] if match else raw
        return mime.newlines(body[:_FALLBACK_TEXT].decode("utf-8", errors="replace"))
    except Exception:
        return ""


def _storable(mail: ParsedMail) -> ParsedMail:
    """The mail with lone surrogates replaced everywhere: SQLite refuses them, and the mail got 250.

    Charset decoding already avoids them; this pass guards every field whatever produced it.
    Nearly always nothing changes: the mail itself is returned then, without rebuilding it.
    """

    def addrs(values: tuple[Address, ...]) -> tuple[Address, ...]:
        return tuple(
            a if scrub(a.name) is a.name and scrub(a.address) is a.address
            else dataclasses.replace(a, name=scrub(a.name), address=scrub(a.address))
            for a in values
        )

    def attachment(a: Attachment) -> Attachment:
        shown, content_type = _shown_name(a.filename), scrub(a.content_type)
        content_id = scrub(a.content_id) if a.content_id is not None else None
        if shown == a.filename and content_type is a.content_type and content_id is a.content_id:
            return a
        return dataclasses.replace(a, filename=shown, content_type=content_type, content_id=content_id)

    fields: dict[str, object] = dict(
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
        html_as_sent=scrub(mail.html_as_sent) if mail.html_as_sent is not None else None,
        reply_text=scrub(mail.reply_text),
        signature=scrub(mail.signature) if mail.signature is not None else None,
        attachments=tuple(attachment(a) for a in mail.attachments),
        bounce_of=scrub(mail.bounce_of) if mail.bounce_of is not None else None,
        defects=tuple(scrub(d) for d in mail.defects),
        headers=tuple((scrub(k), scrub(v)) for k, v in mail.headers),
    )
    # Unchanged fields are the very objects (scrub returns its argument), so == is an identity test.
    changed = {name: value for name, value in fields.items() if value != getattr(mail, name)}
    return dataclasses.replace(mail, **changed) if changed else mail  # type: ignore[arg-type]
