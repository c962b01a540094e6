"""Reading speed: parse(), classify() and the quote cut alone, in ms per mail over the shared corpus.

Run: python bench/parse_speed.py [--limit N] [--rounds R] [--corpus DIR]
Every file under the corpus that is a mail (not an expectation file) is read as bytes, in a
stable order. Each figure is the median over the rounds of one pass's total time divided by the
mails, so one slow pass on a shared machine does not move it. classify() gets the signals
parse() would hand it; the quote cut is quote_select.read() on each mail's plain text (the line
classification and selection, without the HTML path). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailgate.mail import mime, quote_select  # noqa: E402
from mailgate.mail.classify import Signals, classify  # noqa: E402
from mailgate.mail.parse import parse  # noqa: E402

T = TypeVar("T")

CORPUS = REPO.parent / "shared" / "corpus"
# Expectation files and decoded attachments that sit next to the mails.
SKIP_SUFFIXES = {".json", ".yml", ".xml", ".md", ".out", ".html", ".bin"}


def corpus_mails(corpus: Path, limit: int | None) -> list[bytes]:
    """Every mail file of the corpus as bytes, sorted by path, at most `limit` of them."""
    out: list[bytes] = []
    for path in sorted(corpus.rglob("*")):
        if not path.is_file() or path.suffix in SKIP_SUFFIXES or "_decoded" in path.name:
            continue
        out.append(path.read_bytes())
        if limit is not None and len(out) >= limit:
            break
    return out


def signals(raw: bytes) -> Signals:
    """What parse() gives classify() for one mail, built once outside the timed loop."""
    mail = parse(raw)
    msg = mime.parse_bytes(raw)
    top = mime.content_type(msg)
    report_type = mime.params(msg).get("report-type", "").lower() if top == "multipart/report" else ""
    return Signals(
        headers=mail.headers,
        subject=mail.subject,
        sender=mail.from_[0].address if mail.from_ else "",
        content_type=top,
        report_type=report_type,
        part_types=frozenset(mime.content_type(p) for p in msg.walk()),
        text=mail.text[:4000],
    )


def ms_per_item(items: Sequence[T], run: Callable[[T], object], rounds: int) -> float:
    """Median over rounds of one pass's time per item, in milliseconds."""
    passes = []
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            run(item)
        passes.append((time.perf_counter() - start) / len(items) * 1000)
    return statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="mails to use (default: all)")
    parser.add_argument("--rounds", type=int, default=5, help="passes per figure; the median counts")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # parse() logs degraded mails; the corpus has several on purpose
    mails = corpus_mails(args.corpus, args.limit)
    if not mails:
        sys.exit(f"no mails under {args.corpus}")
    texts = [parse(raw).text for raw in mails]
    sigs = [signals(raw) for raw in mails]
    print(f"corpus mails: {len(mails)}, {sum(map(len, mails)) / 1024 / 1024:.1f} MiB; {args.rounds} rounds")
    parse_ms = ms_per_item(mails, parse, args.rounds)
    print(f"parse(): {parse_ms:.3f} ms/mail")
    classify_ms = ms_per_item(sigs, classify, args.rounds)
    print(f"classify(): {classify_ms:.4f} ms/mail")
    quote_ms = ms_per_item(texts, quote_select.read, args.rounds)
    print(f"quote cut (quote_select.read on the text): {quote_ms:.3f} ms/mail")
    print(json.dumps({
        "mails": len(mails),
        "rounds": args.rounds,
        "parse_ms_per_mail": round(parse_ms, 4),
        "classify_ms_per_mail": round(classify_ms, 5),
        "quote_cut_ms_per_mail": round(quote_ms, 4),
    }))


if __name__ == "__main__":
    main()
