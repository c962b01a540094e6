"""Reading replies the way people write them: app sign-offs, attributions, inline answers, forwards.

Every mail here is written for this test in the shape the named client sends; none is a corpus file.
"""

from __future__ import annotations

import pytest

from mailgate.mail.parse import parse
from mailgate.mail.quotes import read, reply_text

ANSWER = "Yes, Tuesday at ten works for us.\nWe will bring the old router."
HISTORY = "> Would Tuesday at ten suit you for the visit?\n>\n> Best regards,\n> Help Desk"


# --- mobile and app sign-offs ---------------------------------------------------------------

SIGNOFFS = [
    ("en-ipad", "Sent from my iPad"),
    ("en-iphone", "Sent from my iPhone"),
    ("en-outlook-mobile-link", "Sent from Outlook Mobile<https://aka.ms/blhgte>"),
    ("en-outlook-ios-link", "Get Outlook for iOS<https://aka.ms/o0ukef>"),
    ("en-outlook-android-bracket", "Get Outlook for Android [https://aka.ms/ghei36]"),
    ("en-yahoo", "Sent from Yahoo Mail on Android"),
    ("en-samsung", "Sent from my Samsung Galaxy smartphone."),
    ("da-ipad", "Sendt fra min iPad"),
    ("no-iphone", "Sendt fra min iPhone"),
    ("da-outlook", "Hent Outlook til iOS<https://aka.ms/o0ukef>"),
    ("sv-iphone", "Skickat från min iPhone"),
    ("fi-iphone", "Lähetetty iPhonesta"),
    ("pl-iphone", "Wysłane z iPhone'a"),
    ("pl-iphone-curly", "Wysłane z mojego iPhone’a"),
    ("de-iphone", "Von meinem iPhone gesendet"),
    ("de-galaxy", "Von meinem Samsung Galaxy Smartphone gesendet."),
    ("de-webde", "Gesendet mit der WEB.DE Mail App"),
    ("fr-iphone", "Envoyé de mon iPhone"),
    ("fr-outlook", "Obtenir Outlook pour Android<https://aka.ms/ghei36>"),
    ("nl-iphone", "Verzonden vanaf mijn iPhone"),
    ("es-iphone", "Enviado desde mi iPhone"),
    ("it-iphone", "Inviato da iPhone"),
    ("pt-iphone", "Enviado do meu iPhone"),
    ("hu-iphone", "iPhone-ról küldve"),
    ("cs-iphone", "Odesláno z iPhonu"),
    ("ja-iphone", "iPhoneから送信"),
    ("zh-iphone", "发自我的iPhone"),
]


@pytest.mark.parametrize("signoff", [s for _, s in SIGNOFFS], ids=[i for i, _ in SIGNOFFS])
def test_app_signoff_is_cut_and_reported(signoff: str) -> None:
    got = read(f"{ANSWER}\n\n{signoff}\n")
    assert got.text == ANSWER
    assert got.signature == signoff
    assert got.style == "none"


@pytest.mark.parametrize("signoff", [s for _, s in SIGNOFFS[:12]], ids=[i for i, _ in SIGNOFFS[:12]])
def test_app_signoff_above_the_quote(signoff: str) -> None:
    text = f"{ANSWER}\n\n{signoff}\n\nOn 3 May 2024, at 10:00, Help Desk <help@example.test> wrote:\n\n{HISTORY}\n"
    got = read(text)
    assert (got.text, got.signature, got.style) == (ANSWER, signoff, "top")


def test_outlook_mobile_link_on_its_own_line() -> None:
    text = f"{ANSWER}\n\nSent from Outlook Mobile\n<https://aka.ms/blhgte>\n"
    assert reply_text(text) == ANSWER


@pytest.mark.parametrize("signoff", ["—Ryan", "– Ryan", "Thanks, Ann", "Cheers,\nMarta", "Pozdrawiam,\nJan"])
def test_personal_signoff_stays_with_the_reply(signoff: str) -> None:
    text = f"{ANSWER}\n\n{signoff}\n\nOn Fri, May 3, 2024 at 10:00 AM Help Desk <help@example.test> wrote:\n{HISTORY}\n"
    got = read(text)
    assert got.text == f"{ANSWER}\n\n{signoff}"
    assert got.signature is None


