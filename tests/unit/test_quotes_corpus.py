"""quotes.reply_text against the shared corpus fixtures that carry expected reply text.

Run `python -m tests.unit.test_quotes_corpus` for the score per source.
"""

from __future__ import annotations

import email
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from inscriptis import get_text

from mailgate.mail.quotes import reply_text

from ..conftest import CORPUS

# Known failures: fixing one turns its xfail into an XPASS, which fails the run (strict).
KNOWN_FAILURES = {
    "email-reply-trimmer/spam_1": "an all-quote mail keeps its text by design; upstream returns empty",
    "talon/standard_replies/iphone.eml": "talon keeps 'Sent from my iPhone'; mailgate cuts mobile signatures",
    "talon/standard_replies/sparrow.eml": "talon keeps the '-- ' signature; mailgate cuts signatures",
    "talon/signature/emails/stripped/jeff_body": "signature without delimiter, found by sender name (talon ML)",
    "talon/signature/emails/stripped/long_body": "signature without delimiter, found by sender name (talon ML)",
    "talon/signature/emails/stripped/short_url_body": "sign-off 'Thank you,\\nNoam' is kept by design",
}


@dataclass(frozen=True)
class Case:
    """One fixture: the input and what the reply must look like."""

    source: str
    name: str
    text: str
    html: str | None = None
    expected: tuple[str, ...] = ()  # any of these (after `compare`)
    compare: str = "ws"  # exact | ws (whitespace runs collapsed) | nows (all whitespace removed) | markdown
    matches: tuple[str, ...] = ()  # regexes the reply must match
    absent: tuple[str, ...] = ()  # regexes (multiline) the reply must not match
    timed: bool = False

    @property
    def id(self) -> str:
        return f"{self.source}/{self.name}"


