"""Who this daemon is among several sharing one database, and how long its claims on rows hold."""

from __future__ import annotations

import hashlib
import platform

from mailgate.config.model import Config

# The least a claim holds: a batch of sixteen mails to a slow relay takes minutes, not seconds.
MIN_LEASE = 300.0


def node_name(config: Config) -> str:
    """[storage] node, else the host name with a short hash of the config file's absolute path.

    Two daemons on one host (two configs) differ, and a restart with the same config is the same
    node, so it takes back at once the rows its killed previous life held.
    """
    if config.storage.node:
        return config.storage.node
    where = str((config.source or config.database_path).resolve())
    digest = hashlib.sha256(where.encode()).hexdigest()[:8]
    host = "".join(c for c in platform.node() if c.isalnum() or c in ".-")[:48] or "host"
    return f"{host}:{digest}"


def lease_seconds(config: Config) -> float:
    """[storage] lease, else long enough for a batch to reach the relay: four of its timeouts, at least MIN_LEASE."""
    if config.storage.lease is not None:
        return config.storage.lease
    return max(MIN_LEASE, 4 * config.relay.timeout)
