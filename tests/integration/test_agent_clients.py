"""Agents answer from real mail clients: every way a client quotes, the customer gets exactly the agent's words.

Each reply is built as the client writes it (headers, attribution line, quoting, signature,
format=flowed, HTML part) and sent over SMTP to a running daemon; the relay is an aiosmtpd sink.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate.config import Config
from mailgate.daemon import Running, started

from .conftest import SUPPORT, write_config
from .sink import AGENTS, Received, Sink, relay_section, wait_mail
from .test_agent_mail import (
    AINO,
    CUSTOMER,
    EXTRA,
    TRUSTED,
    agent_sends,
    assert_nothing_internal,
    open_ticket,
    rows,
    ticket,
)

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

WORDS = "Hello Alice,\n\nwe replaced the toner and cleaned the fuser.\nThe printer works again.\n\nBest regards\nAino"
# One long paragraph: format=flowed clients wrap it at 72 columns with soft line breaks.
LONG = ("Hello Alice,\n\nwe replaced the toner cartridge and cleaned the fuser unit, and after that the printer"
        " printed forty test pages without any smoke, so it should be safe to use again.\n\nAino")
SIGNATURE = "Aino Agent | Example Support\n+358 40 000 0000"
ATTRIBUTIONS = {
    "en": "On Mon, 23 Nov 2026 at 10:00, Support <{a}> wrote:",
    "fi": "ma 23.11.2026 klo 10.00 Support (<{a}>) kirjoitti:",
    "pl": "pon., 23 lis 2026 o 10:00 Support <{a}> napisał(a):",
    "hu": "Support <{a}> ezt írta (időpont: 2026. nov. 23., H, 10:00):",
}
OUTLOOK_HEADERS = {
    "en": ("From", "Sent", "To", "Subject", "Monday, November 23, 2026 10:00 AM"),
    "fi": ("Lähettäjä", "Lähetetty", "Vastaanottaja", "Aihe", "maanantai 23. marraskuuta 2026 10.00"),
    "pl": ("Od", "Wysłano", "Do", "Temat", "poniedziałek, 23 listopada 2026 10:00"),
    "hu": ("Feladó", "Elküldve", "Címzett", "Tárgy", "2026. november 23., hétfő 10:00"),
}


@pytest.fixture
def clientconfig(tmp_path: Path, sink: Sink) -> Callable[..., Config]:
    def make(agent_extra: str = "") -> Config:
        extra = relay_section(sink.port, send_delay=0.3) + AGENTS + EXTRA + agent_extra
        gateway = f'authserv_id = "{TRUSTED}"\ntimezone = "Europe/Helsinki"'
        return config_mod.load(write_config(tmp_path, extra, gateway=gateway, smtp='trusted_peers = ["127.0.0.1"]'))

    return make


# -- how each client writes a reply ----------------------------------------------------------------


def quote(text: str) -> str:
    """mutt, Thunderbird, Gmail and Apple Mail: "> " before each line, ">" alone on empty ones."""
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def flow(text: str, width: int = 72) -> str:
    """RFC 3676 format=flowed as Thunderbird writes it: soft breaks end in a space, "-- " stays hard."""
    out: list[str] = []
    for line in text.split("\n"):
        prefix = re.match(r"^(>+ ?)?", line).group(0)  # type: ignore[union-attr]
        body = line[len(prefix):]
        words = body.split(" ")
        current = ""
        for word in words:
            if current and len(prefix) + len(current) + len(word) + 1 > width:
                out.append(prefix + current + " ")
                current = word
            else:
                current = f"{current} {word}" if current else word
        out.append(prefix + current)
    return "\n".join(out)


def html_body(notice: Received) -> str:
    """The inside of the notification's <body>, as a client quotes it."""
    found = re.search(r"<body[^>]*>(.*)</body>", notice.html(), re.S)
    return found.group(1) if found else notice.html()


def paragraphs_html(text: str, tag: str = "p") -> str:
    return "".join(f"<{tag}>{'<br>'.join(html_lib.escape(x) for x in p.splitlines())}</{tag}>"
                   for p in text.split("\n\n"))


