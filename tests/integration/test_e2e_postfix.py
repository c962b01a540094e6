"""End to end with real programs: Postfix in front of and behind mailgate, mailboxes in Dovecot.

customer ──SMTP──▶ Postfix ──LMTP──▶ mailgate ──SMTP (relay)──▶ Postfix ──LMTP──▶ Dovecot ◀──IMAP── test

Agents reply from the mail clients they use (mutt, Thunderbird, Outlook desktop and web, Gmail in
Finnish, Polish and Hungarian, Apple Mail, an HTML-only webmail, format=flowed); each reply goes
back through Postfix to the signed support+token address, and the test reads what reached the
customer's Dovecot mailbox. Postfix resolves no names: every test domain has a numeric next hop,
and any other domain is refused.
"""

from __future__ import annotations

import asyncio
import email.utils
import quopri
import re
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import pytest_asyncio

from mailgate import config as config_mod
from mailgate.daemon import Running, started

from .conftest import SUPPORT, write_config
from .dovecot import Dovecot, find_dovecot, free_port
from .postfix import Postfix, find_postfix, postfix_missing
from .sink import AGENTS, relay_section

# One Postfix, Dovecot and mailgate for the whole module: they live on the module's event loop.
on_chain = pytest.mark.asyncio(loop_scope="module")

AINO = "aino@agents.test"
PASSWORD = "secret"
# The Dovecot at customer.test and agents.test knows these; gone.test is a domain whose mail
# server knows nobody, so its recipients bounce with a DSN from Postfix.
CLIENTS = (
    "mutt-bottom", "thunderbird-top", "thunderbird-bottom", "outlook-desktop", "outlook-web",
    "gmail-fi", "gmail-pl", "gmail-hu", "apple-mail", "html-only", "flowed",
)
SIGNATURE = "Aino Agent\nSenior Support Engineer, Example Oy\n+358 40 000 0000"
SIGNATURE_LINE = "Senior Support Engineer"

WORDS = {
    "mutt-bottom": "We replaced the toner cartridge.\nThe printer works again.",
    "thunderbird-top": "We replaced the fuser unit.\nPlease try printing again.",
    "thunderbird-bottom": "The technician comes on Tuesday.\nHe will call you before.",
    "outlook-desktop": "We ordered a new drum.\nIt arrives on Friday.\n\nKind regards,\nAino",
    "outlook-web": "Your printer is under warranty.\nNo costs for you.",
    "gmail-fi": "Vaihdoimme värikasetin.\nTulostin toimii taas.",
    "gmail-pl": "Wymieniliśmy toner.\nDrukarka znów działa.",
    "gmail-hu": "Kicseréltük a festékkazettát.\nA nyomtató újra működik.",
    "apple-mail": "We cleaned the paper path.\nNo more jams.",
    "html-only": "The firmware update fixed it.\nNothing else to do.",
    "flowed": (
        "We looked at the logs of your printer and found that the fuser overheated because the "
        "fan was blocked by a sheet of paper that had slipped behind the rear cover.\n"
        "We removed it."
    ),
}


# -- the chain ---------------------------------------------------------------------------------------


