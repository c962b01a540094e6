"""Bounce and auto-reply labels against the shared corpus's labelled sources (sisimai, flufl.bounce).

Run: python bench/classify_quality.py [--corpus DIR] [--misses]
Shares printed: sisimai bounces read as bounces (bsd/ by its labels, dos/ by its file names),
maildir/not/ read as not-bounce, vacation replies read as auto-replies, ARF reports read as
auto-replies; flufl.bounce files read as bounces, and the share whose bounced addresses (the
label's, lowercased) all appear among the recipients we extract (and the share that match
exactly), and the share of labelled sisimai bounces where we find at least as many recipients
as the label lists. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailgate.mail.parse import parse  # noqa: E402
from mailgate.models import MailKind  # noqa: E402

try:  # the recipient reader arrived after the first measurements; kinds alone still measure
    from mailgate.mail.bounces import bounced_recipients  # noqa: E402
except ImportError:  # pragma: no cover
    bounced_recipients = None

CORPUS = REPO.parent / "shared" / "corpus"


def _category(key: str, labels: Any) -> str:
    if key.startswith("maildir/not/") or labels == "not-a-bounce":
        return "not"
    if labels is None:  # dos/ files carry no label upstream: the file name says what it is
        name = Path(key).name
        return "vacation" if name.startswith("rfc3834") else "feedback" if name.startswith("arf") else "bounce"
    reasons = {entry["reason"] for entry in labels}
    for special in ("vacation", "feedback"):
        if special in reasons:
            return special
    return "delivered" if reasons == {"delivered"} else "bounce"


def _share(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def measure(corpus: Path, misses: bool) -> dict[str, Any]:
    sisimai = corpus / "sisimai"
    labels: dict[str, Any] = json.loads((sisimai / "_labels.json").read_text(encoding="utf-8"))
    wanted: dict[str, Callable[[MailKind], bool]] = {
        "bounce": lambda k: k is MailKind.BOUNCE,
        "not": lambda k: k is not MailKind.BOUNCE,
        "vacation": lambda k: k is MailKind.AUTO_REPLY,
        "feedback": lambda k: k is MailKind.AUTO_REPLY,
        "delivered": lambda k: k is not MailKind.BOUNCE,
    }
    counts: dict[str, list[int]] = {c: [0, 0] for c in wanted}
    s_rcpt = [0, 0]
    for path in sorted(p for p in (sisimai / "maildir").rglob("*") if p.is_file()):
        key = str(path.relative_to(sisimai))
        if key.startswith("maildir/bsd/") and key not in labels:
            continue
        category = _category(key, labels.get(key))
        raw = path.read_bytes()
        kind = parse(raw).kind
        ok = wanted[category](kind)
        entries = labels.get(key)
        if category == "bounce" and isinstance(entries, list) and bounced_recipients is not None:
            found = len(bounced_recipients(raw))
            s_rcpt[0] += found >= len(entries)
            s_rcpt[1] += 1
            if misses and found < len(entries):
                print(f"miss sisimai rcpt {key} want={len(entries)} got={found}")
        counts[category][0] += ok
        counts[category][1] += 1
        if misses and not ok:
            print(f"miss sisimai {category:9} {kind.value:10} {key}")
    flufl = corpus / "flufl-bounce"
    flabels: dict[str, Any] = json.loads((flufl / "_labels.json").read_text(encoding="utf-8"))
    f_kind = [0, 0]
    f_addr = [0, 0]
    f_exact = 0
    for path in sorted(p for p in flufl.iterdir() if p.is_file() and p.name != "_labels.json"):
        raw = path.read_bytes()
        kind = parse(raw).kind
        f_kind[0] += kind is MailKind.BOUNCE
        f_kind[1] += 1
        if misses and kind is not MailKind.BOUNCE:
            print(f"miss flufl kind {kind.value:10} {path.name}")
        expected = {a.lower() for entry in flabels.get(path.name) or [] for a in entry["addresses"]}
        if not expected or bounced_recipients is None:
            continue
        got = {a.lower() for a in bounced_recipients(raw)}
        f_addr[0] += expected <= got
        f_exact += expected == got
        f_addr[1] += 1
        if misses and not expected <= got:
            print(f"miss flufl rcpt {path.name} want={sorted(expected)} got={sorted(got)}")
    result: dict[str, Any] = {f"sisimai_{c}": _share(*counts[c]) for c in counts}
    result.update({f"sisimai_{c}_n": counts[c][1] for c in counts})
    result["flufl_bounce"] = _share(*f_kind)
    result["flufl_bounce_n"] = f_kind[1]
    result["flufl_recipients"] = _share(*f_addr) if bounced_recipients is not None else None
    result["flufl_recipients_n"] = f_addr[1]
    result["flufl_recipients_exact"] = _share(f_exact, f_addr[1])
    result["sisimai_recipients"] = _share(*s_rcpt) if bounced_recipients is not None else None
    result["sisimai_recipients_n"] = s_rcpt[1]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--misses", action="store_true", help="print every file read wrong")
    args = ap.parse_args()
    print(json.dumps(measure(args.corpus, args.misses), sort_keys=True))


if __name__ == "__main__":
    main()