@pytest.mark.parametrize(
    "text",
    [
        "Sent from my desk, as I said on the phone.",
        "Sendt fra min kollega i går, så den burde være kommet.",
        "Envoyé de mon bureau hier soir, avec la facture et le devis.",
    ],
)
def test_sentences_that_start_like_a_signoff_stay(text: str) -> None:
    assert reply_text(f"{text}\n") == text


def test_dash_signature_block_is_reported() -> None:
    got = read(f"{ANSWER}\n\n-- \nMarta Example\nExample Ltd, +358 40 000 0000\n")
    assert got.text == ANSWER
    assert got.signature == "--\nMarta Example\nExample Ltd, +358 40 000 0000"


# --- attributions other than "On … wrote:" ----------------------------------------------------

ATTRIBUTIONS = [
    ("date-first-slash", "2013/7/20 Help Desk <help@example.test>"),
    ("date-first-dash-time", "2024-05-03 10:00 Help Desk <help@example.test>"),
    ("date-first-dotted-colon", "03.05.2024 10:00, Help Desk <help@example.test>:"),
    ("date-first-wrapped", "2013/7/20 Help Desk <\nhelp@example.test>"),
    ("ja-gmail", "2013年7月20日 15:22 Help Desk <help@example.test>:"),
    ("ja-apple", "2013/07/20 15:22、Help Desk <help@example.test> のメッセージ:"),
    ("zh-gmail", "Help Desk <help@example.test> 于2013年7月20日周六 下午3:22写道："),
    ("fr", "Le ven. 3 mai 2024 à 10:00, Help Desk <help@example.test> a écrit :"),
    ("fr-apple", "Le 3 mai 2024 à 10:00, Help Desk <help@example.test> a écrit :"),
    ("de", "Am Fr., 3. Mai 2024 um 10:00 Uhr schrieb Help Desk <help@example.test>:"),
    ("de-apple", "Am 03.05.2024 um 10:00 schrieb Help Desk <help@example.test>:"),
    ("es", "El vie, 3 may 2024 a las 10:00, Help Desk (<help@example.test>) escribió:"),
    ("it", "Il giorno ven 3 mag 2024 alle ore 10:00 Help Desk <help@example.test> ha scritto:"),
    ("da", "Den 3. maj 2024 kl. 10.00 skrev Help Desk <help@example.test>:"),
    ("no-gmail", "fre. 3. mai 2024 kl. 10:00 skrev Help Desk <help@example.test>:"),
    ("cs", "Dne pá 3. 5. 2024 10:00 uživatel Help Desk <help@example.test> napsal:"),
    ("ru-mailru", "Пятница, 3 мая 2024, 10:00 +03:00 от Help Desk <help@example.test>:"),
    ("yandex", '03.05.2024, 10:00, "Help Desk" <help@example.test>:'),
    ("pl-apple", "Wiadomość napisana przez Help Desk <help@example.test> w dniu 03.05.2024, o godz. 10:00:"),
    ("cs-apple", "3. 5. 2024 v 10:00, Help Desk <help@example.test>:"),
    ("ru-thunderbird", "03.05.2024 10:00, Help Desk пишет:"),
    ("hu-thunderbird", "2024. 05. 03. 10:00 keltezéssel, Help Desk írta:"),
    ("sv-thunderbird", "Den 2024-05-03 kl. 10:00, skrev Help Desk:"),
    ("zh-thunderbird", "在 2024/5/3 10:00, Help Desk 写道:"),
    ("ko-gmail", "2024년 5월 3일 (금) 오전 10:00, Help Desk <help@example.test>님이 작성:"),
]


@pytest.mark.parametrize("line", [a for _, a in ATTRIBUTIONS], ids=[i for i, _ in ATTRIBUTIONS])
def test_attribution_above_the_quote(line: str) -> None:
    got = read(f"{ANSWER}\n\n{line}\n\n{HISTORY}\n")
    assert (got.text, got.style) == (ANSWER, "top")


@pytest.mark.parametrize(
    "text",
    [
        "The invoice of 2024/5/3 was sent to billing@example.test twice.\nPlease check.",
        "Please book 10:00 with these people, Bob <bob@example.com>:\nAnn\nEve",
        "2024-05-03: the router restarted again\n> this is what the log said\nand then it stopped.",
    ],
)
def test_dated_lines_in_the_answer_are_not_attributions(text: str) -> None:
    assert reply_text(text).startswith(text.split("\n")[0])