@dataclass
class Chain:
    running: Running
    postfix: Postfix
    dovecot: Dovecot

    async def send(self, raw: bytes, rcpts: list[str], sender: str) -> None:
        refused = await asyncio.to_thread(self.postfix.send, raw, rcpts, sender)
        assert not refused, refused

    async def wait_mail(self, user: str, subject: str, count: int = 1, timeout: float = 30) -> EmailMessage:
        """The count-th mail in the user's INBOX whose Subject contains subject (polls IMAP)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = await asyncio.to_thread(self._fetch, user, subject)
                    if len(found) >= count:
                        return found[count - 1]
                    await asyncio.sleep(0.1)
        except TimeoutError:
            seen = [str(m["Subject"]) for m in await asyncio.to_thread(self._fetch, user, "")]
            raise AssertionError(
                f"no {subject!r} for {user} in Dovecot; the INBOX holds {seen}\n{self.postfix.logs()[-3000:]}"
            ) from None

    def _fetch(self, user: str, subject: str) -> list[EmailMessage]:
        client = self.dovecot.client(user)
        try:
            client.select_folder("INBOX", readonly=True)
            uids = client.search()
            data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        finally:
            client.logout()
        out = []
        for uid in sorted(data):
            msg = message_from_bytes(data[uid][b"BODY[]"], policy=policy.default)
            if subject in str(msg["Subject"] or ""):
                out.append(msg)
        return out  # type: ignore[return-value]

    async def rows(self, sql: str, params: tuple[object, ...] = ()) -> list:
        async with self.running.store.read() as tx:
            return await tx.all(sql, params)


def _users() -> dict[str, str]:
    users = {AINO: PASSWORD}
    users.update({f"{client}@customer.test": PASSWORD for client in CLIENTS})
    return users


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def chain(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Chain]:
    dovecot_binary = find_dovecot()
    if dovecot_binary is None:
        pytest.skip("dovecot is not installed (.ci/run installs dovecot-imapd and dovecot-lmtpd)")
    if not Path("/usr/lib/dovecot/lmtp").exists():
        pytest.skip("Dovecot's LMTP server is not installed (.ci/run installs dovecot-lmtpd)")
    missing = postfix_missing()
    if missing is not None:
        pytest.skip(missing)
    postfix_binary = find_postfix()
    assert postfix_binary is not None
    postfix_port = free_port()
    folder = tmp_path_factory.mktemp("e2e")
    # Postfix is the relay, and delivers to mailgate over LMTP from 127.0.0.1; the reply delay is
    # short so the test does not wait out the undo window.
    body = relay_section(postfix_port, send_delay=0.2) + AGENTS
    config = config_mod.load(write_config(folder, body, smtp='lmtp = true\ntrusted_peers = ["127.0.0.1"]'))
    dovecot = Dovecot(dovecot_binary, _users(), lmtp=True)
    postfix: Postfix | None = None
    try:
        await asyncio.to_thread(dovecot.start)
        async with started(config) as running:
            mailbox = f"lmtp:inet:127.0.0.1:{dovecot.lmtp_port}"
            routes = {"example.test": f"lmtp:inet:127.0.0.1:{running.smtp_port}", "agents.test": mailbox,
                      "customer.test": mailbox, "gone.test": mailbox}
            postfix = Postfix(postfix_binary, routes, port=postfix_port)
            await asyncio.to_thread(postfix.start)
            yield Chain(running, postfix, dovecot)
    finally:
        if postfix is not None:
            await asyncio.to_thread(postfix.cleanup)
        await asyncio.to_thread(dovecot.cleanup)


# -- replies exactly as the clients write them -------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """What the agent's client shows of the notification it answers."""

    subject: str
    message_id: str
    reply_to: str
    text: str

    @classmethod
    def of(cls, msg: EmailMessage) -> Notice:
        body = msg.get_body(("plain",))
        assert body is not None, "the notification has no text part"
        return cls(str(msg["Subject"]), str(msg["Message-ID"]), msg["Reply-To"].addresses[0].addr_spec,
                   body.get_content())


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _quoted(text: str, prefix: str = "> ") -> str:
    return "\n".join(f"{prefix}{line}".rstrip(" ") if line else prefix.rstrip() for line in text.splitlines())


def _qp(text: str) -> str:
    """Quoted-printable as the clients write it: CRLF line ends, soft breaks at 76."""
    return quopri.encodestring(text.replace("\n", "\r\n").encode("utf-8")).decode("ascii")


def _html_lines(text: str, sep: str = "<br>\n") -> str:
    return sep.join(_esc(line) for line in text.splitlines())


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _head(n: Notice, *, sender: str, subject: str | None = None, extra: str = "", message_id: str,
          date: str = "Mon, 23 Nov 2026 12:05:00 +0200") -> str:
    return (
        f"Date: {date}\nFrom: {sender}\nTo: Support <{n.reply_to}>\n"
        f"Subject: {subject or 'Re: ' + n.subject}\nMessage-ID: {message_id}\n"
        f"In-Reply-To: {n.message_id}\nReferences: {n.message_id}\n{extra}"
    )


def _alternative(boundary: str, plain: str, html: str, *, plain_type: str = "text/plain; charset=UTF-8",
                 encoding: str = "quoted-printable") -> str:
    plain_body = _qp(plain) if encoding == "quoted-printable" else plain
    return (
        f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: {plain_type}\nContent-Transfer-Encoding: {encoding}\n\n{plain_body}\n"
        f"--{boundary}\nContent-Type: text/html; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        f"{_qp(html)}\n--{boundary}--\n"
    )


