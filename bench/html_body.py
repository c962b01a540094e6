"""Cost of one big HTML-only mail through `mailgate ingest` (spool, parse, ticket): seconds and peak RSS.

Run: python bench/html_body.py [--mb 5 20]
Each size runs `python -m mailgate ingest` in a fresh process on a fresh SQLite file; the figures
are that whole process's wall time and maximum resident set size (getrusage of the child), so
the interpreter and imports are included. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_ROW = (
    "<tr><td style='padding:2px'>Item <b>{n}</b></td><td><a href='https://shop.test/p/{n}'>"
    "Product name &amp; more</a></td><td>12,00&nbsp;&euro;</td></tr>\n"
)


def html_mail(size: int) -> bytes:
    """An HTML-only order list of about size bytes of HTML, base64 as a web shop would send it."""
    parts = ["<html><head><style>td{color:red}</style></head><body><p>Hello, the order list:</p><table>"]
    total = n = 0
    while total < size:
        row = _ROW.format(n=n)
        parts.append(row)
        total += len(row)
        n += 1
    parts.append("</table><p>Regards</p></body></html>")
    body = base64.encodebytes("".join(parts).encode()).replace(b"\n", b"\r\n")
    head = (
        "From: Big Shop <orders@shop.test>\r\nTo: support@example.test\r\nSubject: Order list\r\n"
        f"Message-ID: <order-{size}@shop.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode() + body


def run(mb: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        eml = folder / "big.eml"
        eml.write_bytes(html_mail(int(mb * 1024 * 1024)))
        config = folder / "config.toml"
        config.write_text(
            '[gateway]\naddresses = ["support@example.test"]\nsecret = "bench-secret-0123456789abcdef"\n'
            '[storage]\ndatabase = "bench.sqlite3"\n[smtp]\nlisten = "127.0.0.1:0"\n'
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "mailgate", "--config", str(config), "ingest", str(eml)],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))},
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"ingest failed ({done.returncode}): {done.stderr[-2000:]}")
        # ru_maxrss of children is the largest child so far; each size runs in ascending order.
        return {
            "mb": mb,
            "seconds": round(seconds, 2),
            "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
            "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, nargs="+", default=[5, 20])
    args = parser.parse_args()
    results = []
    for mb in sorted(args.mb):
        result = run(mb)
        print(f"{mb:g} MB HTML: {result['seconds']} s, cpu {result['cpu_seconds']} s, peak RSS {result['peak_rss_mb']} MB")
        results.append(result)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
