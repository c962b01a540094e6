"""Reply-text quality: the share of replies cut exactly right over the shared corpus's reply fixtures.

Run: python bench/reply_quality.py [-v] [--corpus DIR]
Sources: talon, email-reply-trimmer, github- and zapier-email-reply-parser, and the reply text
Discourse stores (see the corpus README for each expectation format). A .eml is read by
mailgate's own parser (the production path); a .txt body goes straight to quotes.reply_text.
Text is compared with whitespace runs collapsed, as the corpus tests compare; talon's HTML
cases with all whitespace removed, Discourse's Markdown without emphasis marks and without its
<details class='elided'> block. Printed per source and per language; with -v every miss. The
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inscriptis import get_text  # noqa: E402

from mailgate.mail import language  # noqa: E402
from mailgate.mail.parse import parse  # noqa: E402
from mailgate.mail.quotes import reply_text  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"

# Where mailgate's rules differ from an upstream expectation on purpose: the issue that set the
# rules cuts mobile sign-offs ("Sent from my iPhone") and "-- " signatures, which talon keeps.
BY_DESIGN = {
    "talon/standard_replies/iphone.eml": "mobile sign-off cut",
    "talon/standard_replies/sparrow.eml": "'-- ' signature cut",
    "email-reply-trimmer/spam_1": "an all-quote mail keeps its text (upstream: empty)",
}

# File names that say the language (email_reply_trimmer names its cases so).
_NAMED = {"dutch": "nl", "french": "fr", "german": "de", "italian": "it", "polish": "pl", "russian": "ru",
          "spanish": "es", "ukrainian": "uk", "swedish": "sv", "norwegian": "no", "portuguese": "pt",
          "chinese": "zh", "hebrew": "he"}  # fmt: skip
_SCRIPTS = (("he", re.compile("[\u0590-\u05ff]")), ("zh", re.compile("[\u4e00-\u9fff]")),
            ("ru", re.compile("[\u0400-\u04ff]")))  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One fixture: where it is, its bodies, and the reply texts that count as right."""

    source: str
    name: str
    text: str
    html: str | None
    expected: tuple[str, ...]
    compare: str = "ws"  # ws: whitespace runs collapsed · nows: all whitespace removed · markdown
    eml: Path | None = None  # a whole mail: its reply text is what mailgate's parser stores

    @property
    def id(self) -> str:
        return f"{self.source}/{self.name}"


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")


def _trimmer(root: Path) -> Iterator[Case]:
    for path in sorted((root / "emails").glob("*.txt")):
        yield Case("email-reply-trimmer", path.stem, _read(path), None, (_read(root / "trimmed" / path.name),))


def _talon(root: Path) -> Iterator[Case]:
    spec = json.loads((root / "_expected.json").read_text())
    for name, exp in sorted(spec.items()):
        path = root / name
        if name.startswith("standard_replies/"):
            yield Case("talon", name, "", None, (exp["reply_text"],), eml=path)
        elif name.startswith("html_replies/"):
            html = _read(path)
            yield Case("talon", name, get_text(html), html, (exp["reply_text"],), "nows")
        elif name == "OLK_SRC_BODY_SECTION.html":
            html = _read(path)
            yield Case("talon", name, get_text(html), html, (re.sub(r"<[^>]+>", " ", exp["reply_html"]),), "nows")
        elif name.startswith("signature/"):
            body = _read(path).strip()
            signature = _read(root / exp["signature_file"]).strip()
            yield Case("talon", name, body, None, (body[: len(body) - len(signature)] if signature else body,))


def _github(root: Path) -> Iterator[Case]:
    spec = json.loads((root / "_expected.json").read_text())
    for name, exp in sorted(spec.items()):
        if name.startswith("_"):
            continue
        text = _read(root / "emails" / name)
        checks = [c["eq"] for c in exp.get("fragment_checks", []) if c["i"] == 0 and "eq" in c]
        if "visible_text" in exp:
            yield Case("github-email-reply-parser", name, text, None, (exp["visible_text"],))
        elif checks:
            yield Case("github-email-reply-parser", name, text, None, (checks[0],))
        elif exp.get("fragments", {}).get("count") == 1:
            yield Case("github-email-reply-parser", name, text, None, (text,))


