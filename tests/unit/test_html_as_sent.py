"""The HTML as sent is read for quote containers only: what is kept and shown is the sanitised copy.

Each mail is written here in the shape Gmail and Outlook on the web send HTML-only answers.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from mailgate.mail.parse import parse
from mailgate.mail.quotes import new_text
from mailgate.mail.text import HTML_LAYOUT_LIMIT

WORDS = "Hello Marta,\n\nthe courier comes on Thursday.\nPlease keep the box.\n\nRegards\nJonas"
QUOTED = "<p>Dear support,</p><p>where is my parcel? Order 5521.</p><p>Marta</p>"


def _lines(words: str) -> str:
    return "".join(f"<div>{x or '<br>'}</div>" for x in words.split("\n"))


GMAIL = (f'<div dir="ltr">{_lines(WORDS)}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
         "ti 24.11.2026 klo 9.12 Marta &lt;marta@example.org&gt; kirjoitti:<br></div><blockquote class=\"gmail_quote\""
         f' style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">{QUOTED}'
         "</blockquote></div>")
# Outlook on the web puts no quote marks and no container around the answered mail: only the
# header block says where it starts, and in Greek no phrase table knows its labels.
OUTLOOK_WEB = (f'<html><body dir="ltr"><div class="elementToProof">{_lines(WORDS)}</div><div id="appendonsend"></div>'
               '<hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr">'
               "<font face=\"Calibri, sans-serif\"><b>Από:</b> Marta &lt;marta@example.org&gt;<br><b>Στάλθηκε:</b>"
               " Τρίτη, 24 Νοεμβρίου 2026 9:12 πμ<br><b>Προς:</b> Support &lt;help@example.com&gt;<br><b>Θέμα:</b>"
               f" Parcel</font><div>&nbsp;</div></div><div>{QUOTED}</div></body></html>")


def _html_only(html: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Jonas <jonas@example.com>"
    msg["To"] = "marta@example.org"
    msg["Subject"] = "Re: Parcel"
    msg["Message-ID"] = "<answer@example.com>"
    msg.set_content(html, subtype="html")
    return msg.as_bytes()


@pytest.mark.parametrize("html", [GMAIL, OUTLOOK_WEB], ids=["gmail", "outlook-web"])
def test_html_only_answer_is_cut_at_the_clients_container(html: str) -> None:
    mail = parse(_html_only(html))
    assert mail.html_as_sent is not None and mail.html is not None
    assert new_text(mail.text, mail.html_as_sent) == WORDS
    assert "Order 5521" not in new_text(mail.text, mail.html_as_sent)


def test_the_sanitised_copy_hides_the_containers_and_the_copy_as_sent_stays_out_of_sight() -> None:
    hostile = GMAIL.replace('<div dir="ltr">', '<div dir="ltr" onmouseover="steal()">', 1) + "<script>steal()</script>"
    mail = parse(_html_only(hostile))
    assert mail.html is not None and mail.html_as_sent is not None
    for unsafe in ("<script", "onmouseover", "gmail_quote"):
        assert unsafe not in mail.html
        assert unsafe in mail.html_as_sent
    assert "steal()" not in repr(mail)  # logs and tracebacks show the mail without it


def test_html_beyond_the_layout_limit_is_not_kept_twice() -> None:
    big = "<html><body>" + "<p>row of an order list</p>" * (HTML_LAYOUT_LIMIT // 20) + "</body></html>"
    mail = parse(_html_only(big))
    assert mail.html is None and mail.html_as_sent is None
    assert any(d.startswith("HtmlTooLarge") for d in mail.defects)