def base(notice: Received, *, subject: str | None = None, headers: dict[str, str] | None = None,
         message_id: str = "<reply@agents.test>") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Aino Agent <{AINO}>"
    msg["To"] = f"Support <{notice.msg['Reply-To'].addresses[0].addr_spec}>"
    msg["Subject"] = subject if subject is not None else f"Re: {notice.header('Subject')}"
    msg["Date"] = "Mon, 23 Nov 2026 10:05:00 +0000"
    msg["Message-ID"] = message_id
    msg["In-Reply-To"] = notice.header("Message-ID")
    msg["References"] = notice.header("Message-ID")
    for key, value in (headers or {}).items():
        msg[key] = value
    return msg


def mutt_bottom(notice: Received, words: str, **kw: object) -> EmailMessage:
    msg = base(notice, headers={"User-Agent": "NeoMutt/20231103", "Content-Disposition": "inline"}, **kw)  # type: ignore[arg-type]
    msg.set_content(f"On Mon, Nov 23, 2026 at 10:00:00AM +0000, Support wrote:\n{quote(notice.text())}\n\n"
                    f"{words}\n\n-- \n{SIGNATURE}\n")
    return msg


def thunderbird(notice: Received, words: str, *, bottom: bool, **kw: object) -> EmailMessage:
    msg = base(notice, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0",
                                "Content-Language": "en-US"}, **kw)  # type: ignore[arg-type]
    attribution = "On 23/11/2026 10:00, Support wrote:"
    quoted = quote(notice.text())
    plain = (f"{attribution}\n{quoted}\n\n{words}\n\n-- \n{SIGNATURE}\n" if bottom
             else f"{words}\n\n-- \n{SIGNATURE}\n\n{attribution}\n{quoted}\n")
    msg.set_content(flow(plain), params={"format": "flowed"})
    cite = (f'<div class="moz-cite-prefix">{attribution}<br></div><blockquote type="cite" '
            f'cite="mid:{notice.header("Message-ID").strip("<>")}">{html_body(notice)}</blockquote>')
    signature = f'<pre class="moz-signature" cols="72">-- \n{html_lib.escape(SIGNATURE)}</pre>'
    mine = paragraphs_html(words)
    inner = f"{cite}{mine}{signature}" if bottom else f"{mine}{signature}{cite}"
    msg.add_alternative(f'<!DOCTYPE html>\n<html><head><meta http-equiv="Content-Type" content="text/html; '
                        f'charset=UTF-8"></head><body>{inner}</body></html>', subtype="html")
    return msg


def outlook(notice: Received, words: str, *, language: str = "en", web: bool = False, **kw: object) -> EmailMessage:
    msg = base(notice, headers={"Thread-Topic": notice.header("Subject"), "Thread-Index": "AQHbXyZ0aW5vIGFnZW50",
                                "X-MS-Has-Attach": "", "Content-Language": "en-US"}, **kw)  # type: ignore[arg-type]
    who, sent, to, subj, date = OUTLOOK_HEADERS[language]
    block = (f"{who}: Support <{SUPPORT}>\n{sent}: {date}\n{to}: Aino Agent <{AINO}>\n"
             f"{subj}: {notice.header('Subject')}")
    rule = "________________________________\n" if web else ""
    msg.set_content(f"{words}\n\n{rule}{block}\n\n{notice.text()}\n")
    header_html = "<br>".join(f"<b>{html_lib.escape(line.split(': ', 1)[0])}:</b> {html_lib.escape(line.split(': ', 1)[1])}"
                              for line in block.splitlines())
    if web:
        quoted = (f'<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
                  f'<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif">{header_html}</font></div>'
                  f"<div>{html_body(notice)}</div>")
        mine = paragraphs_html(words, "div")
    else:
        quoted = (f'<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
                  f'<p class="MsoNormal">{header_html}</p></div>{html_body(notice)}')
        mine = paragraphs_html(words).replace("<p>", '<p class="MsoNormal">')
    msg.add_alternative(f'<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" '
                        f'content="text/html; charset=utf-8"></head><body lang="EN-US"><div class="WordSection1">'
                        f"{mine}<p class=\"MsoNormal\">&nbsp;</p>{quoted}</div></body></html>", subtype="html")
    return msg


