"""Make HTML mail bodies safe to show (nh3) and readable as plain text (inscriptis)."""

from __future__ import annotations

import nh3
from inscriptis import get_text

# Inline images in HTML mail point at their MIME part with cid: URLs (RFC 2392).
_URL_SCHEMES = frozenset(nh3.ALLOWED_URL_SCHEMES) | {"cid"}


def sanitize_html(html: str) -> str:
    """The HTML with scripts, styles, event handlers and unknown schemes removed."""
    try:
        return nh3.clean(html, url_schemes=set(_URL_SCHEMES))
    except Exception:  # nh3 is Rust underneath; a panic surfaces as an arbitrary exception
        return ""


def html_to_text(html: str) -> str:
    """A plain-text rendering of an HTML body, layout kept as far as text allows."""
    if not html.strip():
        return ""
    try:
        text = get_text(html)
    except Exception:  # lxml rejects some inputs (NUL bytes, broken encodings declarations)
        try:
            text = get_text(html.replace("\x00", ""))
        except Exception:
            return ""
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")
