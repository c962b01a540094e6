"""Cut the new part of a reply from its quoted history and signature."""

from __future__ import annotations


def reply_text(text: str, html: str | None = None) -> str:
    """The new text of a reply (placeholder until the phrase tables land)."""
    return text.strip()