def _decode(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    # UTF-8 first, as Discourse's receiver does: discourse/chinese_reply.eml declares Big5 but
    # carries UTF-8 bytes. A wrong guess cannot pass as UTF-8 by accident for non-ASCII text.
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _bodies(path: Path) -> tuple[str, str | None]:
    """text/plain and text/html of an .eml (stdlib compat32); text made from HTML if missing."""
    msg = email.message_from_bytes(path.read_bytes())
    text: str | None = None
    html: str | None = None
    for part in msg.walk():
        if part.is_multipart() or part.get_filename():
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and text is None:
            text = _decode(part)
        elif ctype == "text/html" and html is None:
            html = _decode(part)
    if text is None:
        text = get_text(html) if html else ""
    return text.replace("\r\n", "\n"), html


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def _trimmer() -> Iterator[Case]:
    root = CORPUS / "email-reply-trimmer"
    for path in sorted((root / "emails").glob("*.txt")):
        yield Case("email-reply-trimmer", path.stem, _read(path), expected=(_read(root / "trimmed" / path.name),))


def _talon() -> Iterator[Case]:
    root = CORPUS / "talon"
    spec = json.loads((root / "_expected.json").read_text())
    for name, exp in sorted(spec.items()):
        path = root / name
        if name.startswith("standard_replies/"):
            text, html = _bodies(path)
            yield Case("talon", name, text, html, expected=(exp["reply_text"],))
        elif name.startswith("html_replies/"):
            html = _read(path)
            yield Case("talon", name, get_text(html), html, expected=(exp["reply_text"],), compare="nows")
        elif name == "OLK_SRC_BODY_SECTION.html":
            html = _read(path)
            want = re.sub(r"<[^>]+>", " ", exp["reply_html"])
            yield Case("talon", name, get_text(html), html, expected=(want,), compare="nows")
        elif name == "reply-quotations-share-block.eml":
            # Upstream runs extract_from_plain on the raw file text, headers and base64 included.
            yield Case("talon", name, _read(path), matches=(r"\S",), absent=("From",))
        elif name.startswith("signature/"):
            body = _read(path)
            signature = _read(root / exp["signature_file"]).strip()
            want = body.strip()[: len(body.strip()) - len(signature)] if signature else body
            yield Case("talon", name, body, expected=(want,))


def _github() -> Iterator[Case]:
    root = CORPUS / "github-email-reply-parser"
    spec = json.loads((root / "_expected.json").read_text())
    for name, exp in sorted(spec.items()):
        if name.startswith("_"):
            continue
        text = _read(root / "emails" / name)
        hidden = exp.get("fragments", {}).get("hidden")
        expected: tuple[str, ...] = ()
        matches: list[str] = []
        absent: list[str] = []
        if "visible_text" in exp:
            expected = (exp["visible_text"],)
        elif exp.get("fragments", {}).get("count") == 1:
            expected = (text,)
        for check in exp.get("fragment_checks", []):
            # Fragment 0 is the visible reply; later fragments are quote or signature
            # (hidden, when the upstream flags say so or are not transcribed).
            visible = check["i"] == 0 or (hidden is not None and not hidden[check["i"]])
            if "eq" in check:
                if visible:
                    expected = (check["eq"],)
                else:
                    absent.append(re.escape(check["eq"].strip()))
            elif visible:
                matches.append(check["re"])
            else:
                absent.append("(?m)" + check["re"])
        if name == "email_long_quote.txt":
            matches.append(r"^Hi folks\n\nWhat is the best way")
        if name == "pathological.txt":
            matches.append(r"^I think you're onto something")
            absent.append("organism")
        yield Case(
            "github-email-reply-parser",
            name,
            text,
            expected=expected,
            compare="exact",
            matches=tuple(matches),
            absent=tuple(absent),
            timed="performance" in exp,
        )


def _zapier() -> Iterator[Case]:
    root = CORPUS / "zapier-email-reply-parser"
    spec = json.loads((root / "_expected.json").read_text())
    for name, exp in sorted(spec.items()):
        if name.startswith("_"):
            continue
        want = exp.get("visible_text", exp.get("reply_stripped"))
        yield Case(
            "zapier-email-reply-parser", name, _read(root / "emails" / name), expected=(want,), compare="exact"
        )


def _discourse() -> Iterator[Case]:
    root = CORPUS / "discourse"
    labels = json.loads((root / "_labels.json").read_text())
    for name, label in sorted(labels.items()):
        if "expected_post_raw" not in label:
            continue
        text, html = _bodies(root / name)
        yield Case("discourse", name, text, html, expected=tuple(label["expected_post_raw"]), compare="markdown")


SOURCES = (_trimmer, _talon, _github, _zapier, _discourse)


def all_cases() -> list[Case]:
    if not CORPUS.is_dir():
        return []
    return [case for source in SOURCES for case in source()]


def _shape(s: str, compare: str) -> str:
    if compare == "exact":
        return s.strip()
    if compare == "nows":
        return re.sub(r"\s+", "", s)
    if compare == "markdown":
        # Discourse stores Markdown; its <details class='elided'> block holds what it trimmed.
        s = re.sub(r"<details class='elided'>.*?</details>", "", s, flags=re.S)
        s = s.replace("**", "").replace("*", "")
    return " ".join(s.split())


def failure(case: Case) -> str | None:
    """Why the reply for this case is wrong, or None."""
    started = time.perf_counter()
    got = reply_text(case.text, case.html)
    elapsed = time.perf_counter() - started
    if case.timed and elapsed > 5:
        return f"took {elapsed:.1f} s"
    if case.expected and _shape(got, case.compare) not in {_shape(e, case.compare) for e in case.expected}:
        return f"got {got[:400]!r}, expected {case.expected[0][:400]!r}"
    for pattern in case.matches:
        if not re.search(pattern, got):
            return f"{pattern!r} not in {got[:400]!r}"
    for pattern in case.absent:
        if re.search(pattern, got):
            return f"{pattern!r} found in {got[:400]!r}"
    return None


def _params() -> list[object]:
    params = []
    for case in all_cases():
        reason = KNOWN_FAILURES.get(case.id)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
@pytest.mark.parametrize("case", _params())
def test_corpus_reply(case: Case) -> None:
    problem = failure(case)
    assert problem is None, problem


def test_known_failures_exist() -> None:
    """Every known failure names a real fixture (a renamed file must not hide a pass)."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    ids = {case.id for case in all_cases()}
    assert set(KNOWN_FAILURES) <= ids


def main() -> None:
    """Print passed/total per source and overall."""
    totals: dict[str, list[int]] = {}
    for case in all_cases():
        problem = failure(case)
        score = totals.setdefault(case.source, [0, 0])
        score[0] += problem is None
        score[1] += 1
        if problem and "-v" in sys.argv:
            print(f"FAIL {case.id}: {problem}")
    for source, (ok, total) in totals.items():
        print(f"{source:28} {ok:3}/{total}")
    ok = sum(s[0] for s in totals.values())
    print(f"{'overall':28} {ok:3}/{sum(s[1] for s in totals.values())}")


if __name__ == "__main__":
    main()