HEADER_BLOCKS = [
    ("de", "Von: Help Desk <help@example.test>\nGesendet: Freitag, 3. Mai 2024 10:00\nAn: Anna <anna@example.com>\nBetreff: Besuch"),
    ("fr", "De : Help Desk <help@example.test>\nEnvoyé : vendredi 3 mai 2024 10:00\nÀ : Anne <anne@example.com>\nObjet : Visite"),
    ("fr-nbsp", "De\u00a0: Help Desk\nEnvoyé\u00a0: vendredi 3 mai 2024 10:00\nÀ\u00a0: Anne\nObjet\u00a0: Visite"),
    ("sv", "Från: Help Desk <help@example.test>\nSkickat: den 3 maj 2024 10:00\nTill: Anna <anna@example.com>\nÄmne: Besök"),
    ("fi", "Lähettäjä: Help Desk <help@example.test>\nLähetetty: perjantai 3. toukokuuta 2024 10.00\nVastaanottaja: Anna\nAihe: Käynti"),
    ("pl", "Od: Help Desk <help@example.test>\nWysłano: piątek, 3 maja 2024 10:00\nDo: Anna <anna@example.com>\nTemat: Wizyta"),
    ("hu", "Feladó: Help Desk <help@example.test>\nElküldve: 2024. május 3. 10:00\nCímzett: Anna\nTárgy: Látogatás"),
    ("da", "Fra: Help Desk <help@example.test>\nSendt: 3. maj 2024 10:00\nTil: Anna <anna@example.com>\nEmne: Besøg"),
    ("bold", "*From:* Help Desk <help@example.test>\n*Sent:* Friday, May 3, 2024 10:00 AM\n*To:* Ann\n*Subject:* Visit"),
    ("zh", "发件人：Help Desk <help@example.test>\n发送时间：2024年5月3日 10:00\n收件人：Anna\n主题：拜访"),
]


@pytest.mark.parametrize("block", [b for _, b in HEADER_BLOCKS], ids=[i for i, _ in HEADER_BLOCKS])
def test_outlook_header_block(block: str) -> None:
    # Outlook quotes without ">": everything under its header block is the answered mail.
    text = f"{ANSWER}\n\n________________________________\n{block}\n\nWould Tuesday at ten suit you?\n"
    got = read(text)
    assert (got.text, got.style) == (ANSWER, "top")


def test_bar_quote_markers() -> None:
    text = f"{ANSWER}\n\nHelp Desk wrote:\n| Would Tuesday at ten suit you?\n|\n| Help Desk\n"
    assert reply_text(text) == ANSWER


def test_markdown_table_is_not_a_quote() -> None:
    text = "Here are the numbers:\n\n| month | calls |\n| May | 12 |\n\nThanks"
    assert reply_text(text) == text


# --- inline answers --------------------------------------------------------------------------

INLINE = (
    "On Fri, May 3, 2024 at 10:00 AM Help Desk <help@example.test> wrote:\n"
    "> What is your order number?\n\n"
    "A-12345\n\n"
    "> Which colour did you order?\n\n"
    "Blue, the large one.\n\n"
    "Thanks, Ann\n"
)


def test_inline_answers_keep_their_questions() -> None:
    got = read(INLINE)
    assert got.text == (
        "> What is your order number?\n\nA-12345\n\n> Which colour did you order?\n\nBlue, the large one.\n\nThanks, Ann"
    )
    assert got.style == "inline"


def test_inline_answers_cut_the_trailing_history() -> None:
    text = (
        "Hi, answers below.\n\n"
        "On Fri, May 3, 2024 at 10:00 AM Help Desk <help@example.test> wrote:\n"
        "> What is your order number?\n"
        "A-12345\n"
        "> Which colour did you order?\n"
        "Blue.\n"
        ">\n"
        "> Kind regards,\n"
        "> Help Desk\n"
        ">\n"
        ">> On Thu, May 2, 2024 Ann <ann@example.com> wrote:\n"
        ">> My order has not arrived.\n"
    )
    assert reply_text(text) == (
        "Hi, answers below.\n\n> What is your order number?\nA-12345\n> Which colour did you order?\nBlue."
    )


