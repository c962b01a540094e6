"""What routing conditions look at in one message: addresses, subject, body, headers, language, kind."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailgate.mail import language as language_mod
from mailgate.models import ParsedMail

_BODY_LIMIT = 200_000  # characters of body text that conditions look at; bounds regex cost on huge mail
WORDS = re.compile(r"\w+")


def base_address(address: str) -> str:
    """support+token@x.example → support@x.example (lowercased)."""
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if at else address.lower()


class Facts:
    """What conditions look at in one message, computed on first use (language detection is not free).

    Values are keyed by field name, or "header:<lowercased name>" for a header.
    """

    def __init__(self, mail: ParsedMail, recipients: Sequence[str] = ()) -> None:
        self.mail = mail
        self.envelope = tuple(recipients)
        self._values: dict[str, tuple[str, ...]] = {}
        self._words: dict[str, frozenset[str]] = {}
        self._sorted: dict[str, list[str]] = {}
        self._headers: dict[str, tuple[str, ...]] | None = None
        self._language: tuple[str | None] | None = None

    def values(self, key: str) -> tuple[str, ...]:
        found = self._values.get(key)
        if found is None:
            found = self._values[key] = self._compute(key)
        return found

    def words(self, key: str) -> frozenset[str]:
        """The lowercased words of a field, for keyword conditions (one tokenizing per field)."""
        found = self._words.get(key)
        if found is None:
            found = self._words[key] = frozenset(w for v in self.values(key) for w in WORDS.findall(v.lower()))
        return found

    def sorted_words(self, key: str) -> list[str]:
        found = self._sorted.get(key)
        if found is None:
            found = self._sorted[key] = sorted(self.words(key))
        return found

    def _compute(self, key: str) -> tuple[str, ...]:
        mail = self.mail
        if key.startswith("header:"):
            if self._headers is None:
                headers: dict[str, list[str]] = {}
                for name, value in mail.headers:
                    headers.setdefault(name.lower(), []).append(value)
                self._headers = {k: tuple(v) for k, v in headers.items()}
            return self._headers.get(key[7:], ())
        sender = mail.from_[0].address.lower() if mail.from_ and mail.from_[0].address else ""
        if key == "recipient":
            addresses = [*self.envelope, *(a.address for a in mail.to), *(a.address for a in mail.cc)]
            out = [form for a in addresses if a for form in (a.lower(), base_address(a))]
            return tuple(dict.fromkeys(out))
        if key == "sender":
            return (sender,) if sender else ()
        if key == "sender_domain":
            return (sender.rpartition("@")[2],) if "@" in sender else ()
        if key == "subject":
            return (mail.subject,)
        if key == "body":
            return (mail.text[:_BODY_LIMIT],)
        if key == "language":
            detected = self.language
            return (detected,) if detected else ()
        if key == "kind":
            return (str(mail.kind),)
        raise ValueError(f"unknown field {key!r}")

    @property
    def language(self) -> str | None:
        if self._language is None:
            # The new text of a reply, not the quoted history (which may be the agent's language).
            text = f"{self.mail.subject}\n{self.mail.reply_text or self.mail.text}"
            self._language = (language_mod.detect(text),)
        return self._language[0]

    @property
    def attachments(self) -> int:
        # Inline parts are mostly signature logos; they are not what "has an attachment" means.
        return sum(1 for a in self.mail.attachments if not a.inline)