def _zapier(root: Path) -> Iterator[Case]:
    spec = json.loads((root / "_expected.json").read_text())
    for name, exp in sorted(spec.items()):
        if not name.startswith("_"):
            want = exp.get("visible_text", exp.get("reply_stripped"))
            yield Case("zapier-email-reply-parser", name, _read(root / "emails" / name), None, (want,))


def _discourse(root: Path) -> Iterator[Case]:
    labels = json.loads((root / "_labels.json").read_text())
    for name, label in sorted(labels.items()):
        if "expected_post_raw" in label:
            yield Case("discourse", name, "", None, tuple(label["expected_post_raw"]), "markdown", eml=root / name)


SOURCES = {
    "talon": _talon,
    "email-reply-trimmer": _trimmer,
    "github-email-reply-parser": _github,
    "zapier-email-reply-parser": _zapier,
    "discourse": _discourse,
}


def cases(corpus: Path) -> list[Case]:
    return [case for name, load in SOURCES.items() if (corpus / name).is_dir() for case in load(corpus / name)]


def shape(s: str, compare: str) -> str:
    """The text as compared: whitespace runs collapsed (or removed), Discourse's Markdown undone."""
    if compare == "nows":
        return re.sub(r"\s+", "", s)
    if compare == "markdown":
        s = re.sub(r"<details class='elided'>.*?</details>", "", s, flags=re.S)
        s = s.replace("**", "").replace("*", "")
    return " ".join(s.split())


def lang(case: Case) -> str:
    """The case's language: from its file name, its script, or its expected words; English otherwise."""
    for word, code in _NAMED.items():
        if word in case.name.lower():
            return code
    sample = case.expected[0]
    for code, script in _SCRIPTS:
        if script.search(sample):
            return code
    return language.detect(sample) or "en"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-v", action="store_true", help="print every miss")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    args = ap.parse_args()
    by_source: dict[str, list[int]] = {}
    by_lang: dict[str, list[int]] = {}
    misses: list[str] = []
    started = time.perf_counter()
    for case in cases(args.corpus):
        got = parse(case.eml.read_bytes()).reply_text if case.eml else reply_text(case.text, case.html)
        ok = shape(got, case.compare) in {shape(e, case.compare) for e in case.expected}
        for table, key in ((by_source, case.source), (by_lang, lang(case))):
            score = table.setdefault(key, [0, 0])
            score[0] += ok
            score[1] += 1
        if not ok:
            misses.append(case.id)
            if args.v:
                note = f" [by design: {BY_DESIGN[case.id]}]" if case.id in BY_DESIGN else ""
                print(f"MISS {case.id}{note}\n  got:      {got[:300]!r}\n  expected: {case.expected[0][:300]!r}")
    for title, table in (("source", by_source), ("language", by_lang)):
        print(f"{'by ' + title:28} right/total")
        for key, (ok, total) in sorted(table.items()):
            print(f"  {key:26} {ok:3}/{total:<3} {ok / total:6.1%}")
    ok = sum(s[0] for s in by_source.values())
    total = sum(s[1] for s in by_source.values())
    design = [m for m in misses if m in BY_DESIGN]
    print(f"{'overall':28} {ok:3}/{total:<3} {ok / max(total, 1):6.1%}  ({len(design)} misses by design)")
    share = {k: round(v[0] / v[1], 3) for k, v in sorted(by_source.items())}
    langs = {k: round(v[0] / v[1], 3) for k, v in sorted(by_lang.items())}
    print(json.dumps({"bench": "reply_quality", "right": ok, "total": total, "share": round(ok / max(total, 1), 3),
                      "by_source": share, "by_language": langs, "misses": misses, "by_design": design,
                      "seconds": round(time.perf_counter() - started, 2)}))  # fmt: skip


if __name__ == "__main__":
    main()