def test_signature_under_an_inline_answer_is_reported() -> None:
    text = INLINE.replace("Thanks, Ann\n", "-- \nAnn Example, Example Ltd\n\n> Kind regards,\n> Help Desk\n")
    got = read(text)
    assert got.text.endswith("Blue, the large one.")
    assert (got.signature, got.style) == ("--\nAnn Example, Example Ltd", "inline")


def test_inline_answers_with_bar_quotes() -> None:
    text = "| What is your order number?\nA-12345\n| Which colour?\nBlue.\n"
    got = read(text)
    assert got.text == text.strip()
    assert got.style == "inline"


def test_bottom_posted_answer_cuts_the_leading_quote() -> None:
    text = f"On Fri, May 3, 2024 at 10:00 AM Help Desk <help@example.test> wrote:\n{HISTORY}\n\n{ANSWER}\n"
    got = read(text)
    assert (got.text, got.style) == (ANSWER, "bottom")


def test_inline_answer_in_html_keeps_the_quoted_questions() -> None:
    # Apple Mail answers between <blockquote type="cite"> parts; its text part often does not mark
    # the quote, and cutting the blockquotes would leave answers without their questions.
    html = (
        "<div>On 3 May 2024, at 10:00, Help Desk &lt;help@example.test&gt; wrote:</div>"
        '<blockquote type="cite"><div>What is your order number?</div></blockquote>'
        "<div>A-12345</div>"
        '<blockquote type="cite"><div>Which colour did you order?</div></blockquote>'
        "<div>Blue, the large one.</div>"
    )
    text = (
        "On 3 May 2024, at 10:00, Help Desk <help@example.test> wrote:\n\nWhat is your order number?\n\n"
        "A-12345\n\nWhich colour did you order?\n\nBlue, the large one.\n"
    )
    got = read(text, html)
    assert got.style == "inline"
    assert "> What is your order number?" in got.text
    assert got.text.endswith("Blue, the large one.")


def test_inline_text_part_wins_over_html_containers() -> None:
    html = (
        '<div class="gmail_quote"><div class="gmail_attr">On Fri, May 3, 2024 Help Desk wrote:</div>'
        '<blockquote class="gmail_quote">What is your order number?</blockquote></div><div>A-12345</div>'
    )
    text = "On Fri, May 3, 2024 Help Desk <help@example.test> wrote:\n> What is your order number?\n\nA-12345\n\n> Colour?\n\nBlue\n"
    assert reply_text(text, html) == "> What is your order number?\n\nA-12345\n\n> Colour?\n\nBlue"


def test_plain_blockquote_under_the_answer_is_history() -> None:
    # A webmail that marks its quote only with <blockquote>, in a language without a phrase table:
    # the text made from the HTML carries no ">" to go by.
    html = (
        "<div>Hei, laite toimii taas.</div><div>Terveisin Matti</div>"
        "<blockquote><div>Onko laite jo korjattu?</div><div>Help Desk</div></blockquote>"
    )
    text = "Hei, laite toimii taas.\nTerveisin Matti\n\nOnko laite jo korjattu?\nHelp Desk\n"
    got = read(text, html)
    assert (got.text, got.style) == ("Hei, laite toimii taas.\nTerveisin Matti", "top")


# --- embedded and forwarded mail -------------------------------------------------------------

