"""TOML config → frozen, validated objects; every error names file, line and key.

The package splits the job by section and by step (load, locate, salvage, checks); this module
re-exports the names the rest of mailgate imports, so `from mailgate.config import Config` stays.
"""

from __future__ import annotations

from mailgate.config.base import (
    LANGUAGES,
    PRIORITIES,
    WEEKDAYS,
    HostPort,
    Ident,
    Language,
    MailAddress,
    PersonAddress,
    Priority,
    StrictModel,
    TimeZoneName,
    Weekday,
    is_loopback,
    parse_listen,
)
from mailgate.config.checks import EXAMPLE_SECRET_MARKER, permission_warnings, production_issues
from mailgate.config.imap import ImapAccount
from mailgate.config.issues import ConfigError, ConfigIssue
from mailgate.config.load import load
from mailgate.config.locate import key_line
from mailgate.config.model import DEV_MAILDIR, Config, bounce_address, dev_outgoing
from mailgate.config.outgoing import OutboxConfig, RelayConfig
from mailgate.config.paths import state_base
from mailgate.config.queues import AgentConfig, BusinessHoursConfig, QueueConfig, SlaTimes
from mailgate.config.replies import RepliesConfig
from mailgate.config.report import DIMENSIONS, PERIODS, ReportConfig
from mailgate.config.routing import (
    DETECTED_LANGUAGES,
    MAIL_KINDS,
    MATCH_FIELDS,
    ConditionConfig,
    ConditionFields,
    MatchConfig,
    RuleConfig,
    RuleTestConfig,
)
from mailgate.config.rule_tests import RuleTestFiles, read_rule_test_files
from mailgate.config.sections import (
    GatewayConfig,
    HttpConfig,
    RetentionConfig,
    StorageConfig,
    StormConfig,
    TicketsConfig,
)
from mailgate.config.smtp import SmtpConfig
from mailgate.config.web import WebConfig, WebSite

__all__ = [
    "DETECTED_LANGUAGES", "DEV_MAILDIR", "DIMENSIONS", "PERIODS", "ReportConfig", "EXAMPLE_SECRET_MARKER", "LANGUAGES", "MAIL_KINDS", "MATCH_FIELDS",
    "PRIORITIES", "WEEKDAYS", "AgentConfig", "BusinessHoursConfig", "ConditionConfig", "ConditionFields", "Config",
    "ConfigError", "ConfigIssue", "GatewayConfig", "HostPort", "HttpConfig", "Ident", "ImapAccount", "Language",
    "MailAddress", "MatchConfig", "OutboxConfig", "PersonAddress", "Priority", "QueueConfig", "RelayConfig",
    "RepliesConfig", "RetentionConfig", "RuleConfig", "RuleTestConfig", "RuleTestFiles", "read_rule_test_files", "SlaTimes",
    "SmtpConfig", "StorageConfig", "StormConfig", "StrictModel", "TicketsConfig", "TimeZoneName", "WebConfig", "WebSite",
    "Weekday", "bounce_address", "dev_outgoing", "is_loopback",
    "key_line", "load", "parse_listen", "permission_warnings", "production_issues", "state_base",
]
