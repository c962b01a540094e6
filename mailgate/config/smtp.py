"""[smtp]: the SMTP/LMTP listener, whose peers it trusts, and the limits an abusive client meets."""

from __future__ import annotations

import functools
import ipaddress

from pydantic import Field, ValidationInfo, field_validator

from mailgate.config.base import HostPort, StrictModel, ip_networks, parse_listen


class SmtpConfig(StrictModel):
    listen: HostPort = Field(default_factory=lambda: HostPort(host="127.0.0.1", port=2525))
    max_message_size: int = Field(default=25 * 1024 * 1024, ge=1024)
    lmtp: bool = False
    hostname: str | None = None
    # Seconds a session may go without progress: silent, or sending only NOOP/RSET/HELP and the
    # like, between commands or between two reads of DATA (a slow but steady upload goes on).
    timeout: float = Field(default=300, gt=0)
    # Agent identity: which peers' Authentication-Results count. Mail straight from the internet can
    # carry any header, "dkim=pass" included, so only the MTA in front of mailgate (its addresses or
    # networks, e.g. "127.0.0.1", "10.0.0.0/24") is believed; empty: no peer is (tokens still prove agents).
    trusted_peers: tuple[str, ...] = ()
    # The Received headers that MTA (and any content filter re-injecting the mail) adds on top: only
    # results above the last of them are its own; below starts what the sender wrote. Also for `ingest`.
    trusted_received: int = Field(default=1, ge=1, le=10)

    # --- The listener under abuse: limits a client on the internet cannot talk its way past ---
    # Each connection costs a file descriptor: ~1,000 idle ones locked every client out once.
    # Keep max_connections well under the unit's LimitNOFILE (mailgate needs ~128 more for itself).
    max_connections: int = Field(default=100, ge=1)
    # One address cannot take every slot; behind an MTA on loopback, at least its LMTP/SMTP concurrency.
    max_connections_per_peer: int = Field(default=20, ge=1)
    # NOOP, RSET, VRFY, HELP, HELO/EHLO and refused commands without a mail accepted in between
    # (Postfix's smtpd_junk_command_limit): past this the session gets 421 and is closed.
    junk_command_limit: int = Field(default=50, ge=1)
    # Bytes of DATA held in memory across all sessions at once (the process briefly needs about
    # twice that); a session that would go over gets 452 4.3.1 and its sender retries later.
    # Default: 4 x max_message_size. 16 parallel max-size uploads once took 856 MB.
    max_data_memory: int | None = Field(default=None, ge=1024)
    # Seconds a delivery waits for the database (another process may hold its write lock) before
    # 451 4.3.0: the sending MTA retries, and sessions do not queue behind storage.busy_timeout.
    busy_timeout: float = Field(default=2.0, gt=0)
    # Seconds a stop (SIGTERM) waits for mail in DATA to finish; sessions still sending after it
    # get 421 and nothing of theirs is stored, so their senders retry. Keep the unit's
    # TimeoutStopSec above it, or systemd kills the daemon mid-store.
    stop_timeout: float = Field(default=30.0, ge=0, le=3600)

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: object) -> HostPort:
        return parse_listen(value)

    @field_validator("trusted_peers", mode="before")
    @classmethod
    def _peers(cls, value: object) -> object:
        return ip_networks(value)

    def trusts(self, peer: str | None) -> bool:
        """Whether the SMTP/LMTP peer address is one of trusted_peers."""
        return bool(peer) and _trusts(self.trusted_peers, peer or "")

    @field_validator("max_data_memory")
    @classmethod
    def _room_for_one_mail(cls, value: int | None, info: ValidationInfo) -> int | None:
        largest = info.data.get("max_message_size")
        if value is not None and isinstance(largest, int) and value < largest:
            raise ValueError(f"must be at least max_message_size ({largest}): a mail that size could never come in")
        return value

    @property
    def data_memory(self) -> int:
        return self.max_data_memory if self.max_data_memory is not None else 4 * self.max_message_size


# Asked several times for every mail (whose Authentication-Results count, may it be acknowledged):
# parsing the peer and every network each time cost ~20 µs, and a few relays send nearly all mail.
@functools.lru_cache(maxsize=1024)
def _trusts(networks: tuple[str, ...], peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # "::ffff:127.0.0.1" from a dual-stack listener
    return any(address in ipaddress.ip_network(n.strip(), strict=False) for n in networks)