def _gmail_wrap(text: str, width: int = 78) -> str:
    """Gmail hard-wraps its text part near 78 columns, quoted lines and the attribution line too."""
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        prefix = re.match(r"^(?:> ?)*", line).group(0)  # type: ignore[union-attr]
        parts = textwrap.wrap(line[len(prefix):], width - len(prefix), break_long_words=False, break_on_hyphens=False)
        out.extend(prefix + part for part in parts)
    return "\n".join(out)


def _flow(text: str, width: int = 72) -> str:
    """RFC 3676 format=flowed: soft breaks end in a space; quoted lines keep their '>' depth."""
    out: list[str] = []
    for line in text.splitlines():
        quote = re.match(r"^>+ ?", line)
        depth = quote.group(0).rstrip(" ") if quote else ""
        content = line[len(quote.group(0)):] if quote else line
        prefix = f"{depth} " if depth else ""
        if content.startswith((" ", "From ", ">")) and not depth:
            content = " " + content  # space-stuffing
        if len(prefix + content) <= width or content.startswith("-- "):
            out.append((prefix + content).rstrip(" ") if content != "-- " else "-- ")
            continue
        parts = textwrap.wrap(content, width - len(prefix) - 1, break_long_words=False, break_on_hyphens=False)
        out.extend(prefix + part + " " for part in parts[:-1])
        out.append(prefix + parts[-1])
    return "\n".join(out)


def mutt_bottom(n: Notice, words: str) -> bytes:
    # mutt's default attribution ("On %d, %n wrote:"), the history trimmed to its first lines,
    # the answer under it, then the signature after "-- ".
    history = "\n".join(n.text.splitlines()[:6])
    body = (f"On Mon, Nov 23, 2026 at 10:00:00AM +0000, Support wrote:\n{_quoted(history)}\n\n"
            f"{words}\n\n-- \n{SIGNATURE}\n")
    head = _head(n, sender=f"Aino Agent <{AINO}>", message_id="<20261123100500.GA4127@agents.test>",
                 date="Mon, 23 Nov 2026 12:05:00 +0200",
                 extra="MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\nContent-Disposition: inline\n"
                       "User-Agent: Mutt/2.2.9 (2022-11-12)\n")
    return _crlf(f"{head}\n{body}")


def _thunderbird(n: Notice, words: str, *, top: bool) -> bytes:
    cite = "On 23/11/2026 12:00, Support wrote:"
    plain_reply = _flow(f"{words}\n\n-- \n{SIGNATURE}")
    plain_quote = f"{cite}\n{_flow(_quoted(n.text))}"
    plain = f"{plain_reply}\n\n{plain_quote}\n" if top else f"{plain_quote}\n\n{plain_reply}\n"
    html_reply = (f"    <p>{_html_lines(words)}</p>\n"
                  f'    <pre class="moz-signature" cols="72">-- \n{_esc(SIGNATURE)}</pre>\n')
    html_quote = (f'    <div class="moz-cite-prefix">{cite}<br>\n    </div>\n'
                  f'    <blockquote type="cite" cite="mid:{n.message_id.strip("<>")}">\n'
                  f'      <pre class="moz-quote-pre" wrap="">{_esc(n.text)}</pre>\n    </blockquote>\n')
    html = ("<!DOCTYPE html>\n<html>\n  <head>\n"
            '    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n  </head>\n  <body>\n'
            + (html_reply + html_quote if top else html_quote + "    <br>\n" + html_reply)
            + "  </body>\n</html>\n")
    boundary = "------------2CKxkAVd0DmsV8EoLsgWFGcX"
    head = _head(n, sender=f"Aino Agent <{AINO}>",
                 message_id="<6f0f4b1e-3c0a-4d55-9e2b-1a1b2c3d4e5f@agents.test>",
                 extra="MIME-Version: 1.0\nUser-Agent: Mozilla Thunderbird\nContent-Language: en-GB\n")
    return _crlf(head + _alternative(boundary, plain, html, plain_type="text/plain; charset=UTF-8; format=flowed",
                                     encoding="8bit"))


