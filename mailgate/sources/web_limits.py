"""Who a web client is (its address, through trusted proxies only) and how often it may post."""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Bounded memory under a flood from many addresses: past this many the least recently seen go.
MAX_TRACKED = 10_000


def ip_of(text: str) -> IPAddress | None:
    """An address as a peer or X-Forwarded-For gives it: "192.0.2.1", "[2001:db8::1]:443", "192.0.2.1:5000"."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]  # Azure and some load balancers append the port to IPv4
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # "::ffff:192.0.2.1" from a dual-stack listener is the IPv4 client
    return ip


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[str]) -> IPAddress | None:
    """The client: the peer, or, when the peer is a trusted proxy, the nearest untrusted X-Forwarded-For hop.

    Read right to left: each trusted proxy appends the address it saw, and everything left of the
    first untrusted one is whatever the client chose to write.
    """
    networks = [ipaddress.ip_network(n.strip(), strict=False) for n in trusted]

    def is_trusted(ip: IPAddress) -> bool:
        return any(ip in n for n in networks)

    current = ip_of(peer) if peer else None
    if current is None or not forwarded_for or not is_trusted(current):
        return current
    for hop in reversed(forwarded_for.split(",")):
        ip = ip_of(hop)
        if ip is None:
            return current  # a hop our proxy could not have written: believe no further
        current = ip
        if not is_trusted(ip):
            return ip
    return current


def bucket_key(ip: IPAddress) -> str:
    """IPv6 clients by their /64: one subscriber line gets a whole /64 (RFC 6177) and can use any address in it."""
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # seconds, on the limiter's clock
    refused: int = 0  # requests refused since the last one let through


class RateLimit:
    """A token bucket per client: `burst` requests at once, then `per_minute` as the bucket refills."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now: float, *, per_minute: float, burst: int) -> tuple[float, int]:
        """(0, 0) when a request may go ahead (and is counted); else the seconds until one may and how
        many requests of this client were refused in a row (the first is worth a log line, the rest not)."""
        rate = per_minute / 60.0
        bucket = self._buckets.pop(key, None) or _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) * rate)
        bucket.at = now
        self._buckets[key] = bucket  # most recently seen last
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.refused = 0
            return 0.0, 0
        bucket.refused += 1
        return (1.0 - bucket.tokens) / rate, bucket.refused
