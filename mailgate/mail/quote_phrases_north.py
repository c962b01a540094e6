"""Phrase tables for the Nordic and central/eastern European languages: fi, sv, da, no, pl, hu, cs, ru, uk."""

from __future__ import annotations

from mailgate.mail.quote_table import DEVICE, PLATFORM, Phrases

# Danish and Norwegian Outlook and Apple Mail share their words ("Fra:/Sendt:/Til:/Emne:",
# "Sendt fra min iPhone"); they stay two tables so each reads as its users write.
_DANO_HEADERS = {
    "from": ("fra",),
    "date": ("sendt", "dato"),
    "to": ("til", "cc", "kopi"),
    "subject": ("emne",),
}

TABLES: dict[str, Phrases] = {
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
        separators=("alkuperäinen viesti", "välitetty viesti", "välitetty viesti alkaa", "edelleenlähetetty viesti"),
        mobile=(
            r"lähetetty (?:iphonesta|ipadista|android-laitteesta|mobiililaitteesta|outlookista)",
            r"lähetetty [\w\-]{1,30}(?:puhelimesta|sovelluksesta|laitteesta)",
            r"lähetetty windows 10:n sähköposti-sovelluksesta",
            r"hanki outlook (?:for ios|for android|ios:lle|androidille)",
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
        mobile=(
            rf"skickat från (?:min |mitt )?{DEVICE}",
            rf"(?:skaffa|hämta) outlook för {PLATFORM}",
        ),
    ),
    "da": Phrases(
        wrote=("skrev",),
        wrote_inside=("skrev",),
        leads=("den",),
        headers=_DANO_HEADERS,
        separators=("oprindelig meddelelse", "videresendt meddelelse", "videresendt besked", "start på videresendt besked"),
        mobile=(
            rf"sendt fra (?:min |mit )?{DEVICE}",
            rf"hent outlook til {PLATFORM}",
        ),
    ),
    "no": Phrases(
        wrote=("skrev",),
        wrote_inside=("skrev",),
        leads=("den",),
        headers=_DANO_HEADERS,
        separators=("opprinnelig melding", "videresendt melding", "start på videresendt melding"),
        mobile=(
            rf"sendt fra (?:min |mitt )?{DEVICE}",
            rf"(?:hent|få) outlook for {PLATFORM}",
        ),
    ),
    "pl": Phrases(
        wrote=("napisał(a)", "napisał", "napisała", "pisze", "napisał/a"),
        wrote_inside=("napisał", "napisała", "napisał(a)", "napisana przez"),
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
            rf"wysłane z (?:mojego )?{DEVICE}",
            rf"wysłano z (?:mojego )?{DEVICE}",
            r"wysłane z aplikacji poczta dla systemu windows(?: 10| 11)?",
            rf"pobierz (?:aplikację )?outlook dla (?:systemu )?{PLATFORM}",
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
        separators=("eredeti üzenet", "továbbított üzenet", "továbbított levél", "továbbított levél kezdete"),
        mobile=(
            r"(?:az )?iphone-?(?:omról|ról) küldve",
            rf"{DEVICE}-?(?:ról|ről) küldve",
            r"küldve (?:az )?(?:iphone|ipad|android)-?(?:omról|ról|ről)",
            rf"outlook letöltése {PLATFORM} rendszerre",
        ),
    ),
    "cs": Phrases(
        wrote=("napsal(a)", "napsal", "napsala"),
        wrote_inside=("napsal", "napsala"),
        headers={
            "from": ("od",),
            "date": ("odesláno", "datum"),
            "to": ("komu", "kopie"),
            "subject": ("předmět",),
        },
        separators=("původní zpráva", "přeposlaná zpráva", "začátek přeposlané zprávy"),
        mobile=(rf"odesláno z (?:mého )?{DEVICE}",),
    ),
    "ru": Phrases(
        wrote=("написал", "написала", "написал(а)", "пишет"),
        headers={
            "from": ("от",),
            "date": ("отправлено", "дата"),
            "to": ("кому", "копия"),
            "subject": ("тема",),
        },
        separators=("исходное сообщение", "пересылаемое сообщение", "пересланное сообщение", "перенаправленное сообщение", "начало переадресованного сообщения"),
        mobile=(rf"отправлено (?:с|из) (?:моего )?{DEVICE}",),
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
        mobile=(rf"надіслано з (?:мого )?{DEVICE}",),
    ),
}
