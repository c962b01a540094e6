"""HTML-only mail read as text keeps where its links point and how its lists are laid out.

Outlook, web forms and marketing tools send HTML with no text part; the address of "the export
page" lives only in href. Mail goes over real SMTP into a running daemon; the relay is a sink.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.mail.parse import parse
from mailgate.mail.quotes import reply_text
from mailgate.mail.text import html_to_text, link_target

from .conftest import CORPUS, SUPPORT, send, settle, write_config
from .sink import AGENTS, Sink, relay_section, wait_mail

CUSTOMER = "alice@customer.test"
AINO = "aino@agents.test"
EXPORT = "https://portal.example.test/account/export?id=42"

# What Outlook for Windows writes for a short HTML-only mail with a link and lists (trimmed of
# its <style> block, kept: MsoNormal paragraphs, <o:p>, list paragraphs, the signature link).
OUTLOOK_HTML = f"""<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<style><!-- p.MsoNormal {{margin:0cm;font-size:11.0pt;font-family:"Calibri",sans-serif;}} --></style>
</head><body lang="EN-US" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">
<div class="WordSection1">
<p class="MsoNormal">Hello,<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal">I cannot download my data. See the <a href="{EXPORT}">export page</a>.<o:p></o:p></p>
<p class="MsoNormal">What I tried:<o:p></o:p></p>
<ul style="margin-top:0cm" type="disc">
<li class="MsoListParagraph" style="margin-left:0cm">Chrome<o:p></o:p>
<ul style="margin-top:0cm" type="circle"><li class="MsoListParagraph">with extensions off<o:p></o:p></li></ul></li>
<li class="MsoListParagraph" style="margin-left:0cm">Firefox<o:p></o:p></li>
</ul>
<ol style="margin-top:0cm" start="1" type="1">
<li class="MsoListParagraph">Log in<o:p></o:p></li>
<li class="MsoListParagraph">Press Export<o:p></o:p></li>
</ol>
<p class="MsoNormal">The docs at <a href="https://docs.example.test/export">https://docs.example.test/export</a> did not help.
Write to <a href="mailto:billing-team@customer.test?subject=Export">our billing team</a> or
<a href="mailto:alice@customer.test">alice@customer.test</a>.
<a href="javascript:alert(document.cookie)">Click me</a>
<a href="data:text/html;base64,PHNjcmlwdD4=">open</a><o:p></o:p></p>
<p class="MsoNormal">Alice<o:p></o:p></p>
</div></body></html>
"""


@pytest.fixture
def linkconfig(tmp_path: Path, sink: Sink) -> Callable[[], Config]:
    def make() -> Config:
        return config_mod.load(write_config(tmp_path, relay_section(sink.port, send_delay=0.2) + AGENTS))

    return make


def html_mail(html: str, *, subject: str, message_id: str, headers: dict[str, str] | None = None) -> bytes:
    """An HTML-only mail as Outlook sends it: text/html, quoted-printable, no text alternative."""
    msg = EmailMessage()
    msg["From"] = f"Alice Customer <{CUSTOMER}>"
    msg["To"] = f"Support <{SUPPORT}>"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        msg[key] = value
    msg["X-Mailer"] = "Microsoft Outlook 16.0"
    msg.set_content(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def rows(running: Running, sql: str, params: tuple[object, ...] = ()) -> list:
    async with running.store.read() as tx:
        return await tx.all(sql, params)


@pytest.mark.asyncio
async def test_html_only_mail_keeps_links_and_lists_in_ticket_and_notification(
    sink: Sink, linkconfig: Callable[[], Config]
) -> None:
    async with started(linkconfig()) as running:
        raw = html_mail(OUTLOOK_HTML, subject="Export does not work", message_id="<h1@customer.test>")
        await send(running.smtp_port, raw, [SUPPORT], sender=CUSTOMER)
        await settle(running)
        notice = await wait_mail(sink, AINO, "Export does not work")
        [message] = await rows(running, "SELECT text, reply_text FROM messages WHERE direction = 'in'")
        for shown in (message["text"], message["reply_text"], notice.text()):
            assert f"export page [{EXPORT}]." in shown
            # A link whose words are its address is not repeated; mailto: shows the address once.
            assert "https://docs.example.test/export did not help" in shown
            assert "docs.example.test/export [" not in shown
            assert "our billing team [billing-team@customer.test]" in shown
            assert "or alice@customer.test." in shown and "alice@customer.test [" not in shown
            # Script and data targets are no place to go: the words stay, the target does not.
            assert "Click me" in shown and "javascript" not in shown and "data:" not in shown
            lines = [line.rstrip() for line in shown.splitlines()]
            assert "  * Chrome" in lines and "      + with extensions off" in lines and "  * Firefox" in lines
            assert " 1. Log in" in lines and " 2. Press Export" in lines
        # The customer's acknowledgement still goes out as usual.
        await wait_mail(sink, CUSTOMER, "Export does not work")


# Gmail's HTML reply: the new text in <div dir="ltr">, the history in div.gmail_quote.
GMAIL_REPLY_HTML = """<div dir="ltr">Thanks, the <a href="https://portal.example.test/fixed">new export page</a> works.</div>
<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 23 Nov 2026 at 10:00, Support &lt;support@example.test&gt; wrote:<br></div>
<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">
Please try the <a href="https://portal.example.test/quoted-old-link">old export page</a> again.<br></blockquote></div>
"""
GMAIL_REPLY_TEXT = """Thanks, the new export page <https://portal.example.test/fixed> works.