def thunderbird_top(n: Notice, words: str) -> bytes:
    return _thunderbird(n, words, top=True)


def thunderbird_bottom(n: Notice, words: str) -> bytes:
    return _thunderbird(n, words, top=False)


_OUTLOOK_HEAD = (
    "Thread-Topic: {topic}\nThread-Index: AQHbPx0s7mZ3yqv1T0ytnbV3mX1kvA==\nAccept-Language: en-US\n"
    "Content-Language: en-US\nX-MS-Has-Attach:\nX-MS-TNEF-Correlator:\nMIME-Version: 1.0\n"
)


def outlook_desktop(n: Notice, words: str) -> bytes:
    # Outlook for Windows: "RE:", no "> " quoting, the original under a From/Sent/To/Subject block;
    # its text part is generated from the HTML (Word) one.
    block = (f"From: Support <{n.reply_to}>\nSent: Monday, November 23, 2026 12:00 PM\n"
             f"To: Aino Agent <{AINO}>\nSubject: {n.subject}")
    plain = f"{words}\n\n{block}\n\n{n.text}\n"
    paragraphs = "".join(
        f'<p class="MsoNormal">{_esc(line) or "<o:p>&nbsp;</o:p>"}<o:p></o:p></p>\n' for line in words.splitlines()
    )
    original = "".join(f'<p class="MsoNormal">{_esc(line)}<o:p></o:p></p>\n' for line in n.text.splitlines())
    html = (
        '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
        'xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" '
        'xmlns="http://www.w3.org/TR/REC-html40">\n<head>\n'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
        '<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n'
        "<style><!--\np.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{margin:0cm;font-size:11.0pt;"
        "font-family:\"Calibri\",sans-serif;}\n--></style>\n</head>\n"
        '<body lang="EN-US" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n'
        f'<div class="WordSection1">\n{paragraphs}<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">\n'
        f'<p class="MsoNormal"><b>From:</b> Support &lt;{n.reply_to}&gt; <br>\n'
        "<b>Sent:</b> Monday, November 23, 2026 12:00 PM<br>\n"
        f"<b>To:</b> Aino Agent &lt;{AINO}&gt;<br>\n<b>Subject:</b> {_esc(n.subject)}<o:p></o:p></p>\n</div>\n"
        f'<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n{original}</div>\n</body>\n</html>\n'
    )
    boundary = "_000_DB9PR01MB7345A1B2C3D4E5F6DB9PR01MB7345eurp_"
    head = _head(n, sender=f"Aino Agent <{AINO}>", subject=f"RE: {n.subject}",
                 message_id="<DB9PR01MB7345A1B2C3D4E5F6@DB9PR01MB7345.eurprd01.prod.outlook.test>",
                 date="Mon, 23 Nov 2026 10:05:00 +0000",
                 extra=_OUTLOOK_HEAD.format(topic=n.subject) + "X-Mailer: Microsoft Outlook 16.0\n")
    return _crlf(head + _alternative(boundary, plain, html, plain_type='text/plain; charset="utf-8"'))


def outlook_web(n: Notice, words: str) -> bytes:
    # Outlook on the web: a line of underscores, then the header block; in HTML an <hr> and
    # div#divRplyFwdMsg, the answer in div.elementToProof.
    block = (f"________________________________\nFrom: Support <{n.reply_to}>\n"
             f"Sent: Monday, 23 November 2026 12:00\nTo: Aino Agent <{AINO}>\nSubject: {n.subject}")
    plain = f"{words}\n\n{block}\n\n{n.text}\n"
    html = (
        '<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
        '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>\n</head>\n'
        '<body dir="ltr">\n<div class="elementToProof" style="font-family: Aptos, Arial, Helvetica, sans-serif; '
        f'font-size: 12pt; color: rgb(0, 0, 0);">\n{_html_lines(words)}</div>\n'
        '<div id="appendonsend"></div>\n<hr style="display:inline-block;width:98%" tabindex="-1">\n'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt" color="#000000">'
        f"<b>From:</b> Support &lt;{n.reply_to}&gt;<br>\n<b>Sent:</b> Monday, 23 November 2026 12:00<br>\n"
        f"<b>To:</b> Aino Agent &lt;{AINO}&gt;<br>\n<b>Subject:</b> {_esc(n.subject)}</font>\n"
        "<div>&nbsp;</div>\n</div>\n"
        f'<div class="BodyFragment"><font size="2"><span style="font-size:11pt;">\n'
        f'<div class="PlainText">{_html_lines(n.text)}</div>\n</span></font></div>\n</body>\n</html>\n'
    )
    boundary = "_000_AM9PR01MB8123F1E2D3C4B5A6AM9PR01MB8123eurp_"
    head = _head(n, sender=f"Aino Agent <{AINO}>", subject=f"Re: {n.subject}",
                 message_id="<AM9PR01MB8123F1E2D3C4B5A6@AM9PR01MB8123.eurprd01.prod.outlook.test>",
                 date="Mon, 23 Nov 2026 10:05:00 +0000",
                 extra=_OUTLOOK_HEAD.format(topic=n.subject) + "msip_labels:\n")
    return _crlf(head + _alternative(boundary, plain, html, plain_type='text/plain; charset="utf-8"'))


