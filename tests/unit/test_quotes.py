"""quotes.reply_text: client styles, languages, signatures, HTML containers, hostile input."""

from __future__ import annotations

import re
import time

import pytest

from mailgate.mail import quote_phrases
from mailgate.mail.quotes import reply_text

from ..conftest import CORPUS

REPLY = "Thanks, that fixed it.\n\nBest,\nAnn"
QUOTE = "> Did you try turning it off and on again?\n>\n> Bob"


def _reply_above(boundary: str, history: str = QUOTE) -> str:
    return f"{REPLY}\n\n{boundary}\n{history}\n"


# (id, boundary lines between the reply and the history)
ATTRIBUTIONS = [
    # Gmail
    ("gmail", "On Mon, 5 Jan 2015 at 10:00, Bob Smith <bob@b.example> wrote:"),
    ("gmail-wrapped-2", "On Mon, Jan 5, 2015 at 10:00 AM, Bob Smith <bob@b.example>\nwrote:"),
    ("gmail-wrapped-3", "On Mon, Jan 5, 2015 at 10:00 AM, Bob Smith via Support <\nsupport@b.example>\nwrote:"),
    ("gmail-wrapped-quoted-end", "On Mon, Jan 5, 2015 at 10:00 AM, Bob Smith <bob@b.example\n> wrote:"),
    ("gmail-iso", "2015-01-05 10:00 GMT+01:00 Bob Smith <bob@b.example>:"),
    # Apple Mail, Thunderbird, Yahoo, Zoho
    ("apple", "On 5 Jan 2015, at 10:00, Bob Smith wrote:"),
    ("apple-address", "On 5 Jan 2015, at 10:00, Bob Smith <bob@b.example> wrote:"),
    ("thunderbird", "On 1/5/2015 10:00 AM, Bob Smith wrote:"),
    ("thunderbird-name-only", "Bob Smith wrote:"),
    ("yahoo", "--- On Mon, 1/5/15, bob@b.example <bob@b.example> wrote:"),
    ("zoho", "---- On Mon, 05 Jan 2015 10:00:00 +0100 Bob Smith <bob@b.example> wrote ----"),
    # Finnish
    ("fi-gmail", "ma 5.1.2015 klo 10.00 Matti Meikäläinen <matti@example.fi> kirjoitti:"),
    ("fi-outlook", "Matti Meikäläinen kirjoitti 5.1.2015 kello 10.00:"),
    ("fi-apple", "5.1.2015 kello 10.00 Matti Meikäläinen <matti@example.fi> kirjoitti:"),
    # Polish
    ("pl-gmail", "pon., 5 sty 2015 o 10:00 Jan Kowalski <jan@example.pl> napisał(a):"),
    ("pl-napisal", "Jan Kowalski <jan@example.pl> napisał:"),
    ("pl-pisze", "W dniu 5.01.2015 o 10:00, Jan Kowalski pisze:"),
    ("pl-thunderbird", "W dniu 5.01.2015 o 10:00, użytkownik Jan Kowalski napisał:"),
    ("pl-wrapped", "pon., 5 sty 2015 o 10:00 Jan Kowalski <jan@example.pl>\nnapisał(a):"),
    # Hungarian
    ("hu-gmail", "2015. jan. 5., h 10:00 Kovács János <janos@example.hu> ezt írta:"),
    ("hu-gmail-new", "Kovács János <janos@example.hu> ezt írta (időpont: 2015. jan. 5., h 10:00):"),
    ("hu-irta", "Kovács János írta 2015. 01. 05. 10:00-kor:"),
    # German
    ("de-schrieb", "Bob Smith <bob@b.example> schrieb:"),
    ("de-am", "Am 05.01.2015 um 10:00 schrieb Bob Smith <bob@b.example>:"),
    ("de-gmail", "Bob Smith <bob@b.example> schrieb am Mo., 5. Jan. 2015 um 10:00 Uhr:"),
    ("de-gmail-wrapped", "Bob Smith <bob@b.example> schrieb am Mo., 5.\nJan. 2015 um 10:00 Uhr:"),
    # Swedish
    ("sv-skrev", "Bob Smith <bob@b.example> skrev:"),
    ("sv-den", "Den 5 jan. 2015 kl. 10:00 skrev Bob Smith <bob@b.example>:"),
    # French, Dutch, Spanish (and the neighbours the corpus showed)
    ("fr", "Le 5 janv. 2015 à 10:00, Bob Smith <bob@b.example> a écrit :"),
    ("fr-nbsp", "Le lun. 5 janv. 2015 à 10:00, Bob Smith <bob@b.example> a\u00a0écrit\u00a0:"),
    ("nl", "Op 5 jan. 2015 om 10:00 schreef Bob Smith <bob@b.example>:"),
    ("nl-apple", "Op 5 jan. 2015 om 10:00 heeft Bob Smith <bob@b.example> het volgende geschreven:"),
    ("es", "El 5 ene 2015, a las 10:00, Bob Smith <bob@b.example> escribió:"),
    ("es-gmail", "El lun., 5 ene. 2015 a las 10:00, Bob Smith (<bob@b.example>) escribió:"),
    ("it", "Il giorno 5 gen 2015, alle ore 10:00, Bob Smith <bob@b.example> ha scritto:"),
    ("pt", "Em 5 de jan de 2015, às 10:00, Bob Smith <bob@b.example> escreveu:"),
    ("ru", "5 янв. 2015 г., в 10:00, Bob Smith <bob@b.example> написал(а):"),
]


