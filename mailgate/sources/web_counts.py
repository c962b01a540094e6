"""The web intake's counters for /metrics: posts accepted, and refused by reason, never by client.

A label per client address would be a new series for every address that ever posts (unbounded
cardinality: Prometheus keeps each one in memory); who was refused is in the log lines instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Every reason a POST /v1/tickets is turned away, each present (as 0) from the start so an alert on
# "token > 0" has a series before the first refusal. honeypot: a robot answered as a person, nothing stored.
REASONS: tuple[str, ...] = ("rate", "token", "origin", "size", "type", "invalid", "honeypot", "unavailable")
_BY_STATUS = {429: "rate", 401: "token", 403: "origin", 413: "size", 431: "size", 415: "type", 400: "invalid",
              503: "unavailable"}


@dataclass
class WebCounts:
    """Plain integers bumped in the event loop's thread: no lock, no I/O, nothing per request but an add."""

    accepted: int = 0
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def refuse(self, reason: str) -> None:
        self.refused[reason] += 1

    def refuse_status(self, status: int) -> None:
        """A refusal by its HTTP status; statuses that are no judgement of the post (404, 405) are not counted."""
        reason = _BY_STATUS.get(status)
        if reason is not None:
            self.refused[reason] += 1
