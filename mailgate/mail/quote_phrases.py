"""Per-language phrase tables that mark where quoted history and signatures begin in a reply."""

from __future__ import annotations

from dataclasses import dataclass, field

# Adding a language = adding one Phrases entry to PHRASES. quotes.py compiles every table into
# one matcher at import, so a phrase from any language works in every mail (people switch
# client languages, and a Finnish user of an English Outlook writes "Lähettäjä:" nowhere).
#
# Conventions, checked by tests/unit/test_quotes.py:
# - strings are compared casefolded with whitespace collapsed and " :" read as ":" (French);
# - `wrote`: an attribution line ENDS with one of these, followed by ":" ("On …, Ann wrote:");
# - `wrote_inside`: an attribution line CONTAINS one of these and ends with ":" (German
#   "Ann <a@x> schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:", Swedish "Den … skrev Ann <a@x>:");
# - `leads`: first words of an attribution ("On", "Am", "W dniu"); evidence besides a date or
#   an address that a short "… wrote:" line is an attribution and not prose;
# - `headers`: forwarded/replied header block keys by role; a block needs a "from" key and one
#   more role (Outlook: "From:/Sent:/To:/Subject:");
# - `separators`: the words of "-----Original Message-----" lines, without the dashes;
# - `mobile`: regular expressions that must match a whole line ("Sent from my iPhone"); keep
#   them bounded (no nested quantifiers) - they run on every short line of every mail.


@dataclass(frozen=True, slots=True)
class Phrases:
    """Where quoted history and signatures start, in one language."""

    wrote: tuple[str, ...] = ()
    wrote_inside: tuple[str, ...] = ()
    leads: tuple[str, ...] = ()
    headers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    separators: tuple[str, ...] = ()
    mobile: tuple[str, ...] = ()


# One or more words of a device or app name: "iPhone", "Verizon Wireless BlackBerry".
_DEVICE = r"[\w'’.\-]+(?: [\w'’.\-]+){0,3}"