@pytest.mark.parametrize(("boundary"), [a for _, a in ATTRIBUTIONS], ids=[i for i, _ in ATTRIBUTIONS])
def test_attribution_then_quote(boundary: str) -> None:
    assert reply_text(_reply_above(boundary)) == REPLY


# "Bob Smith wrote:" with no date or address is only trusted when a quote follows.
UNQUOTED = [(i, a) for i, a in ATTRIBUTIONS if i != "thunderbird-name-only"]


@pytest.mark.parametrize(("boundary"), [a for _, a in UNQUOTED], ids=[i for i, _ in UNQUOTED])
def test_attribution_then_unquoted_history(boundary: str) -> None:
    """Outlook-style replies quote without ">": the attribution alone must end the reply."""
    assert reply_text(_reply_above(boundary, "Did you try turning it off and on again?\n\nBob")) == REPLY


HEADER_BLOCKS = [
    ("outlook-original", "-----Original Message-----\nFrom: Bob Smith [mailto:bob@b.example]\nSent: Monday, January 05, 2015 10:00 AM\nTo: Ann\nSubject: Printer"),
    ("outlook-rule", "________________________________\nFrom: Bob Smith <bob@b.example>\nSent: Monday, January 5, 2015 10:00\nTo: Ann\nSubject: Printer"),
    ("outlook-web-bold", " ------------------------------\n\n*From:* Bob Smith\n*Sent:* 2015-01-05\n*To:* ann@a.example\n*Subject:* Printer"),
    ("outlook-no-rule", "From: Bob Smith [mailto:bob@b.example]\nSent: Monday, January 05, 2015 10:00 AM\nTo: Ann\nSubject: Printer"),
    ("outlook-mac", "From: Bob Smith <bob@b.example>\nDate: Monday, 5 January 2015 at 10:00\nTo: Ann <ann@a.example>\nSubject: Printer"),
    ("de", "-----Ursprüngliche Nachricht-----\nVon: Bob Smith <bob@b.example>\nGesendet: Montag, 5. Januar 2015 10:00\nAn: Ann\nBetreff: Drucker"),
    ("de-no-rule", "Von: Bob Smith <bob@b.example>\nGesendet: Montag, 5. Januar 2015 10:00\nAn: Ann\nBetreff: Drucker"),
    ("fi", "Lähettäjä: Matti Meikäläinen <matti@example.fi>\nLähetetty: maanantai 5. tammikuuta 2015 10.00\nVastaanottaja: Ann\nAihe: Tulostin"),
    ("fi-original", "-----Alkuperäinen viesti-----\nLähettäjä: Matti Meikäläinen\nLähetetty: 5. tammikuuta 2015 10:00\nAihe: Tulostin"),
    ("pl", "Od: Jan Kowalski <jan@example.pl>\nWysłano: poniedziałek, 5 stycznia 2015 10:00\nDo: Ann\nTemat: Drukarka"),
    ("hu", "Feladó: Kovács János <janos@example.hu>\nElküldve: 2015. január 5. 10:00\nCímzett: Ann\nTárgy: Nyomtató"),
    ("sv", "Från: Bob Smith <bob@b.example>\nSkickat: den 5 januari 2015 10:00\nTill: Ann\nÄmne: Skrivare"),
    ("fr", "De : Bob Smith <bob@b.example>\nEnvoyé : lundi 5 janvier 2015 10:00\nÀ : Ann\nObjet : Imprimante"),
    ("fr-original", "-----Message d'origine-----\nDe : Bob Smith\nEnvoyé : lundi 5 janvier 2015 10:00\nObjet : Imprimante"),
    ("nl", "Van: Bob Smith <bob@b.example>\nVerzonden: maandag 5 januari 2015 10:00\nAan: Ann\nOnderwerp: Printer"),
    ("es", "-----Mensaje original-----\nDe: Bob Smith <bob@b.example>\nEnviado: lunes, 5 de enero de 2015 10:00\nPara: Ann\nAsunto: Impresora"),
    ("forward-gmail", "---------- Forwarded message ---------\nFrom: Bob Smith <bob@b.example>\nDate: Mon, Jan 5, 2015 at 10:00 AM\nSubject: Printer\nTo: <ann@a.example>"),
    ("forward-apple", "Begin forwarded message:\n\nFrom: Bob Smith <bob@b.example>\nSubject: Printer\nDate: 5 January 2015 at 10:00:00 CET\nTo: ann@a.example"),
    ("original-short", "---Original Message---"),
    ("original-dashes", "----- Original Message -----"),
]


