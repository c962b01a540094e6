"""The web intake's answers: JSON for API clients, a small HTML page or a redirect for a person's form post."""

from __future__ import annotations

import html
import json

from mailgate.sources.web_http import Answer

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body><main><h1>{title}</h1><p>{message}</p>{back}</main></body></html>
"""


def page(status: int, title: str, message: str, *, back: bool) -> Answer:
    text = _PAGE.format(title=html.escape(title), message=html.escape(message),
                        back='<p>Go back to the form to correct it: your browser keeps what you typed.</p>' if back else "")
    return Answer(status, text.encode(), "text/html; charset=utf-8")


def error(status: int, message: str, *, form: bool, headers: list[tuple[str, str]] | None = None) -> Answer:
    """An error for the client: JSON {"error": …}, or for a form post a page a person can read."""
    if form:
        answer = page(status, "Your message was not sent", message, back=True)
    else:
        answer = Answer(status, json.dumps({"error": message}).encode() + b"\n")
    answer.headers.extend(headers or [])
    return answer


def accepted(reference: str, *, form: bool, redirect: str | None) -> Answer:
    """Stored: 201 with the reference for the API; 303 to the site's page for a form (or a thank-you page).

    The ticket number is not known yet: the pipeline threads and routes the mail after this answer,
    and the acknowledgement mail tells the person their number.
    """
    if form and redirect is not None:
        return Answer(303, b"", "text/plain; charset=utf-8", [("location", redirect)])
    if form:
        return page(200, "Thank you", "Your message was received. We sent you an e-mail with your ticket number.",
                    back=False)
    return Answer(201, json.dumps({"ticket": "accepted", "reference": reference}).encode() + b"\n")


def cors(origin: str) -> list[tuple[str, str]]:
    """What lets a page on an allowed origin read the answer of its fetch() (the Fetch standard's CORS)."""
    return [("access-control-allow-origin", origin), ("vary", "Origin")]


def preflight(origin: str) -> Answer:
    """The answer to a browser's OPTIONS before a JSON post with an Authorization header."""
    return Answer(204, b"", "text/plain; charset=utf-8", [
        *cors(origin),
        ("access-control-allow-methods", "POST"),
        ("access-control-allow-headers", "authorization, content-type"),
        ("access-control-max-age", "600"),
    ])
