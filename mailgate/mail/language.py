"""A cheap guess of a message's language (en, fi, pl, hu, de, sv) from stopwords and letters."""

from __future__ import annotations

import re

# Short, frequent function words that rarely occur in the other five languages. Words shared by
# two of them ("in", "die"/"de", "on", "en", "och") are left out or kept only where they are
# far more frequent in one, so a single hit does not swing the guess.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        ["the", "and", "is", "are", "was", "were", "you", "your", "have", "has", "had", "not", "this", "that", "with", "for", "from", "please", "thanks", "thank", "would", "could", "should", "will", "can", "what", "which", "there", "their", "they", "our", "we", "it", "of", "to", "hello", "hi", "dear", "regards", "my", "me", "be", "been", "do", "does", "did", "an", "or", "if", "but", "about", "when"]
    ),
    "fi": frozenset(
        ["ja", "on", "ei", "se", "että", "kun", "mutta", "tai", "jos", "niin", "kuin", "myös", "ole", "olen", "olla", "oli", "ovat", "minä", "sinä", "hän", "me", "te", "he", "meidän", "teidän", "minun", "sinun", "tämä", "tuo", "mikä", "kiitos", "terveisin", "hei", "moi", "ystävällisin", "voisitteko", "pitäisi", "koska", "vielä", "nyt", "jo", "sitä", "siitä", "tässä", "asiaa"]
    ),
    "pl": frozenset(
        ["i", "w", "nie", "na", "się", "jest", "że", "to", "do", "z", "jak", "ale", "czy", "tak", "jestem", "mam", "dla", "przez", "po", "od", "jego", "jej", "już", "tylko", "proszę", "dziękuję", "pozdrawiam", "dzień", "dobry", "witam", "bardzo", "może", "mnie", "mój", "moja", "które", "który", "która", "oraz", "gdy", "więc", "też"]
    ),
    "hu": frozenset(
        ["és", "a", "az", "nem", "hogy", "van", "egy", "is", "ez", "azt", "meg", "de", "már", "csak", "vagy", "mint", "kell", "volt", "lesz", "nagyon", "köszönöm", "üdvözlettel", "tisztelt", "kérem", "szeretném", "lenne", "mert", "ha", "akkor", "itt", "ott", "nekem", "önök", "után"]
    ),
    "de": frozenset(
        ["und", "der", "die", "das", "ist", "nicht", "ich", "sie", "wir", "ein", "eine", "einen", "mit", "von", "zu", "den", "dem", "für", "auf", "bitte", "danke", "vielen", "grüße", "freundlichen", "sehr", "geehrte", "geehrter", "haben", "hat", "wird", "werden", "auch", "noch", "aber", "oder", "wenn", "ihr", "ihre", "mein", "meine", "sind", "war"]
    ),
    "sv": frozenset(
        ["och", "att", "det", "är", "som", "för", "inte", "jag", "på", "med", "har", "till", "av", "den", "ett", "vi", "ni", "hej", "tack", "vänliga", "hälsningar", "mvh", "kan", "skulle", "vara", "var", "eller", "men", "om", "när", "också", "min", "mitt", "våra", "hur", "vad"]
    ),
}

# Letters that only some of the six use; each seen letter adds weight to those languages.
_LETTERS: dict[str, tuple[str, ...]] = {
    "å": ("sv",),
    "ß": ("de",),
    "ü": ("de", "hu"),
    "ő": ("hu",),
    "ű": ("hu",),
    "á": ("hu",),
    "é": ("hu",),
    "í": ("hu",),
    "ą": ("pl",),
    "ę": ("pl",),
    "ł": ("pl",),
    "ń": ("pl",),
    "ś": ("pl",),
    "ź": ("pl",),
    "ż": ("pl",),
    "ć": ("pl",),
    "ä": ("fi", "sv", "de"),
    "ö": ("fi", "sv", "de", "hu"),
}

# Each stopword with the languages that list it, in _STOPWORDS' order: one lookup per word of a text.
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {}
for _language, _words in _STOPWORDS.items():
    for _word in _words:
        _LANGUAGES_OF[_word] = (*_LANGUAGES_OF.get(_word, ()), _language)

_WORD = re.compile(r"[^\W\d_]+")
_SAMPLE = 4000  # characters: enough for a guess, bounded cost on huge bodies
_MIN_SCORE = 2.0


def scores(text: str) -> dict[str, float]:
    """Per-language evidence in a text: stopword hits plus a little for telling letters."""
    sample = text[:_SAMPLE].lower()
    result = dict.fromkeys(_STOPWORDS, 0.0)
    found = _LANGUAGES_OF.get
    for word in _WORD.findall(sample):
        for language in found(word, ()):
            result[language] += 1.0
    if sample.isascii():  # none of the telling letters (most mail: one test instead of eighteen scans)
        return result
    for letter, languages in _LETTERS.items():
        count = sample.count(letter)
        if count:
            # Capped: a name like "Jörg" in a signature must not outvote a whole English paragraph.
            weight = min(count, 5) * 0.5 / len(languages)
            for language in languages:
                result[language] += weight
    return result


def detect(text: str) -> str | None:
    """The most likely language code, or None when the text gives too little evidence."""
    ranked = sorted(scores(text).items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < _MIN_SCORE or top < second * 1.25:
        return None
    return best