@pytest.mark.parametrize(("block"), [b for _, b in HEADER_BLOCKS], ids=[i for i, _ in HEADER_BLOCKS])
def test_header_block(block: str) -> None:
    assert reply_text(_reply_above(block, "\nDid you try turning it off and on again?\n\nBob")) == REPLY


def test_quote_at_the_end() -> None:
    assert reply_text(f"{REPLY}\n\n{QUOTE}\n") == REPLY


def test_bottom_posted_reply() -> None:
    text = f"On Mon, 5 Jan 2015 at 10:00, Bob <bob@b.example> wrote:\n{QUOTE}\n\n{REPLY}\n"
    assert reply_text(text) == REPLY


def test_inline_reply_keeps_the_quoted_questions() -> None:
    text = (
        "On Mon, 5 Jan 2015 at 10:00, Bob <bob@b.example> wrote:\n"
        "> Is it on?\n\nYes.\n\n> Is it plugged in?\n\nAlso yes.\n"
    )
    assert reply_text(text) == "> Is it on?\n\nYes.\n\n> Is it plugged in?\n\nAlso yes."


def test_inline_reply_after_a_greeting() -> None:
    text = "Hi Bob,\n\nOn Mon, 5 Jan 2015, Bob <bob@b.example> wrote:\n> Is it on?\n\nYes.\n"
    assert reply_text(text) == "Hi Bob,\n\n> Is it on?\n\nYes."


def test_forward_without_comment_keeps_the_forwarded_text() -> None:
    text = (
        "---------- Forwarded message ---------\nFrom: Bob <bob@b.example>\n"
        "Date: Mon, Jan 5, 2015 at 10:00 AM\nSubject: Printer\nTo: ann@a.example\n\nThe printer is on fire.\n"
    )
    assert reply_text(text) == "The printer is on fire."


def test_nested_wrapped_attribution_stays_in_the_quote() -> None:
    text = "My answer.\n\n> Earlier answer.\n> On Mon, 5 Jan 2015, Bob <bob@b.example\n> > wrote:\n>> First.\n"
    assert reply_text(text) == "My answer."


def test_all_quote_returns_the_text() -> None:
    assert reply_text("> only a quote\n> here\n") == "> only a quote\n> here"


def test_nested_history_is_cut_at_the_first_attribution() -> None:
    text = (
        "Third.\n\nOn Mon, Feb 1, 2016 at 4:58 AM, Bob <bob@b.example> wrote:\n\nSecond.\n\n"
        "On Sun, Jan 31, 2016 at 9:58 PM, Ann <ann@a.example> wrote:\n\nFirst.\n"
    )
    assert reply_text(text) == "Third."


