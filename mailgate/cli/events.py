"""`tickets show`: a ticket's event log as lines an operator reads (failed deliveries, suppressed acks …)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

# Event data holds what senders wrote (a bounce's diagnostic, a subject, an address): escape
# sequences and bidi overrides in it would repaint or reorder the operator's terminal.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SHORT = 200  # characters of one value in the generic key=value form


def _clean(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return _UNSAFE.sub("?", text)


def _kv(data: dict[str, Any]) -> str:
    parts = []
    for key, value in data.items():
        if value is None or value == "" or value == [] or value == {}:
            continue  # "category=null tags=[]" on every routed ticket hides what was decided
        text = " ".join(_clean(value).split())
        parts.append(f"{key}={text if len(text) <= _SHORT else text[: _SHORT - 1] + '…'}")
    return " ".join(parts)


def _mail(data: dict[str, Any]) -> str:
    """Which outgoing mail: "ack to alice@… (outbox 7)"."""
    return f"{_clean(data.get('kind', 'mail'))} to {_clean(data.get('to', '?'))} (outbox {_clean(data.get('outbox', '?'))})"


def _failed(data: dict[str, Any]) -> str:
    # The whole reason: a relay's multi-line answer or a DSN's diagnostic is what the operator acts on.
    return f"{_mail(data)}: {_clean(data.get('reason', ''))}"


def _reason(data: dict[str, Any]) -> str:
    rest = {k: v for k, v in data.items() if k != "reason"}
    return _clean(data.get("reason", "")) + (f" ({_kv(rest)})" if rest else "")


_FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    "delivery.failed": _failed,
    "delivery.bounced": _mail,
    "ack.suppressed": _reason,
}


def event_lines(events: Sequence[dict[str, Any]], last: int) -> list[str]:
    """The last `last` events, oldest first, one per line (a multi-line reason continues indented)."""
    if last <= 0 or not events:
        return []
    shown = events[-last:]
    more_note = f"{len(shown)} of {len(events)}, newest last; --events N for more" if len(shown) < len(events) else ""
    lines = [f"  events ({more_note or len(events)}):"]
    for e in shown:
        data = e.get("data") if isinstance(e.get("data"), dict) else {}
        text = _FORMATS.get(e["kind"], _kv)(data) if data else ""
        at = str(e["at"])[:19].replace("T", " ")
        first, *more = text.splitlines() or [""]
        lines.append(f"    {at}  {_clean(e['actor'])}  {_clean(e['kind'])}  {first}".rstrip())
        lines.extend(f"        {line}" for line in more if line.strip())
    return lines
