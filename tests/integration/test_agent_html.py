"""Agents answering in HTML alone (Gmail, Outlook on the web): the customer gets the agent's words only.

Such clients mark the quoted history with containers in the HTML as sent ("gmail_quote",
"divRplyFwdMsg", a border-top header block); the text mailgate makes from that HTML has no ">"
to go by, so the cut reads those containers, not the copy sanitised for storage.
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable

import pytest

from mailgate.config import Config
from mailgate.daemon import started

from .conftest import SUPPORT, send, settle
from .sink import Received, Sink, wait_mail
from .test_agent_clients import SIGNATURE, WORDS, answer, base, clientconfig, html_body, paragraphs_html, wire, words_of
from .test_agent_mail import AINO, CUSTOMER, assert_nothing_internal, open_ticket, rows

__all__ = ["clientconfig"]

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

# Attributions in languages whose phrases the text cut may not know: only the container tells.
GMAIL_ATTRIBUTIONS = {
    "en": "On Mon, 23 Nov 2026 at 10:00, Support <{a}> wrote:",
    "cs": "po 23. 11. 2026 v 10:00 odesílatel Support <{a}> napsal:",
    "sv": "mån 23 nov. 2026 kl. 10:00 skrev Support <{a}>:",
    "tr": "23 Kas 2026 Pzt, 10:00 tarihinde Support <{a}> şunu yazdı:",
    "el": "Στις Δευ 23 Νοε 2026 στις 10:00, ο/η Support <{a}> έγραψε:",
}
OUTLOOK_LABELS = {
    "en": ("From", "Sent", "To", "Subject", "Monday, November 23, 2026 10:00 AM"),
    "cs": ("Od", "Odesláno", "Komu", "Předmět", "pondělí 23. listopadu 2026 10:00"),
    "sv": ("Från", "Skickat", "Till", "Ämne", "den 23 november 2026 10:00"),
    "tr": ("Kimden", "Gönderildi", "Kime", "Konu", "23 Kasım 2026 Pazartesi 10:00"),
    "el": ("Από", "Στάλθηκε", "Προς", "Θέμα", "Δευτέρα, 23 Νοεμβρίου 2026 10:00 πμ"),
}


def _lines_html(words: str) -> str:
    return "".join(f"<div>{html_lib.escape(x) or '<br>'}</div>" for x in words.split("\n"))


def gmail_html(notice: Received, words: str, language: str) -> str:
    """Gmail's HTML: the words, its signature block, then the quote in a div.gmail_quote."""
    attribution = GMAIL_ATTRIBUTIONS[language].format(a=SUPPORT)
    return (f'<div dir="ltr">{_lines_html(words)}<br clear="all"><div><br></div><span class="gmail_signature_prefix">'
            f'-- </span><br><div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">'
            f"{html_lib.escape(SIGNATURE).replace(chr(10), '<br>')}</div></div><br><div class=\"gmail_quote\">"
            f'<div dir="ltr" class="gmail_attr">{html_lib.escape(attribution)}<br></div>'
            f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
            f'rgb(204,204,204);padding-left:1ex">{html_body(notice)}</blockquote></div>')


def outlook_header(notice: Received, language: str) -> str:
    who, sent, to, subject, date = OUTLOOK_LABELS[language]
    rows_ = ((who, f"Support <{SUPPORT}>"), (sent, date), (to, f"Aino Agent <{AINO}>"), (subject, notice.header("Subject")))
    return "<br>".join(f"<b>{html_lib.escape(k)}:</b> {html_lib.escape(v)}" for k, v in rows_)


def outlook_web_html(notice: Received, words: str, language: str) -> str:
    """Outlook on the web: the words, a rule, div#divRplyFwdMsg with the header, the mail unquoted."""
    return (f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><style type="text/css"'
            f' style="display:none;"> P {{margin-top:0;margin-bottom:0;}} </style></head><body dir="ltr">'
            f'<div class="elementToProof" style="font-family: Aptos, sans-serif; font-size: 12pt;">{_lines_html(words)}'
            f'</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
            f'<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt"'
            f' color="#000000">{outlook_header(notice, language)}</font><div>&nbsp;</div></div>'
            f"<div>{html_body(notice)}</div></body></html>")


def outlook_desktop_html(notice: Received, words: str, language: str) -> str:
    """Outlook for Windows: the header in a div with a border-top style, the mail unquoted under it."""
    mine = paragraphs_html(words).replace("<p>", '<p class="MsoNormal">')
    return (f'<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" '
            f'content="text/html; charset=utf-8"></head><body lang="EN-US"><div class="WordSection1">{mine}'
            f'<p class="MsoNormal">&nbsp;</p><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm'
            f' 0cm 0cm"><p class="MsoNormal"><b>{outlook_header(notice, language)}</b></p></div>'
            f'<p class="MsoNormal">&nbsp;</p>{html_body(notice)}</div></body></html>')


CLIENTS: dict[str, Callable[[Received, str, str], str]] = {
    "gmail": gmail_html, "outlook-web": outlook_web_html, "outlook-desktop": outlook_desktop_html,
}


@pytest.mark.parametrize("language", list(GMAIL_ATTRIBUTIONS))
@pytest.mark.parametrize("client", list(CLIENTS))
async def test_html_only_answer_sends_only_the_agents_words(
    sink: Sink, clientconfig: Callable[..., Config], client: str, language: str
) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        msg = base(notice)
        msg.set_content(CLIENTS[client](notice, WORDS, language), subtype="html")
        await answer(running, notice, msg)
        received = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert words_of(received) == WORDS, repr(received.text())
        assert_nothing_internal(received)
        for needle in ("Hello Aino", "Reply to this email", SUPPORT, SIGNATURE.splitlines()[1]):
            assert needle not in received.text(), needle
        await wait_mail(sink, AINO, "Done [#1000]")


async def test_the_html_kept_is_the_sanitised_copy(sink: Sink, clientconfig: Callable[..., Config]) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        # A customer's HTML-only answer in Gmail's shape, with what sanitizing must take out.
        msg = base(notice, message_id="<alice-html@customer.test>")
        msg.replace_header("From", f"Alice Customer <{CUSTOMER}>")
        msg.set_content(gmail_html(notice, "It smells of smoke again.", "cs").replace(
            '<div dir="ltr">', '<div dir="ltr" onclick="steal()">', 1) + "<script>steal()</script>", subtype="html")
        await send(running.smtp_port, wire(msg), [SUPPORT], sender=CUSTOMER)
        await settle(running)
        [stored] = await rows(running, "SELECT html, reply_text FROM messages WHERE message_id = 'alice-html@customer.test'")
        assert stored["reply_text"] == "It smells of smoke again."
        for unsafe in ("<script", "onclick", "steal()", "data-smartmail"):
            assert unsafe not in stored["html"], unsafe