@pytest.mark.parametrize(
    "signature",
    [
        "-- \nAnn Example\nExample Ltd",
        "--\nAnn Example\n+358 40 123 4567",
        "__________\nsupport mailing list\nsupport@lists.example",
        "Sent from my iPhone",
        "Sent from my Android",
        "Sent from my BlackBerry",
        "Sent from my Verizon Wireless BlackBerry",
        "Sent from my Samsung Galaxy smartphone.",
        "Sent from Mail for Windows 10",
        "Sent from Outlook",
        "Get Outlook for iOS",
        "Lähetetty iPhonesta",
        "Wysłane z iPhone'a",
        "iPhone-ról küldve",
        "Von meinem iPhone gesendet",
        "Skickat från min iPhone",
        "Envoyé de mon iPhone",
        "Verzonden vanaf mijn iPhone",
        "Enviado desde mi iPhone",
    ],
)
def test_signature_is_cut(signature: str) -> None:
    assert reply_text(f"Here is the log.\n\n{signature}\n") == "Here is the log."


def test_signature_then_quote() -> None:
    text = f"Here is the log.\n\nSent from my iPhone\n\nOn 5 Jan 2015, at 10:00, Bob <bob@b.example> wrote:\n\n{QUOTE}\n"
    assert reply_text(text) == "Here is the log."


def test_dash_signoff_above_quote() -> None:
    assert reply_text(f"Here is the log.\n\n-Ann\n\n{QUOTE}\n") == "Here is the log."


@pytest.mark.parametrize(
    "text",
    [
        "Sent from my desk, which is much easier than my phone.",
        "This is not a -- signature.",
        "Dashes -------- inside a line stay.",
        "Bullets:\n\n- one\n- two",
        "Steps:\n-Restart the router",
        "Bob Smith wrote:\n\nThe printer is on fire.",
        "Here is what I wrote:\n\nThe printer is on fire.",
        "On Monday the printer broke.\nOn Tuesday it works again.",
        "From: the ticket form\nit says nothing else.",
        "Please book the room\nFrom: Monday 10:00\nTo: Tuesday 12:00\nThanks!",
        "```\n> not a quote, code\n--\n```\nEnd.",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert reply_text(text) == text


def test_windows_line_endings() -> None:
    text = "Yes.\r\n\r\nOn Tue, Sep 25, 2012 at 8:59 AM, Bob\r\n<bob@b.example>wrote:\r\n\r\n> Really?\r\n"
    assert reply_text(text) == "Yes."


def test_trims_surrounding_whitespace_but_keeps_indentation() -> None:
    assert reply_text("\n\n  Hello\n\n    indented code\n\n\n") == "Hello\n\n    indented code"


# --- HTML -----------------------------------------------------------------------------------

HTML_REPLIES = [
    (
        "gmail",
        '<div dir="ltr">Works now.</div><br><div class="gmail_quote"><div class="gmail_attr">'
        "2015. jan. 5., h 10:00 Kovács János &lt;janos@example.hu&gt; ezt írta:</div>"
        '<blockquote class="gmail_quote">Is it on?</blockquote></div>',
    ),
    (
        "gmail-signature",
        '<div dir="ltr"><p>Works now.</p></div><div class="gmail_signature"><p>Ann, Example Ltd</p></div>',
    ),
    (
        "apple",
        "<div>Works now.</div><div><br><blockquote type=\"cite\"><div>On 5 Jan 2015, at 10:00, Bob wrote:</div>"
        "<div>Is it on?</div></blockquote></div>",
    ),
    (
        "thunderbird",
        '<p>Works now.</p><div class="moz-cite-prefix">W dniu 5.01.2015 o 10:00, Jan pisze:<br></div>'
        '<blockquote type="cite">Is it on?</blockquote>',
    ),
    (
        "outlook-web",
        '<div>Works now.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg">'
        "<b>Från:</b> Bob<br><b>Skickat:</b> den 5 januari 2015<br><b>Till:</b> Ann</div><div>Is it on?</div>",
    ),
    (
        "outlook-desktop",
        "<div class=WordSection1><p class=MsoNormal>Works now.</p>"
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
        "<p><b>Lähettäjä:</b> Matti<br><b>Lähetetty:</b> 5.1.2015</p></div><p>Is it on?</p></div>",
    ),
    (
        "yahoo",
        '<div>Works now.</div><div class="yahoo_quoted"><div>On Monday, Bob wrote:</div>'
        "<div>Is it on?</div></div>",
    ),
    ("hotmail", '<div>Works now.<br><hr id="stopSpelling">Date: Mon<br>From: Bob<br>Is it on?</div>'),
]


@pytest.mark.parametrize("html", [h for _, h in HTML_REPLIES], ids=[i for i, _ in HTML_REPLIES])
def test_html_quote_containers(html: str) -> None:
    from inscriptis import get_text

    assert reply_text(get_text(html), html) == "Works now."


def test_html_container_wins_for_an_unknown_language() -> None:
    html = (
        "<div>了解しました。</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">"
        "2015年1月5日(月) 10:00 Bob &lt;bob@b.example&gt;:</div><blockquote class=\"gmail_quote\">"
        "質問です</blockquote></div>"
    )
    text = "了解しました。\n\n2015年1月5日(月) 10:00 Bob <bob@b.example>:\n\n質問です\n"
    assert reply_text(text, html) == "了解しました。"


def test_text_wins_without_an_html_container() -> None:
    text = "Works now.\n\n   indented\n\nOn Mon, 5 Jan 2015, Bob <bob@b.example> wrote:\n> Is it on?\n"
    html = "<p>Works now.</p><pre>   indented</pre><p>On Mon, 5 Jan 2015, Bob wrote:</p><p>&gt; Is it on?</p>"
    assert reply_text(text, html) == "Works now.\n\n   indented"


def test_all_quote_html_falls_back_to_text() -> None:
    html = '<blockquote type="cite">Forwarded words</blockquote>'
    assert reply_text("Forwarded words", html) == "Forwarded words"


# --- robustness -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("", None),
        ("", ""),
        ("   \n\n", "<html></html>"),
        ("x\x00y", "<p>\x00</p>"),
        ("plain", '<?xml version="1.0" encoding="UTF-8"?><html><body>x</body></html>'),
        ("plain", "<<<>>>"),
        ("\ufeff\u200b\u1427", None),
        (">" * 10000, None),
        ("On " * 5000 + "wrote:", None),
        ("From: x\n" * 5000, None),
        ("a\n" * 100000 + "-- \nsig", None),
    ],
    ids=[
        "empty",
        "empty-html",
        "blank",
        "nul",
        "xml-declaration",
        "broken-html",
        "noise-only",
        "long-quote-line",
        "repeated-leads",
        "repeated-headers",
        "100k-lines",
    ],
)
def test_never_raises(text: str, html: str | None) -> None:
    result = reply_text(text, html)
    assert isinstance(result, str)
    assert result == result.strip()


