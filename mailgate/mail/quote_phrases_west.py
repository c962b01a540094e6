"""Phrase tables for English and the western European languages: de, fr, nl, es, it, pt."""

from __future__ import annotations

from mailgate.mail.quote_table import DEVICE, PLATFORM, Phrases

TABLES: dict[str, Phrases] = {
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
            rf"sent from my {DEVICE}",
            # Outlook Mobile signs "Sent from Outlook Mobile<https://aka.ms/…>" (its link is set aside).
            rf"sent from (?:outlook|yahoo mail|aol mail|mail|gmail|proton ?mail|spark|bluemail|edison mail)"
            rf"(?: mobile)?(?: (?:for|on) {PLATFORM})?",
            rf"get outlook for {PLATFORM}",
            r"sent (?:via|from) (?:the )?(?:samsung|galaxy|huawei|xiaomi|blackberry)[\w ,&.\-]{0,60}",
            rf"sent (?:using|with) [\w ]{{1,40}} for {PLATFORM}",
            rf"sent with (?:spark|airmail|blackberry work|proton mail)(?: for {PLATFORM})?",
            rf"sent from the all-new aol app for {PLATFORM}",
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
            rf"gesendet (?:von|mit) (?:meinem |der )?{DEVICE}",
            r"diese nachricht wurde von meinem [\w\- ]{1,60} gesendet",
            rf"outlook für {PLATFORM} (?:beziehen|herunterladen)",
        ),
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
        mobile=(
            rf"envoyé (?:de|depuis|à partir de) (?:mon )?{DEVICE}",
            rf"(?:obtenir|télécharger) outlook pour {PLATFORM}",
        ),
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
        mobile=(
            rf"(?:verzonden|verstuurd) (?:vanaf|met|van|via) (?:mijn )?{DEVICE}",
            rf"outlook voor {PLATFORM} (?:downloaden|ophalen)",
        ),
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
        mobile=(
            rf"enviado desde (?:mi )?{DEVICE}",
            rf"obt(?:ener|én) outlook para {PLATFORM}",
        ),
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
        mobile=(
            rf"inviato da(?:l mio)? {DEVICE}",
            rf"scarica outlook per {PLATFORM}",
        ),
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
        separators=(
            "mensagem original",
            "mensagem encaminhada",
            "início da mensagem reencaminhada",
            "início da mensagem encaminhada",
        ),
        mobile=(
            rf"enviado do (?:meu )?{DEVICE}",
            rf"obter o outlook para {PLATFORM}",
        ),
    ),
}