def gmail(notice: Received, words: str, *, language: str = "en", **kw: object) -> EmailMessage:
    msg = base(notice, **kw)  # type: ignore[arg-type]
    attribution = ATTRIBUTIONS[language].format(a=SUPPORT)
    plain_attribution = attribution
    if language == "en":
        # Gmail's text part wraps a long attribution inside the address.
        plain_attribution = attribution.replace(f"<{SUPPORT}>", f"<\n{SUPPORT}>")
    msg.set_content(f"{words}\n\n-- \n{SIGNATURE}\n\n{plain_attribution}\n\n{quote(notice.text())}\n")
    mine = "".join(f"<div>{html_lib.escape(x) or '<br>'}</div>" for x in words.split("\n"))
    msg.add_alternative(
        f'<div dir="ltr">{mine}<br><span class="gmail_signature_prefix">-- </span><br><div dir="ltr" '
        f'class="gmail_signature">{html_lib.escape(SIGNATURE)}</div></div><br><div class="gmail_quote">'
        f'<div dir="ltr" class="gmail_attr">{html_lib.escape(attribution)}<br></div><blockquote class="gmail_quote" '
        f'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">'
        f"{html_body(notice)}</blockquote></div>", subtype="html")
    return msg


def apple(notice: Received, words: str, **kw: object) -> EmailMessage:
    msg = base(notice, headers={"X-Mailer": "Apple Mail (2.3826.200.121)"}, **kw)  # type: ignore[arg-type]
    attribution = f"On 23 Nov 2026, at 10:00, Support <{SUPPORT}> wrote:"
    msg.set_content(f"{words}\n\n> {attribution}\n> \n{quote(notice.text())}\n")
    mine = "".join(f"<div>{html_lib.escape(x) or '<br>'}</div>" for x in words.split("\n"))
    msg.add_alternative(
        f'<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head><body style="'
        f'overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">{mine}<div><br>'
        f'<blockquote type="cite"><div>{html_lib.escape(attribution)}</div><br class="Apple-interchange-newline">'
        f"<div>{html_body(notice)}</div></blockquote></div><br></body></html>", subtype="html")
    return msg


def html_only(notice: Received, words: str, *, bottom: bool, **kw: object) -> EmailMessage:
    """A webmail that sends HTML alone: no text part, the quote a blockquote."""
    msg = base(notice, headers={"X-Mailer": "Webmail 9"}, **kw)  # type: ignore[arg-type]
    cite = (f"<div>On 23/11/2026 10:00, Support wrote:</div><blockquote type=\"cite\" style=\"border-left:2px solid"
            f' #1010ff;margin-left:5px;padding-left:5px">{html_body(notice)}</blockquote>')
    mine = paragraphs_html(words)
    msg.set_content(f"<html><body>{cite + mine if bottom else mine + cite}</body></html>", subtype="html")
    return msg


def flowed_only(notice: Received, words: str, **kw: object) -> EmailMessage:
    """Thunderbird in plain-text mode: one text/plain part, format=flowed, top-posted."""
    msg = base(notice, headers={"User-Agent": "Thunderbird/128.5.0"}, **kw)  # type: ignore[arg-type]
    msg.set_content(flow(f"{words}\n\nOn 23/11/2026 10:00, Support wrote:\n{quote(notice.text())}\n"),
                    params={"format": "flowed"})
    return msg