On Mon, 23 Nov 2026 at 10:00, Support <support@example.test> wrote:

> Please try the old export page <https://portal.example.test/quoted-old-link>
> again.
"""

# Outlook on the web, HTML only: the history starts at div#divRplyFwdMsg after an <hr>.
OUTLOOK_REPLY_HTML = """<html><body><div dir="ltr">
<div style="font-family:Calibri,Arial,Helvetica,sans-serif">Still broken, see <a href="https://status.example.test/incident/7">the incident</a>.</div>
<div id="appendonsend"></div>
<hr style="display:inline-block;width:98%" tabindex="-1">
<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif"><b>From:</b> Support &lt;support@example.test&gt;<br>
<b>Sent:</b> Monday, November 23, 2026 10:00 AM<br><b>Subject:</b> Re: Export does not work</font><div>&nbsp;</div></div>
<div>Please try the <a href="https://portal.example.test/quoted-old-link">old export page</a> again.</div>
</div></body></html>
"""


def gmail_reply(subject: str, in_reply_to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Alice Customer <{CUSTOMER}>"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Re: {subject}"
    msg["Date"] = "Mon, 23 Nov 2026 11:00:00 +0000"
    msg["Message-ID"] = "<CAgmail-reply-1@mail.gmail.test>"
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = in_reply_to
    msg.set_content(GMAIL_REPLY_TEXT)
    msg.add_alternative(GMAIL_REPLY_HTML, subtype="html")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.asyncio
@pytest.mark.parametrize("client", ["gmail", "outlook"])
async def test_quoted_links_do_not_leak_into_reply_text(sink: Sink, linkconfig: Callable[[], Config], client: str) -> None:
    async with started(linkconfig()) as running:
        first = html_mail("<p>My export fails.</p>", subject="Export does not work", message_id="<h2@customer.test>")
        await send(running.smtp_port, first, [SUPPORT], sender=CUSTOMER)
        await settle(running)
        ack = await wait_mail(sink, CUSTOMER, "Export does not work")
        if client == "gmail":
            raw, new = gmail_reply("Export does not work", ack.header("Message-ID")), "https://portal.example.test/fixed"
        else:
            raw = html_mail(OUTLOOK_REPLY_HTML, subject=f"Re: {ack.header('Subject')}", message_id="<h3@customer.test>",
                            headers={"In-Reply-To": ack.header("Message-ID"), "References": ack.header("Message-ID")})
            new = "https://status.example.test/incident/7"
        await send(running.smtp_port, raw, [SUPPORT], sender=CUSTOMER)
        await settle(running)
        notice = await wait_mail(sink, AINO, "Export does not work", count=2)
        [message] = await rows(running, "SELECT reply_text FROM messages WHERE direction = 'in' ORDER BY id DESC LIMIT 1")
        for shown in (message["reply_text"], notice.text()):
            assert new in shown
            assert "quoted-old-link" not in shown and "old export page" not in shown


@pytest.mark.parametrize(
    ("href", "label", "shown"),
    [
        ("https://x.test/a", "the page", "https://x.test/a"),
        ("https://x.test/a", "https://x.test/a", None),
        ("https://www.x.test/a/", "www.x.test/a", None),
        ("HTTPS://X.test/a", "see https://x.test/a here", None),
        ("https://tracker.test/c?u=1", "https://x.test/a", "https://tracker.test/c?u=1"),  # words and target differ
        ("mailto:bob@x.test?subject=Hi", "Bob", "bob@x.test"),
        ("mailto:bob@x.test", "bob@x.test", None),
        ("javascript:alert(1)", "click", None),
        (" JavaScript:alert(1)", "click", None),
        ("java\nscript:alert(1)", "click", None),
        ("data:text/html,hi", "open", None),
        ("cid:logo@x", "logo", None),
        ("#top", "top", None),
        ("/relative/path", "here", None),
        ("https://x.test/a", "   ", None),  # an image link: the target alone is noise
        ("https://x.test/\u202eexe.pdf", "file", "https://x.test/exe.pdf"),  # no bidi override reaches a reader
        ("https://x.test/" + "a" * 3000, "long", None),
        ("https://x.test/a]b", "odd", None),  # would break the "[target]" form
    ],
)
def test_link_target(href: str, label: str, shown: str | None) -> None:
    assert link_target(href, label) == shown


def test_hostile_html_keeps_parsing() -> None:
    # Unclosed anchors, anchors in anchors, a huge anchor count: text out, no error, bounded work.
    assert "one [https://a.test/1]" in html_to_text('<p><a href="https://a.test/1">one<a href="https://a.test/2">two')
    many = "".join(f'<a href="https://a.test/{i}">n{i}</a> ' for i in range(5000))
    text = html_to_text(f"<p>{many}</p>")
    assert "n4999 [https://a.test/4999]" in text
    assert html_to_text("<p>a\x00b <a href='https://a.test/'>x</a></p>").startswith("a")


def test_reply_text_of_html_only_reply_keeps_new_link_only() -> None:
    text = html_to_text(OUTLOOK_REPLY_HTML)
    assert "quoted-old-link" in text  # the full body keeps the history …
    cut = reply_text(text, OUTLOOK_REPLY_HTML)
    assert "the incident [https://status.example.test/incident/7]" in cut and "quoted-old-link" not in cut  # … the reply not


_HREF = re.compile(r"""<a\s[^>]*?href\s*=\s*["'](https?://[^"'\s<>\[\]]+)["'][^>]*>([^<]{3,80})</a>""", re.IGNORECASE)


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
def test_corpus_html_only_mails_parse_and_show_their_links() -> None:
    checked = 0
    for path in sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".md", ".json", ".py")):
        raw = path.read_bytes()
        if b"text/html" not in raw.lower():
            continue
        parsed = parse(raw)  # never raises on the corpus
        msg = message_from_bytes(raw, policy=policy.compat32)
        if msg.is_multipart() or msg.get_content_type() != "text/html":
            continue
        payload = msg.get_payload(decode=True) or b""
        html = payload.decode(msg.get_content_charset() or "utf-8", "replace")
        for href, words in _HREF.findall(html):
            if link_target(href, words) is not None and len(parsed.text) < 100_000:
                assert href in parsed.text, (path, href)
                checked += 1
    assert checked >= 20, checked  # 37 links in the corpus when this was written


@pytest.mark.parametrize(
    ("href", "label", "shown"),
    [
        ("https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fportal.example.test%2Fexport%3Fid%3D42"
         "&data=05%7C02%7Caino%40agents.test%7C&sdata=AbC%3D&reserved=0", "export page",
         "https://portal.example.test/export?id=42"),
        ("https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fportal.example.test%2F&data=05",
         "https://portal.example.test/", None),
        ("https://eur01.safelinks.protection.outlook.com/?url=javascript%3Aalert(1)&data=05", "x", None),
        ("https://safelinks.protection.outlook.com.evil.test/?url=https%3A%2F%2Fa.test", "x",
         "https://safelinks.protection.outlook.com.evil.test/?url=https%3A%2F%2Fa.test"),
        ("https://[::1.safelinks.protection.outlook.com/?url=https%3A%2F%2Fa.test", "broken host", None),  # no raise
    ],
)
def test_outlook_safe_links_show_the_address_meant(href: str, label: str, shown: str | None) -> None:
    # Microsoft 365 rewrites links in the mail it delivers; an agent's HTML reply carries them.
    assert link_target(href, label) == shown