def test_pathological_attribution_is_fast() -> None:
    """Near-miss attribution lines must not make the matcher backtrack."""
    line = "On Mon, 5 Jan 2015 at 10:00, " + "Bob <bob@b.example> " * 40 + "wrote"
    text = "Reply\n\n" + "\n".join([line] * 2000)
    started = time.perf_counter()
    reply_text(text)
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("name", ["pathological.txt", "email_long_quote.txt"])
def test_corpus_performance_traps(name: str) -> None:
    path = CORPUS / "github-email-reply-parser" / "emails" / name
    if not path.exists():
        pytest.skip(f"corpus file missing: {path}")
    text = path.read_text()
    started = time.perf_counter()
    result = reply_text(text, f"<pre>{text}</pre>")
    assert time.perf_counter() - started < 5
    assert result


# --- the phrase tables ----------------------------------------------------------------------


def test_every_required_language_has_a_table() -> None:
    assert {"en", "fi", "pl", "hu", "de", "sv", "fr", "nl", "es"} <= set(quote_phrases.PHRASES)


@pytest.mark.parametrize("lang", sorted(quote_phrases.PHRASES))
def test_phrase_table_is_well_formed(lang: str) -> None:
    table = quote_phrases.PHRASES[lang]
    assert table.wrote or table.wrote_inside
    assert "from" in table.headers
    for phrase in (*table.wrote, *table.wrote_inside, *table.separators, *table.leads):
        assert phrase == phrase.strip() and not phrase.endswith(":"), phrase
    for pattern in table.mobile:
        re.compile(pattern)


def test_huge_mail_keeps_all_new_text_and_cuts_quotes_in_the_head() -> None:
    # Past the classified window: no boundary in the head means the whole mail is new text.
    log = "\n".join(f"log line {i}" for i in range(40_000))
    assert reply_text(log) == log
    # A boundary inside the window still cuts the long quoted history below it.
    quoted = "Thanks, fixed.\n\nOn Mon, 5 Jan 2015 at 10:00, Ann <ann@example.test> wrote:\n" + "\n".join(
        f"> quoted {i}" for i in range(40_000)
    )
    assert reply_text(quoted) == "Thanks, fixed."