SHAPES: dict[str, Callable[..., EmailMessage]] = {
    "mutt-bottom": mutt_bottom,
    "thunderbird-top": lambda n, w, **kw: thunderbird(n, w, bottom=False, **kw),
    "thunderbird-bottom": lambda n, w, **kw: thunderbird(n, w, bottom=True, **kw),
    "outlook-desktop": outlook,
    "outlook-desktop-fi": lambda n, w, **kw: outlook(n, w, language="fi", **kw),
    "outlook-desktop-pl": lambda n, w, **kw: outlook(n, w, language="pl", **kw),
    "outlook-desktop-hu": lambda n, w, **kw: outlook(n, w, language="hu", **kw),
    "outlook-web": lambda n, w, **kw: outlook(n, w, web=True, **kw),
    "outlook-web-fi": lambda n, w, **kw: outlook(n, w, language="fi", web=True, **kw),
    "gmail": gmail,
    "gmail-fi": lambda n, w, **kw: gmail(n, w, language="fi", **kw),
    "gmail-pl": lambda n, w, **kw: gmail(n, w, language="pl", **kw),
    "gmail-hu": lambda n, w, **kw: gmail(n, w, language="hu", **kw),
    "apple": apple,
    "html-only-top": lambda n, w, **kw: html_only(n, w, bottom=False, **kw),
    "html-only-bottom": lambda n, w, **kw: html_only(n, w, bottom=True, **kw),
    "flowed": flowed_only,
}


def wire(msg: EmailMessage) -> bytes:
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def answer(running: Running, notice: Received, msg: EmailMessage) -> None:
    await agent_sends(running, wire(msg), notice.msg["Reply-To"].addresses[0].addr_spec)


def words_of(received: Received) -> str:
    """What the customer reads above the reply template's own signature."""
    return text_of(received).split("\n-- \n", 1)[0].strip()


def text_of(received: Received) -> str:
    return received.text().replace("\r\n", "\n")


# -- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_customer_gets_exactly_the_agents_words(
    sink: Sink, clientconfig: Callable[..., Config], shape: str
) -> None:
    words = LONG if shape == "flowed" else WORDS
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        await answer(running, notice, SHAPES[shape](notice, words))
        received = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert words_of(received) == words, repr(received.text())
        assert SIGNATURE.splitlines()[1] not in received.text()  # the agent's own signature stays home
        assert_nothing_internal(received)
        assert "[#1000]" not in received.text()
        await wait_mail(sink, AINO, "Done [#1000]")
        assert (await ticket(running))["status"] == "open"  # answered: no longer new


async def test_inline_answer_keeps_the_questions_but_nothing_of_the_notification(
    sink: Sink, clientconfig: Callable[..., Config]
) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        quoted = quote(notice.text()).split("\n")
        at = quoted.index("> the printer is on fire (1).")
        # mutt: the answer goes right under the line it answers; the rest of the quote is trimmed.
        body = ("On Mon, Nov 23, 2026 at 10:00:00AM +0000, Support wrote:\n" + "\n".join(quoted[:at + 1])
                + "\n\nWe replaced the toner; it is safe now.\n\n" + "\n".join(quoted[at + 1:at + 4])
                + "\n\nThanks, Alice!\n\n-- \n" + SIGNATURE + "\n")
        msg = base(notice, headers={"User-Agent": "NeoMutt/20231103"})
        msg.set_content(body)
        await answer(running, notice, msg)
        received = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert words_of(received) == ("> Hello,\n>\n> the printer is on fire (1).\n\nWe replaced the toner; it is safe now.\n\n"
                                      "> Alice\n\nThanks, Alice!")
        assert_nothing_internal(received)
        for needle in ("Hello Aino", "Status:", "Queue:", "Reply to this email", "wrote:"):
            assert needle not in received.text(), needle


async def test_text_sent_in_reply_to_a_confirmation_reaches_the_customer(
    sink: Sink, clientconfig: Callable[..., Config]
) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        await answer(running, notice, gmail(notice, "First answer."))
        done = await wait_mail(sink, AINO, "Done [#1000]")
        assert "Reply = answer the customer" in done.text()
        await answer(running, done, thunderbird(done, "One more thing: use the blue cartridge.", bottom=True,
                                                message_id="<second@agents.test>"))
        second = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1", count=2)
        assert words_of(second) == "One more thing: use the blue cartridge."
        assert_nothing_internal(second)
        await wait_mail(sink, AINO, "Done [#1000]", count=2)
        assert await rows(running, "SELECT 1 FROM events WHERE kind = 'agent_mail.ignored'") == []


