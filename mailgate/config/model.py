"""The whole config: every section, lookups across them, and the checks one section alone cannot make."""

from __future__ import annotations

from pathlib import Path

from mailgate.config.base import StrictModel
from mailgate.config.imap import ImapAccount
from mailgate.config.outgoing import OutboxConfig, RelayConfig
from mailgate.config.queues import AgentConfig, QueueConfig
from mailgate.config.replies import RepliesConfig
from mailgate.config.report import ReportConfig
from mailgate.config.routing import RuleConfig, RuleTestConfig, routing_errors
from mailgate.config.sections import (
    GatewayConfig,
    HttpConfig,
    RetentionConfig,
    StorageConfig,
    StormConfig,
    TicketsConfig,
)
from mailgate.config.smtp import SmtpConfig
from mailgate.config.web import WebConfig

# `run --dev`: where outgoing mail goes when [relay] names no destination (beside the config file).
DEV_MAILDIR = Path("var/outgoing")


def dev_outgoing(config: Config) -> Config:
    """Dev mode: outgoing mail into the DEV_MAILDIR folder, unless [relay] names a host, port or maildir.

    The built-in relay default (127.0.0.1:25) is whatever MTA the developer's machine runs, or nothing.
    """
    if {"host", "port", "maildir"} & config.relay.model_fields_set:
        return config
    base = config.source.parent if config.source is not None else Path.cwd()
    relay = config.relay.model_copy(update={"maildir": base / DEV_MAILDIR})
    return config.model_copy(update={"relay": relay})


def bounce_address(config: Config) -> str:
    """The VERP return-path base (bounces+<token>@domain); mailgate accepts mail for it."""
    if config.outbox.bounce_address is not None:
        return config.outbox.bounce_address
    return "bounces@" + config.gateway.addresses[0].split("@", 1)[1]


class Config(StrictModel):
    """The whole config, parsed once."""

    gateway: GatewayConfig
    storage: StorageConfig = StorageConfig()
    smtp: SmtpConfig = SmtpConfig()
    queues: tuple[QueueConfig, ...] = ()
    agents: tuple[AgentConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    rule_tests: tuple[RuleTestConfig, ...] = ()
    relay: RelayConfig = RelayConfig()
    outbox: OutboxConfig = OutboxConfig()
    imap: tuple[ImapAccount, ...] = ()
    tickets: TicketsConfig = TicketsConfig()  # ticket life: reopen, SLA
    storms: StormConfig = StormConfig()  # per-sender and installation-wide caps on what a flood can cause
    http: HttpConfig = HttpConfig()  # /metrics and /healthz for monitoring; off by default
    retention: RetentionConfig = RetentionConfig()  # how long mail, spool and outbox rows are kept
    replies: RepliesConfig = RepliesConfig()  # saved replies agents send with [use:NAME]
    web: WebConfig = WebConfig()  # the contact form and ticket API (channel web); off by default
    report: ReportConfig = ReportConfig()  # the weekly report mailed to queue members; off by default

    # Set by load(): where the file lives, so relative paths resolve against it.
    source: Path | None = None
    # Set by `mailgate run --dev` / `check-config --dev` (never by the file): a trial run on a
    # developer's machine, where the example secret is accepted.
    dev: bool = False

    def cross_check(self) -> list[tuple[str, str]]:
        """Errors between sections (dotted key, message) that one model alone cannot see."""
        errors: list[tuple[str, str]] = []
        queue_names = [q.name for q in self.queues]
        agent_ids = [a.id for a in self.agents]
        for label, names in (("queues", queue_names), ("agents", agent_ids)):
            for i, name in enumerate(names):
                if name in names[:i]:
                    errors.append((f"{label}.{i}.{'name' if label == 'queues' else 'id'}", f"duplicate {name!r}"))
        for i, queue in enumerate(self.queues):
            for member in queue.members:
                if member not in agent_ids:
                    errors.append((f"queues.{i}.members", f"unknown agent {member!r}"))
            for address in queue.addresses:
                if address not in self.gateway.addresses:
                    errors.append((f"queues.{i}.addresses", f"{address!r} is not in gateway.addresses"))
        for i, agent in enumerate(self.agents):
            for queue_name in agent.queues:
                if queue_name not in queue_names:
                    errors.append((f"agents.{i}.queues", f"unknown queue {queue_name!r}"))
        imap_names = [a.name for a in self.imap]
        for i, account in enumerate(self.imap):
            if account.name in imap_names[:i]:
                errors.append((f"imap.{i}.name", f"duplicate {account.name!r}"))
            errors.extend((f"imap.{i}.{key}", message) for key, message in account.problems())
            if account.address is not None and account.address not in self.gateway.addresses:
                errors.append((f"imap.{i}.address", f"{account.address!r} is not in gateway.addresses"))
        errors.extend((f"relay.{key}", message) for key, message in self.relay.problems())
        if bounce_address(self) in self.gateway.addresses:
            # Bounces must never open tickets: they would be acknowledged and could start a loop.
            errors.append(("outbox.bounce_address", "must differ from every gateway address"))
        default_queue = self.gateway.default_queue
        if default_queue is not None and default_queue not in queue_names:
            errors.append(("gateway.default_queue", f"unknown queue {default_queue!r}"))
        errors.extend(routing_errors(self.rules, self.rule_tests, queue_names, agent_ids))
        errors.extend((f"web.{k}", m) for k, m in self.web.problems(
            self.gateway.addresses, {q.name: q.addresses for q in self.queues},
            {"smtp.listen": self.smtp.listen, "http.listen": self.http.listen}))
        errors.extend(self.report.problems(queue_names))
        return errors

    def queue(self, name: str) -> QueueConfig | None:
        return next((q for q in self.queues if q.name == name), None)

    def agent(self, agent_id: str) -> AgentConfig | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def queue_for_address(self, address: str) -> QueueConfig | None:
        """The default queue of a support address: the first queue it feeds."""
        address = address.lower()
        return next((q for q in self.queues if address in q.addresses), None)

    def queue_members(self, queue: QueueConfig) -> list[AgentConfig]:
        """Agents of a queue: its members list plus agents naming the queue."""
        return [a for a in self.agents if a.id in queue.members or queue.name in a.queues]

    def secret_bytes(self) -> bytes:
        if self.gateway.secret is not None:
            return self.gateway.secret.get_secret_value().encode()
        assert self.gateway.secret_file is not None
        return self.gateway.secret_file.read_bytes().strip()

    @property
    def database_path(self) -> Path:
        return self.storage.database

    @property
    def attachments_path(self) -> Path:
        if self.storage.attachments is not None:
            return self.storage.attachments
        return self.storage.database.with_name(self.storage.database.name + ".attachments")

    @property
    def message_id_domain(self) -> str:
        return self.gateway.domain or self.gateway.addresses[0].split("@", 1)[1]

