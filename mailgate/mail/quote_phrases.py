"""Every language's phrase table in one place, and the markers no language owns (dates, links, HTML containers)."""

from __future__ import annotations

from mailgate.mail import quote_phrases_asia, quote_phrases_north, quote_phrases_west
from mailgate.mail.quote_table import Phrases

__all__ = ["PHRASES", "Phrases", "UNSPACED"]

# Adding a language = adding one Phrases entry to a table module (conventions in quote_table).
# quote_lines compiles every table into one matcher at import, so a phrase from any language
# works in every mail (people switch client languages, and a Finnish user of an English Outlook
# writes "Lähettäjä:" nowhere).
PHRASES: dict[str, Phrases] = {**quote_phrases_west.TABLES, **quote_phrases_north.TABLES, **quote_phrases_asia.TABLES}
UNSPACED = quote_phrases_asia.UNSPACED

# Gmail's older attribution is a bare date line: "2016-03-03 17:21 GMT+01:00 Ann <a@x>:".
GMAIL_DATE_ATTRIBUTION = r"\d{4}-\d{2}-\d{2} \d{1,2}:\d{2} GMT[+-]\d{1,2}:\d{2}\b"

# Gmail in Chinese and Japanese locales (and older clients elsewhere) open the quote with a date
# and the sender and no verb at all: "2013/7/20 Ann Example <ann@example.com>", then "> …".
DATE_FIRST = r"(?:\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2}|\d{4}年 ?\d{1,2}月 ?\d{1,2}日|\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4})"
# A line with a time that ends with the sender's address and a colon, whatever the words around
# them: "Среда, 5 июня 2013, 13:20 +04:00 от Ann <ann@example.com>:" (mail.ru), Yandex's
# "05.06.2013, 13:20, "Ann" <ann@example.com>:".
DATED_SENDER = r"[^<>@\n]{0,160}\b\d{1,2}:\d{2}\b[^<>@\n]{0,100}<[^\s<>@:]{1,64}@[^\s<>@]{1,255}>\s?:"

# A sign-off right above the quote, like "-Abhishek Kona" (github/email_reply_parser email_1_1):
# email_reply_parser reads a line that starts with "-" and a word as a signature. An em dash
# ("—Ryan", which Apple's smart punctuation makes of a typed "--") is a personal sign-off the
# writer put in the reply, and stays - as does "Thanks, Ann".
DASH_SIGNOFF = r"-[^\W\d_][\w.']*(?: [^\W\d_][\w.']*){0,2}"

# A link an app puts after its sign-off: "Sent from Outlook Mobile<https://aka.ms/ghei36>",
# "Get Outlook for iOS [https://aka.ms/o0ukef]", "Sent with Sparrow (http://www.sparrowmailapp.com)".
TRAILING_LINK = r"\s*(?:<[^<>\s]{1,300}>|\(\s*https?://[^()\s]{1,300}\s*\)|\[[^\[\]\s]{1,300}\]|https?://\S{1,300})$"

# Characters that make a line look non-empty but carry nothing: zero-width spaces and Gmail's
# tracking mark "ᐧ" (U+1427) that Streak/Mixmax add (email_reply_trimmer delimiters.txt).
NOISE_CHARS = "\u1427\u200b\u200c\u200d\u2060\ufeff"

# HTML quote containers, as XPath 1.0 (lxml without cssselect).
# Removed with their content only: a quote or signature block inside the reply.
HTML_REMOVE = (
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]",  # Gmail
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_signature ')]",
    "//blockquote[@type='cite']",  # Apple Mail, Thunderbird
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')]",  # Thunderbird
    "//*[contains(@class, 'yahoo_quoted')]",  # Yahoo
    "//*[starts-with(@id, 'yahoo_quoted')]",
    "//*[starts-with(@id, 'AOLMsgPart')]",  # AOL
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' protonmail_quote ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' zmail_extra ')]",  # Zoho
)
# Removed with everything that follows in document order: Outlook and webmails put no
# container around the quote, only a marker where it begins.
HTML_CUT_FROM = (
    "//*[@id='divRplyFwdMsg']",  # Outlook web / mobile header block
    "//*[@id='appendonsend']",  # Outlook web: the draft ends here
    "//*[@id='mail-editor-reference-message-container']",  # Outlook for iOS/Android
    "//*[@id='OLK_SRC_BODY_SECTION']",  # Outlook for Mac
    "//hr[@id='stopSpelling']",  # Hotmail / Windows Live
    "//hr[@id='zwchr']",  # Zimbra
    "//*[contains(@class, 'OutlookMessageHeader')]",
    # Outlook desktop: the header block sits in a div with only a top border.
    "//div[starts-with(translate(@style, ' ', ''), 'border:none;border-top:solid')]",
)