async def test_an_empty_answer_to_a_confirmation_is_told_not_ignored(
    sink: Sink, clientconfig: Callable[..., Config]
) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        await answer(running, notice, gmail(notice, "First answer."))
        done = await wait_mail(sink, AINO, "Done [#1000]")
        await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        msg = base(done, message_id="<empty@agents.test>")
        msg.set_content(f"On Mon, Nov 23, 2026 at 10:00:00AM +0000, Support wrote:\n{quote(done.text())}\n")
        await answer(running, done, msg)
        refused = await wait_mail(sink, AINO, "Not done [#1000]")
        assert "no words of yours above, below or between the quoted lines" in refused.text()
        assert "tags corrected" not in refused.text()
        assert len(sink.to(CUSTOMER)) == 2  # the acknowledgement and the first answer


async def test_answer_to_a_delivery_failure_notice_is_refused_with_the_reason(
    sink: Sink, clientconfig: Callable[..., Config]
) -> None:
    refusing = False
    sink.refuse = lambda rcpt: "550 5.1.1 The email account that you tried to reach does not exist." \
        if refusing and CUSTOMER in rcpt else None
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        await wait_mail(sink, CUSTOMER, "Printer on fire 1")  # the acknowledgement went through
        refusing = True  # the customer's mailbox was deleted meanwhile: Aino's answer bounces at the relay
        await answer(running, notice, gmail(notice, "First answer."))
        failed = await wait_mail(sink, AINO, "Delivery failed")
        # The failure notice does not promise "Reply = answer the customer"; answering it is refused.
        # Its Reply-To carries no agent token, so Aino is known by her domain's DKIM pass, as our MX saw it.
        why = wire(mutt_bottom(failed, "What happened here?", message_id="<why@agents.test>"))
        why = f"Authentication-Results: {TRUSTED}; dkim=pass header.d=agents.test\r\n".encode() + why
        await agent_sends(running, why, failed.msg["Reply-To"].addresses[0].addr_spec)
        refused = await wait_mail(sink, AINO, "Not done [#1000]")
        assert "answers a delivery failure notice" in refused.text()
        assert "Correct what is listed above and send it again." in refused.text()
        assert len(sink.to(CUSTOMER)) == 1


async def test_a_header_block_in_an_unknown_language_still_ends_the_words(
    sink: Sink, clientconfig: Callable[..., Config]
) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        msg = base(notice)
        # Outlook in Czech: no phrase table knows "Odesláno:/Komu:/Předmět:", the quote has no ">".
        msg.set_content(f"{WORDS}\n\nOd: Support <{SUPPORT}>\nOdesláno: pondělí 23. listopadu 2026 10:00\n"
                        f"Komu: Aino Agent <{AINO}>\nPředmět: {notice.header('Subject')}\n\n{notice.text()}")
        await answer(running, notice, msg)
        received = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert_nothing_internal(received)
        assert "Hello Aino" not in received.text() and "Reply to this email" not in received.text()
        assert words_of(received).startswith(WORDS)


async def test_words_under_an_unmarked_copy_of_our_mail_are_refused_with_an_accurate_hint(
    sink: Sink, clientconfig: Callable[..., Config]
) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        msg = base(notice)
        # The notification pasted above the answer, without any quote mark or attribution.
        msg.set_content(f"{notice.text()}\n\nDone, see above.\n")
        await answer(running, notice, msg)
        refused = await wait_mail(sink, AINO, "Not done [#1000]")
        text = refused.text()
        assert "not marked as a quote" in text and "tags corrected" not in text
        assert "Correct what is listed above and send it again." in text
        assert len(sink.to(CUSTOMER)) == 1
        assert (await ticket(running))["status"] == "new"