# Gmail's attribution lines, as its Finnish, Polish and Hungarian interfaces write them.
_GMAIL_ATTRIBUTION = {
    "fi": "ma 23.11.2026 klo 12.00 Support <{addr}> kirjoitti:",
    "pl": "pon., 23 lis 2026 o 12:00 Support <{addr}> napisał(a):",
    "hu": "Support <{addr}> ezt írta (időpont: 2026. nov. 23., H, 12:00):",
}


def _gmail(n: Notice, words: str, language: str) -> bytes:
    attribution = _GMAIL_ATTRIBUTION[language].format(addr=n.reply_to)
    plain = _gmail_wrap(f"{words}\n\n-- \n{SIGNATURE}\n\n{attribution}\n\n{_quoted(n.text)}\n")
    html_attr = _esc(attribution)
    html = (
        f'<div dir="ltr"><div>{_html_lines(words, "</div><div>")}</div><div><br></div>'
        '<span class="gmail_signature_prefix">-- </span><br><div dir="ltr" class="gmail_signature" '
        f'data-smartmail="gmail_signature"><div dir="ltr">{_html_lines(SIGNATURE)}</div></div></div><br>'
        f'<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">{html_attr}<br></div>'
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
        f'padding-left:1ex">{_html_lines(n.text)}</blockquote></div>\n'
    )
    boundary = "000000000000f3a1b2063c4d5e6f"
    head = (f"MIME-Version: 1.0\nReferences: {n.message_id}\nIn-Reply-To: {n.message_id}\n"
            f"From: Aino Agent <{AINO}>\nDate: Mon, 23 Nov 2026 12:05:00 +0200\n"
            f"Message-ID: <CAGm7x{language}Q2bXk9fT0vH1sR3oJ5pL7nM9aB1cD3eF5gH7iJ9kL@mail.agents.test>\n"
            f"Subject: Re: {n.subject}\nTo: Support <{n.reply_to}>\n")
    return _crlf(head + _alternative(boundary, plain, html, plain_type='text/plain; charset="UTF-8"'))


def gmail_fi(n: Notice, words: str) -> bytes:
    return _gmail(n, words, "fi")


def gmail_pl(n: Notice, words: str) -> bytes:
    return _gmail(n, words, "pl")


def gmail_hu(n: Notice, words: str) -> bytes:
    return _gmail(n, words, "hu")


