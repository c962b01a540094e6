"""Composing outgoing mail: the email package's EmailMessage (the reference) against compose.wire().

Run: python bench/compose.py [--mails N] [--rounds R]
Every template in every shipped language, rendered with the check-config sample data (non-ASCII
names, a subject with markup) and addressed as the writer addresses it (a Reply-To token address,
a References chain, the HTML alternative). Per template: the Jinja2 render, the reference compose
and compose.wire(), in ms per mail; the best of R rounds of N mails (the machine is shared: the
best round is the one least disturbed). The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mailgate import tokens
from mailgate.config import LANGUAGES
from mailgate.outgoing import compose
from mailgate.outgoing.templates import NAMES, Templates, sample_context
from tests.reference_compose import reference

SECRET = b"bench-secret-0123456789"


def best_ms(work: Callable[[], object], mails: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(mails):
            work()
        best = min(best, (time.perf_counter() - start) / mails * 1000)
    return best


def outgoing(rendered_subject: str, text: str, html: str | None, language: str) -> compose.Outgoing:
    token = tokens.Token("r", 1042)
    return compose.Outgoing(
        from_name="Example Support", from_address="support@example.test", to_name="Zoë Łukasiewicz-Ådahl",
        to_address="zoe@customer.example", reply_to=tokens.reply_address(SECRET, "support@example.test", token),
        subject=compose.tagged_subject(rendered_subject, "#", 1042), message_id=tokens.message_id(SECRET, "example.test", token),
        text=text, html=html, marker=tokens.body_marker(SECRET, token), in_reply_to="CAF1x+Yq@mail.gmail.com",
        references=("first.1042@customer.example", "r.1042.1@example.test"), language=language,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=30, help="mails per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure (the best counts)")
    args = parser.parse_args()
    templates = Templates()
    data = sample_context()
    per_template: dict[str, dict[str, float]] = {}
    rows: list[tuple[float, float, float]] = []
    for name in NAMES:
        figures: list[tuple[float, float, float]] = []
        for language in LANGUAGES:
            rendered = templates.render(name, language, data)
            out = outgoing(rendered.subject, rendered.text, rendered.html, language)
            figures.append((
                best_ms(lambda: templates.render(name, language, data), args.mails, args.rounds),  # noqa: B023
                best_ms(lambda: reference(out), args.mails, args.rounds),  # noqa: B023
                best_ms(lambda: compose.wire(out), args.mails, args.rounds),  # noqa: B023
            ))
        render, old, new = (statistics.fmean(f[i] for f in figures) for i in range(3))
        rows += figures
        per_template[name] = {"render_ms": round(render, 4), "compose_ms_old": round(old, 4), "compose_ms_new": round(new, 4)}
        print(f"{name:16} render {render:.3f} ms   compose: email package {old:.3f} ms, wire {new:.3f} ms "
              f"({old / new:.1f}x)", flush=True)
    render, old, new = (statistics.fmean(r[i] for r in rows) for i in range(3))
    print(f"all {len(rows)} template/language pairs: render {render:.3f} ms, compose {old:.3f} -> {new:.3f} ms per mail")
    print(json.dumps({
        "mails_per_round": args.mails, "rounds": args.rounds, "pairs": len(rows),
        "render_ms": round(render, 4), "compose_ms_old": round(old, 4), "compose_ms_new": round(new, 4),
        "speedup": round(old / new, 1), "per_template": per_template,
    }))


if __name__ == "__main__":
    main()