FORWARDS = [
    ("gmail", "---------- Forwarded message ---------\nFrom: Shop <shop@example.com>\nDate: Fri, May 3, 2024 at 10:00 AM\n"
              "Subject: Your order\nTo: <ann@example.com>"),
    ("apple", "Begin forwarded message:\n\nFrom: Shop <shop@example.com>\nSubject: Your order\n"
              "Date: 3 May 2024 at 10:00:00 CEST\nTo: ann@example.com"),
    ("de", "---------- Weitergeleitete Nachricht ---------\nVon: Shop <shop@example.com>\n"
           "Date: Fr., 3. Mai 2024 um 10:00 Uhr\nSubject: Ihre Bestellung\nTo: <anna@example.com>"),
    ("fr", "-------- Message transféré --------\nSujet : Votre commande\nDate : Fri, 3 May 2024 10:00:00 +0200\n"
           "De : Boutique <shop@example.com>\nPour : anne@example.com"),
    ("da", "Start på videresendt besked:\n\nFra: Butik <shop@example.com>\nEmne: Din ordre\nDato: 3. maj 2024 kl. 10.00.00 CEST\n"
           "Til: anna@example.com"),
    ("no", "---------- Videresendt melding ---------\nFra: Butikk <shop@example.com>\nDato: fre. 3. mai 2024 kl. 10:00\n"
           "Emne: Din ordre\nTil: <anna@example.com>"),
    ("fi-apple", "Välitetty viesti alkaa:\n\nLähettäjä: Kauppa <shop@example.com>\nAihe: Tilaus\nPäivämäärä: 3.5.2024 klo 10.00\n"
                 "Vastaanottaja: anna@example.com"),
    ("hu-apple", "Továbbított levél kezdete:\n\nFeladó: Bolt <shop@example.com>\nTárgy: Rendelés\nDátum: 2024. május 3. 10:00\n"
                 "Címzett: anna@example.com"),
    ("zh-qq", "以下是转发的邮件：\n\n发件人：商店 <shop@example.com>\n主题：订单\n收件人：anna@example.com"),
    ("outlook", "-----Original Message-----\nFrom: Shop [mailto:shop@example.com]\nSent: Friday, May 3, 2024 10:00 AM\n"
                "To: Ann\nSubject: Your order"),
]


@pytest.mark.parametrize("forward", [f for _, f in FORWARDS], ids=[i for i, _ in FORWARDS])
def test_forwarded_mail_below_a_comment_is_cut(forward: str) -> None:
    text = f"Please look at the mail below, the order never came.\n\n{forward}\n\nYour order has shipped.\n"
    got = read(text)
    assert (got.text, got.style) == ("Please look at the mail below, the order never came.", "top")


def test_a_forward_without_comment_keeps_the_forwarded_text() -> None:
    text = f"{FORWARDS[0][1]}\n\nYour order has shipped.\n"
    assert reply_text(text) == "Your order has shipped."


def test_plain_mail_has_no_quote_style() -> None:
    got = read("Hello,\n\nthe printer is on fire.\n\nAlice\n")
    assert (got.text, got.signature, got.style) == ("Hello,\n\nthe printer is on fire.\n\nAlice", None, "none")


def test_all_quote_mail_is_kept_whole_with_nothing_reported() -> None:
    got = read(HISTORY)
    assert (got.text, got.style) == (HISTORY, "none")


# --- through the parser: the HTML as sent, the fields an operator sees -----------------------


def _html_mail(html: str) -> bytes:
    head = (
        "From: Ann <ann@example.com>\r\nTo: help@example.test\r\nSubject: Re: Visit\r\n"
        "Message-ID: <reply-1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    )
    return (head + html).encode()


def test_outlook_mobile_html_reply() -> None:
    html = (
        '<html><body><div dir="ltr">Thanks, got it.</div><div dir="ltr"><br></div>'
        '<div id="ms-outlook-mobile-signature"><div dir="ltr">Get <a href="https://aka.ms/o0ukef">Outlook for iOS</a>'
        '</div></div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr">'
        "<b>From:</b> Help Desk &lt;help@example.test&gt;<br><b>Sent:</b> Friday, May 3, 2024 10:00:00 AM<br>"
        "<b>To:</b> Ann<br><b>Subject:</b> Visit<div>&nbsp;</div></div><div>Would Tuesday suit you?</div></body></html>"
    )
    mail = parse(_html_mail(html))
    assert (mail.reply_text, mail.quote_style) == ("Thanks, got it.", "top")
    assert mail.signature is not None and mail.signature.startswith("Get Outlook for iOS")


def test_gmail_quote_container_is_read_before_sanitizing() -> None:
    # Sanitizing drops the class attribute; the attribution here is in a language without a table.
    html = (
        '<div dir="ltr">ขอบคุณครับ ใช้งานได้แล้ว</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "เมื่อ ศ. 3 พ.ค. 2567 Help Desk เขียนว่า</div><div>ใช้งานได้หรือยังครับ</div></div>"
    )
    mail = parse(_html_mail(html))
    assert mail.reply_text == "ขอบคุณครับ ใช้งานได้แล้ว"
    assert mail.html is not None and "gmail_quote" not in mail.html