def apple_mail(n: Notice, words: str) -> bytes:
    # Apple Mail quotes its own attribution line in the text part, and in HTML puts it inside the
    # blockquote; the answer is divs, the first line bare.
    cite = f"On 23 Nov 2026, at 12:00, Support <{n.reply_to}> wrote:"
    plain = f"{words}\n\n{_quoted(cite)}\n>\n{_quoted(n.text)}\n\n"
    first, *rest = words.splitlines()
    html = (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
        '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;">'
        f"{_esc(first)}" + "".join(f"<div>{_esc(line)}</div>" for line in rest)
        + '<div><br id="lineBreakAtBeginningOfMessage"><div><br><blockquote type="cite">'
        f"<div>{_esc(cite)}</div><br class=\"Apple-interchange-newline\"><div><div>"
        + "".join(f"<div>{_esc(line) or '<br>'}</div>" for line in n.text.splitlines())
        + "</div></div></blockquote></div><br></div></body></html>"
    )
    boundary = "Apple-Mail=_5E0B5C3A-7D1F-4C2B-9A8E-3F6D2C1B0A9E"
    head = (f"Content-Type: multipart/alternative; boundary=\"{boundary}\"\n"
            "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3774.300.61.1.2\\))\n"
            f"Subject: Re: {n.subject}\nFrom: Aino Agent <{AINO}>\nIn-Reply-To: {n.message_id}\n"
            "Date: Mon, 23 Nov 2026 12:05:00 +0200\n"
            "Message-Id: <8C4E2A1B-6D3F-4E5A-B7C9-0D1E2F3A4B5C@agents.test>\n"
            f"References: {n.message_id}\nTo: Support <{n.reply_to}>\nX-Mailer: Apple Mail (2.3774.300.61.1.2)\n\n")
    body = (f"--{boundary}\nContent-Transfer-Encoding: quoted-printable\nContent-Type: text/plain;\n\tcharset=utf-8\n\n"
            f"{_qp(plain)}\n--{boundary}\nContent-Transfer-Encoding: quoted-printable\nContent-Type: text/html;\n"
            f"\tcharset=utf-8\n\n{_qp(html)}\n--{boundary}--\n")
    return _crlf(head + body)


def html_only(n: Notice, words: str) -> bytes:
    # A webmail that sends its HTML alone, no text alternative: the answer in <div>s, the history
    # in a cite blockquote under an attribution.
    cite = f"On 23.11.2026 12:00, Support &lt;{n.reply_to}&gt; wrote:"
    html = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head>'
        '<body style="font-size: 10pt; font-family: Verdana,Geneva,sans-serif">\n'
        + "".join(f"<p>{_esc(line)}</p>\n" for line in words.splitlines())
        + f'<p id="reply-intro">{cite}</p>\n<blockquote type="cite" style="padding: 0 0.4em; '
        'border-left: #1010ff 2px solid; margin: 0">\n'
        f'<div class="pre" style="margin: 0; padding: 0; font-family: monospace">{_html_lines(n.text)}</div>\n'
        "</blockquote>\n</body></html>\n"
    )
    head = _head(n, sender=f"Aino Agent <{AINO}>", message_id="<8d3c1f0a2b4e6d8f@webmail.agents.test>",
                 extra="MIME-Version: 1.0\nContent-Type: text/html; charset=UTF-8\n"
                       "Content-Transfer-Encoding: quoted-printable\nUser-Agent: Webmail/1.6\n")
    return _crlf(f"{head}\n{_qp(html)}")


def flowed(n: Notice, words: str) -> bytes:
    # Thunderbird composing plain text: format=flowed, soft line breaks end in a space.
    body = _flow(f"{words}\n\n-- \n{SIGNATURE}") + "\n\nOn 23/11/2026 12:00, Support wrote:\n" + _flow(_quoted(n.text)) + "\n"
    head = _head(n, sender=f"Aino Agent <{AINO}>", message_id="<0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d@agents.test>",
                 extra="MIME-Version: 1.0\nUser-Agent: Mozilla Thunderbird\nContent-Language: en-GB\n"
                       "Content-Type: text/plain; charset=UTF-8; format=flowed\nContent-Transfer-Encoding: 8bit\n")
    return _crlf(f"{head}\n{body}")


SHAPES: dict[str, Callable[[Notice, str], bytes]] = {
    "mutt-bottom": mutt_bottom,
    "thunderbird-top": thunderbird_top,
    "thunderbird-bottom": thunderbird_bottom,
    "outlook-desktop": outlook_desktop,
    "outlook-web": outlook_web,
    "gmail-fi": gmail_fi,
    "gmail-pl": gmail_pl,
    "gmail-hu": gmail_hu,
    "apple-mail": apple_mail,
    "html-only": html_only,
    "flowed": flowed,
}