async def test_status_tag_wins_over_open_after_an_answer(sink: Sink, clientconfig: Callable[..., Config]) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        await answer(running, notice, mutt_bottom(notice, "Waiting for your answer.",
                                                  subject="Re: [status:pending] " + notice.header("Subject")))
        await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert (await ticket(running))["status"] == "pending"
        statuses = [json.loads(e["data"]) for e in await rows(running, "SELECT data FROM events WHERE kind = 'ticket.status'")]
        assert statuses == [{"from": "new", "to": "pending"}]


async def test_a_note_leaves_the_ticket_new(sink: Sink, clientconfig: Callable[..., Config]) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        await answer(running, notice, mutt_bottom(notice, "Internal: check the warranty.",
                                                  subject="Re: [comment] " + notice.header("Subject")))
        await wait_mail(sink, AINO, "Done [#1000]")
        assert (await ticket(running))["status"] == "new"


async def test_kept_signature_reaches_the_customer(sink: Sink, clientconfig: Callable[..., Config]) -> None:
    extra = """
[[agents]]
id = "dora"
name = "Dora Agent"
addresses = ["dora@agents.test"]
queues = ["support"]
keep_signature = true
"""
    async with started(clientconfig(extra)) as running:
        notice = await open_ticket(running, sink)
        dora = await wait_mail(sink, "dora@agents.test", "Printer on fire 1")
        msg = mutt_bottom(dora, "We are on it.")
        msg.replace_header("From", "Dora Agent <dora@agents.test>")
        await agent_sends(running, wire(msg), dora.msg["Reply-To"].addresses[0].addr_spec, sender="dora@agents.test")
        received = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert words_of(received) == f"We are on it.\n\n{SIGNATURE}"
        assert notice is not None


async def test_signature_delimiter_and_html_marker_as_clients_expect(
    sink: Sink, clientconfig: Callable[..., Config]
) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        await answer(running, notice, gmail(notice, "Fixed."))
        received = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        for mail in (notice, received, sink.to(CUSTOMER)[0]):
            html = mail.html()
            if mail is not sink.to(CUSTOMER)[0]:  # the acknowledgement has no signature block
                assert "\n-- \n" in text_of(mail), mail.header("Subject")
            assert "\n--\n" not in text_of(mail)
            marker = re.search(r"\[ref:[^\]]+\]", html)
            assert marker is not None
            assert html.rstrip().endswith("</html>")
            assert marker.start() < html.rindex("</body>")


async def test_html_only_inline_answer_keeps_the_question(sink: Sink, clientconfig: Callable[..., Config]) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        body = html_body(notice)
        at = body.index("<p>the printer is on fire (1).</p>") + len("<p>the printer is on fire (1).</p>")
        # A webmail answering inside the quote: the blockquote split around the answer.
        msg = base(notice, headers={"X-Mailer": "Webmail 9"})
        alice = body.index("<p>Alice</p>") + len("<p>Alice</p>")
        msg.set_content(f"<html><body><div>On 23/11/2026 10:00, Support wrote:</div><blockquote type=\"cite\">"
                        f"{body[:at]}</blockquote><p>We replaced the toner.</p><blockquote type=\"cite\">"
                        f"{body[at:alice]}</blockquote><p>Thanks, Alice!</p><blockquote type=\"cite\">{body[alice:]}"
                        f"</blockquote></body></html>", subtype="html")
        await answer(running, notice, msg)
        received = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert words_of(received) == ("> Hello,\n>\n> the printer is on fire (1).\n\nWe replaced the toner.\n\n"
                                      "> Alice\n\nThanks, Alice!")
        assert_nothing_internal(received)


async def test_what_the_agent_quotes_for_the_customer_stays(sink: Sink, clientconfig: Callable[..., Config]) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        words = ("Our warranty says:\n\n> Printers that catch fire are replaced within 5 working days.\n\n"
                 "So a new one is on its way.")
        await answer(running, notice, mutt_bottom(notice, words))
        received = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert words_of(received) == words


