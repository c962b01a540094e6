"""Ticket subjects: the tag a sender may quote ("[#1234]") and the Re:/Fw: prefixes clients add."""

from __future__ import annotations

import re
from functools import lru_cache

# Reply/forward prefixes of the mail clients our users have: English, Nordic, Polish, German,
# Hungarian, Dutch, French, Spanish, Italian; "RE[2]:" and "Re^3:" counters; repeated prefixes.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|sv|vs|vl|odp|pd|aw|wg|vá|válasz|tov|továbbítás|antw|doorst|tr|réf|rv|ri|r)"
    r"\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)


@lru_cache(maxsize=8)
def _tag_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(r"\[\s*" + re.escape(prefix) + r"\s*(\d{1,12})\s*\]", re.IGNORECASE)


def subject_tags(subject: str, prefix: str) -> list[int]:
    """Ticket numbers tagged in a subject, e.g. "[#1234]", in order."""
    return [int(n) for n in _tag_pattern(prefix).findall(subject)]


def clean_subject(subject: str, prefix: str) -> str:
    """The subject a ticket keeps: no Re:/Fw:/Sv:/Odp:/AW:/Vá: prefixes and no ticket tag."""
    subject = _tag_pattern(prefix).sub(" ", subject)
    previous = None
    while previous != subject:
        previous = subject
        subject = _PREFIX.sub("", subject).strip()
        subject = _tag_pattern(prefix).sub(" ", subject).strip()
    return " ".join(subject.split())