def customer_mail(customer: str, subject: str, message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Carla Customer <{customer}>"
    msg["To"] = f"Support <{SUPPORT}>"
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(email.utils.localtime())
    msg["Message-ID"] = message_id
    msg.set_content("Hello,\n\nthe printer is on fire again.\nIt smells of toner.\n\nCarla\n")
    return _crlf(msg.as_string())


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None, f"no text part in {msg['Subject']!r}"
    return part.get_content().replace("\r\n", "\n")  # Dovecot keeps the wire's CRLF


def _flat(text: str) -> str:
    return " ".join(text.split())


# -- the tests ---------------------------------------------------------------------------------------


_CASES = list(CLIENTS)


@on_chain
@pytest.mark.parametrize("client", _CASES)
async def test_agent_reply_through_postfix_reaches_the_customer_mailbox(chain: Chain, client: str) -> None:
    customer = f"{client}@customer.test"
    subject = f"Printer on fire ({client})"
    await chain.send(customer_mail(customer, subject, f"<{client}.1@customer.test>"), [SUPPORT], customer)

    ack = await chain.wait_mail(customer, subject)
    assert ack["From"].addresses[0].addr_spec == SUPPORT
    assert "[#" in str(ack["Subject"])
    notice = Notice.of(await chain.wait_mail(AINO, subject))
    assert notice.reply_to.startswith("support+") and notice.reply_to.endswith("@example.test")

    words = WORDS[client]
    raw = SHAPES[client](notice, words)
    # Back through Postfix to the signed reply address: recipient_delimiter keeps "+token" intact.
    await chain.send(raw, [notice.reply_to], AINO)

    # Every agent mail gets a confirmation: "Done", or why not (refused, not proven to be hers).
    confirmation = await chain.wait_mail(AINO, subject, count=2)
    assert str(confirmation["Subject"]).startswith("Done"), (
        f"{client}: {confirmation['Subject']}\n{text_of(confirmation)}"
    )
    answer = await chain.wait_mail(customer, subject, count=2)
    assert answer["From"].addresses[0].addr_spec == SUPPORT
    assert str(answer["In-Reply-To"]) == f"<{client}.1@customer.test>"
    text = text_of(answer)
    said = re.split(r"\n-- ?\n", text, maxsplit=1)[0]  # above mailgate's own signature
    # Exactly the agent's words: nothing missing, nothing of the notification, the quote, the
    # attribution line or the agent's signature added.
    assert _flat(said) == _flat(words), f"{client}: the customer got\n{text}"
    whole = answer.as_string()
    for leak in ("the printer is on fire again", "New request", "wrote:", "kirjoitti", "napisał", "írta",
                 "Sent:", SIGNATURE_LINE, "+358", AINO, "[comment]"):
        assert leak not in whole, f"{client}: {leak!r} reached the customer:\n{text}"


@on_chain
async def test_postfix_bounce_for_an_unknown_customer_lands_on_the_ticket(chain: Chain) -> None:
    """mailgate's acknowledgement to a recipient nobody hosts: Postfix's own DSN to the VERP address."""
    customer = "ghost@gone.test"
    subject = "Where is my order"
    await chain.send(customer_mail(customer, subject, "<ghost.1@gone.test>"), [SUPPORT], customer)
    notice = Notice.of(await chain.wait_mail(AINO, subject))
    number = int(re.search(r"\[#(\d+)\]", notice.subject).group(1))  # type: ignore[union-attr]

    # Postfix hands the DSN's notice and the first notification to Dovecot in either order.
    failed = await chain.wait_mail(AINO, "Delivery failed")
    assert f"[#{number}]" in str(failed["Subject"]), failed["Subject"]
    text = text_of(failed)
    assert customer in text and "5.1.1" in text, text
    bounced = await chain.rows(
        "SELECT t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.kind = 'bounce'"
    )
    assert [b["number"] for b in bounced] == [number]
    [ack] = await chain.rows("SELECT o.state, o.last_error FROM outbox o JOIN tickets t ON t.id = o.ticket_id"
                             " WHERE o.kind = 'ack' AND t.number = ?", (number,))
    assert ack["state"] == "failed" and "5.1.1" in ack["last_error"]
    # Postfix itself wrote that DSN and sent it to the VERP return path of the acknowledgement.
    assert re.search(r"to=<bounces\+[^>]+@example\.test>.*status=sent", chain.postfix.logs())


@pytest.mark.parametrize("transport", ["smtp:mx.customer.test", "smtp:[192.0.2.1]:25", "lmtp:inet:mail.test:24"])
def test_postfix_fixture_refuses_a_route_off_loopback(transport: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        Postfix("/usr/sbin/postfix", {"customer.test": transport})