async def test_thunderbird_inline_answer_with_html_part(sink: Sink, clientconfig: Callable[..., Config]) -> None:
    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)
        quoted = quote(notice.text()).split("\n")
        at = quoted.index("> the printer is on fire (1).")
        plain = ("On 23/11/2026 10:00, Support wrote:\n" + "\n".join(quoted[:at + 1])
                 + "\n\nWe replaced the toner, and the printer is safe to use again from today on.\n\n"
                 + "\n".join(quoted[at + 1:at + 4]) + "\n\nThanks, Alice!\n\n" + "\n".join(quoted[at + 4:]) + "\n")
        msg = thunderbird(notice, "unused", bottom=True)
        msg.get_body(("plain",)).set_content(flow(plain), params={"format": "flowed"})  # type: ignore[union-attr]
        await answer(running, notice, msg)
        received = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        assert words_of(received) == ("> Hello,\n>\n> the printer is on fire (1).\n\n"
                                      "We replaced the toner, and the printer is safe to use again from today on.\n\n"
                                      "> Alice\n\nThanks, Alice!")
        assert_nothing_internal(received)


async def test_format_flowed_is_read_as_written() -> None:
    from mailgate.mail.parse import unflow

    assert unflow("We replaced the toner and \ncleaned the fuser.\n\n> Hello this \n> is quoted.\n-- \nAino") == (
        "We replaced the toner and cleaned the fuser.\n\n> Hello this is quoted.\n-- \nAino")
    assert unflow(" From here on, \nstuffed.", delsp=False) == "From here on, stuffed."
    assert unflow("split wo\u0020\nrd", delsp=True) == "split word"
    assert unflow(">> deep \n> shallow") == ">> deep\n> shallow"


async def test_new_text_cuts_an_answer_to_our_own_mail() -> None:
    from mailgate.mail.quotes import new_text

    mutt = "On Mon, Nov 23, 2026 at 10:00:00AM +0000, Support wrote:\n> Hello\n>\n> q\n\nanswer\n\n-- \nsig\n"
    assert new_text(mutt) == "answer"
    # Only quoted history (an Outlook header block, the notification unquoted below it): nothing new.
    outlook_empty = "From: Support <s@example.test>\nSent: Monday\nTo: Aino <a@agents.test>\nSubject: x\n\nHello Aino\n"
    assert new_text(outlook_empty) == ""
    assert new_text(mutt.split("\n\nanswer")[0]) == ""
    top = "answer\n\n-- \nsig line\n\nOn Mon, Nov 23, 2026 at 10:00:00AM +0000, Support wrote:\n> Hello\n"
    assert new_text(top) == "answer"
    assert new_text(top, keep_signature=True) == "answer\n\nsig line"
    # A long answer (a pasted log) is kept whole, not cut at the classifier's window.
    log_lines = "Here is the log:\n" + "line of log output\n" * 20000
    assert new_text(log_lines) == log_lines.strip()


async def test_a_machine_answering_every_mail_in_the_agents_name_ends_quickly(
    sink: Sink, clientconfig: Callable[..., Config]
) -> None:
    from .conftest import send
    from .test_loops import quiet

    async with started(clientconfig()) as running:
        notice = await open_ticket(running, sink)

        async def responder(received: Received) -> None:
            # A mail filter in Aino's name that answers every mailgate mail with the same empty body,
            # to the Reply-To, without Auto-Submitted: each answer earns a refusal it answers again.
            if received.rcpt_tos != [AINO] or not received.msg["Reply-To"]:
                return
            msg = base(received, message_id=f"<bot.{len(sink.received)}@agents.test>")
            msg.set_content("\n")
            await send(running.smtp_port, wire(msg), [received.msg["Reply-To"].addresses[0].addr_spec], sender=AINO)

        sink.on_message = responder  # type: ignore[assignment]
        await answer(running, notice, base(notice, message_id="<first-empty@agents.test>"))
        await quiet(running, sink, timeout=60)
        refusals = [r for r in sink.to(AINO) if r.header("Subject").startswith("Not done")]
        assert 1 <= len(refusals) <= 4
        assert len(sink.to(CUSTOMER)) == 1