PHRASES: dict[str, Phrases] = {
    "en": Phrases(
        wrote=("wrote", "writes"),
        leads=("on",),
        headers={
            "from": ("from",),
            "date": ("sent", "date"),
            "to": ("to", "cc", "bcc"),
            "subject": ("subject",),
            "other": ("reply-to",),
        },
        separators=(
            "original message",
            "forwarded message",
            "begin forwarded message",
            "forwarded by",
            "reply message",
        ),
        mobile=(
            rf"sent from my {_DEVICE}",
            r"sent from (?:outlook|yahoo mail|aol mail|mail|mail for windows(?: 10| 11)?)"
            r"(?: (?:for|on) (?:ios|iphone|ipad|android|windows))?",
            r"get outlook for (?:ios|android)",
            r"sent (?:via|from) (?:the )?(?:samsung|galaxy|huawei|xiaomi|blackberry)[\w ,&.\-]{0,60}",
            r"sent using [\w ]{1,40} for (?:ios|android)",
        ),
    ),
    "fi": Phrases(
        wrote=("kirjoitti",),
        wrote_inside=("kirjoitti",),
        leads=("ma", "ti", "ke", "to", "pe", "la", "su"),
        headers={
            "from": ("lähettäjä",),
            "date": ("lähetetty", "päivämäärä"),
            "to": ("vastaanottaja", "kopio"),
            "subject": ("aihe",),
        },
        separators=("alkuperäinen viesti", "välitetty viesti", "edelleenlähetetty viesti"),
        mobile=(
            r"lähetetty (?:iphonesta|ipadista|android-laitteesta|mobiililaitteesta)",
            r"lähetetty [\w\-]{1,30}(?:puhelimesta|sovelluksesta|laitteesta)",
            r"lähetetty windows 10:n sähköposti-sovelluksesta",
        ),
    ),
    "pl": Phrases(
        wrote=("napisał(a)", "napisał", "napisała", "pisze", "napisał/a"),
        wrote_inside=("napisał", "napisała", "napisał(a)"),
        leads=("w dniu", "dnia", "pon.", "wt.", "śr.", "czw.", "pt.", "sob.", "niedz."),
        headers={
            "from": ("od",),
            "date": ("wysłano", "wysłane", "data"),
            "to": ("do", "dw", "kopia"),
            "subject": ("temat",),
        },
        separators=(
            "oryginalna wiadomość",
            "wiadomość oryginalna",
            "przekazana wiadomość",
            "wiadomość przekazana dalej",
            "początek przekazywanej wiadomości",
        ),
        mobile=(
            rf"wysłane z (?:mojego )?{_DEVICE}",
            rf"wysłano z (?:mojego )?{_DEVICE}",
        ),
    ),
    "hu": Phrases(
        wrote=("írta", "ezt írta"),
        wrote_inside=("ezt írta", "írta"),
        headers={
            "from": ("feladó",),
            "date": ("elküldve", "küldve", "dátum"),
            "to": ("címzett", "másolat"),
            "subject": ("tárgy",),
        },
        separators=("eredeti üzenet", "továbbított üzenet", "továbbított levél"),
        mobile=(
            r"(?:az )?iphone-?(?:omról|ról) küldve",
            rf"{_DEVICE}-?(?:ról|ről) küldve",
            r"küldve (?:az )?(?:iphone|ipad|android)-?(?:omról|ról|ről)",
        ),
    ),
    "de": Phrases(
        wrote=("schrieb",),
        wrote_inside=("schrieb",),
        leads=("am",),
        headers={
            "from": ("von",),
            "date": ("gesendet", "datum"),
            "to": ("an", "cc", "kopie"),
            "subject": ("betreff",),
        },
        separators=(
            "ursprüngliche nachricht",
            "originalnachricht",
            "weitergeleitete nachricht",
            "anfang der weitergeleiteten nachricht",
        ),
        mobile=(
            r"von meinem [\w\-]{1,30}(?: [\w\-]{1,30}){0,2} gesendet",
            rf"gesendet von (?:meinem )?{_DEVICE}",
            r"diese nachricht wurde von meinem [\w\- ]{1,60} gesendet\.?",
        ),
    ),
    "sv": Phrases(
        wrote=("skrev",),
        wrote_inside=("skrev",),
        leads=("den",),
        headers={
            "from": ("från",),
            "date": ("skickat", "datum"),
            "to": ("till", "kopia"),
            "subject": ("ämne",),
        },
        separators=("ursprungligt meddelande", "originalmeddelande", "vidarebefordrat meddelande"),
        mobile=(rf"skickat från (?:min |mitt )?{_DEVICE}",),
    ),
    "fr": Phrases(
        wrote=("a écrit",),
        leads=("le",),
        headers={
            "from": ("de",),
            "date": ("envoyé", "envoyé le", "date"),
            "to": ("à", "a", "cc"),
            "subject": ("objet",),
        },
        separators=(
            "message d'origine",
            "message original",
            "message transféré",
            "début du message réexpédié",
            "début du message transféré",
        ),
        mobile=(rf"envoyé (?:de|depuis) (?:mon )?{_DEVICE}",),
    ),
    "nl": Phrases(
        wrote=("schreef", "het volgende geschreven"),
        wrote_inside=("schreef",),
        leads=("op",),
        headers={
            "from": ("van",),
            "date": ("verzonden", "datum"),
            "to": ("aan", "cc"),
            "subject": ("onderwerp",),
        },
        separators=("oorspronkelijk bericht", "origineel bericht", "doorgestuurd bericht", "begin doorgestuurd bericht"),
        mobile=(rf"verzonden (?:vanaf|met|van) (?:mijn )?{_DEVICE}",),
    ),
    "es": Phrases(
        wrote=("escribió",),
        leads=("el",),
        headers={
            "from": ("de",),
            "date": ("enviado", "enviado el", "fecha"),
            "to": ("para", "cc"),
            "subject": ("asunto",),
        },
        separators=("mensaje original", "mensaje reenviado", "inicio del mensaje reenviado"),
        mobile=(rf"enviado desde (?:mi )?{_DEVICE}",),
    ),
    "it": Phrases(
        wrote=("ha scritto",),
        leads=("il",),
        headers={
            "from": ("da",),
            "date": ("inviato", "data"),
            "to": ("a", "cc"),
            "subject": ("oggetto",),
            "other": ("risposta",),
        },
        separators=("messaggio originale", "messaggio inoltrato", "inizio messaggio inoltrato"),
        mobile=(rf"inviato da(?:l mio)? {_DEVICE}",),
    ),
    "pt": Phrases(
        wrote=("escreveu",),
        leads=("em",),
        headers={
            "from": ("de",),
            "date": ("enviada", "enviado", "data"),
            "to": ("para", "cc"),
            "subject": ("assunto",),
        },
        separators=("mensagem original", "mensagem encaminhada", "início da mensagem reencaminhada"),
        mobile=(rf"enviado do meu {_DEVICE}",),
    ),
    "ru": Phrases(
        wrote=("написал", "написала", "написал(а)"),
        headers={
            "from": ("от",),
            "date": ("отправлено", "дата"),
            "to": ("кому", "копия"),
            "subject": ("тема",),
        },
        separators=("исходное сообщение", "пересылаемое сообщение", "пересланное сообщение"),
        mobile=(rf"отправлено с (?:моего )?{_DEVICE}",),
    ),
    "uk": Phrases(
        wrote=("пише", "написав", "написала"),
        headers={
            "from": ("від",),
            "date": ("надіслано", "дата"),
            "to": ("кому",),
            "subject": ("тема",),
        },
        separators=("оригінальне повідомлення", "переслане повідомлення"),
    ),
}

# Gmail's older attribution is a bare date line: "2016-03-03 17:21 GMT+01:00 Ann <a@x>:".
GMAIL_DATE_ATTRIBUTION = r"\d{4}-\d{2}-\d{2} \d{1,2}:\d{2} GMT[+-]\d{1,2}:\d{2}\b"

# A sign-off right above the quote, like "-Abhishek Kona" (github/email_reply_parser email_1_1).
DASH_SIGNOFF = r"[-–—][^\W\d_][\w.']*(?: [^\W\d_][\w.']*){0,2}"

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
