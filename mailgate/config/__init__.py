"""TOML config → frozen, validated objects; every error names file, line and key."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import shlex
import tomllib
import zoneinfo
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")


def _address(value: str) -> str:
    value = value.strip().lower()
    if not _ADDRESS.match(value):
        raise ValueError(f"not a mail address: {value!r}")
    if "+" in value.split("@", 1)[0]:
        raise ValueError(f"support addresses carry no '+' part (mailgate adds its own): {value!r}")
    return value


MailAddress = Annotated[str, AfterValidator(_address)]

def _zone_name(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (e.g. 'Europe/Helsinki', 'UTC')") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_zone_name)]


def _mentions(annotation: object, kind: type) -> bool:
    """Whether a field's type is `kind` or holds it (Path | None, tuple[Path, ...], tuple[str, ...] | None)."""
    return (
        annotation is kind
        or get_origin(annotation) is kind
        or any(_mentions(arg, kind) for arg in get_args(annotation))
    )


class _Model(BaseModel):
    # Strict: TOML already types every value, so `lmtp = "yes"`, `port = "2526"` or `away = "off"`
    # is a slip, refused with its line. Lax parsing guessed at such words ("off" was false, "of" an
    # error) and let a value work in one place that another reader of the file takes differently.
    # Only what TOML itself cannot spell is converted (see _toml_types); int -> float stays allowed.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _toml_types(cls, data: object) -> object:
        # TOML has arrays, not tuples, and strings, not paths: convert just those two, by field type.
        if not isinstance(data, dict):
            return data
        fields = {f.alias or name: f for name, f in cls.model_fields.items()}
        out = dict(data)
        for key, value in data.items():
            field = fields.get(key)
            if field is None:
                continue
            if isinstance(value, list) and _mentions(field.annotation, tuple):
                out[key] = tuple(value)
            elif isinstance(value, str) and _mentions(field.annotation, Path):
                out[key] = Path(value)
        return out


class HostPort(BaseModel):
    model_config = ConfigDict(frozen=True)
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: object) -> HostPort:
    """Read "host:port" or "[v6]:port"."""
    if isinstance(value, HostPort):
        return value
    if not isinstance(value, str):
        raise ValueError('expected a string "host:port"')
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", value.strip())
    if not match:
        raise ValueError(f'expected "host:port" or "[v6]:port", got {value!r}')
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 <= port < 65536:  # 0: the OS picks a free port (tests)
        raise ValueError(f"port {port} is out of range 0-65535")
    return HostPort(host=host, port=port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GatewayConfig(_Model):
    """Who mailgate is: its support addresses, its signing secret, its ticket tag."""

    name: str = "Support"
    addresses: tuple[MailAddress, ...] = Field(min_length=1)
    secret: SecretStr | None = None
    secret_file: Path | None = None
    domain: str | None = None  # right-hand side of the Message-IDs mailgate makes
    ticket_tag: str = "#"  # the subject tag reads "[#1234]"
    first_ticket_number: int = Field(default=1000, ge=1)
    default_language: Language = "en"
    default_queue: str | None = None  # for mail whose recipient address feeds no queue (rules may override)
    # Agent identity (issue 6): Authentication-Results from these authserv-ids (the operator's own MTA) are trusted.
    authserv_id: tuple[str, ...] = ()
    timezone: TimeZoneName = "UTC"  # agents' local time: "[snooze:monday]" wakes at 09:00 here

    @field_validator("authserv_id", mode="before")
    @classmethod
    def _authserv_ids(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_secret(self) -> GatewayConfig:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError("give exactly one of 'secret' or 'secret_file'")
        return self

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters: it signs reply tokens")
        return value

    @field_validator("ticket_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z#]{1,12}", value):
            raise ValueError("ticket_tag is 1-12 letters or '#', e.g. '#' or 'Ticket#'")
        return value


def _any_address(value: str) -> str:
    value = value.strip().lower()
    if not _ADDRESS.match(value):
        raise ValueError(f"not a mail address: {value!r}")
    return value


PersonAddress = Annotated[str, AfterValidator(_any_address)]

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
LANGUAGES: tuple[str, ...] = ("en", "fi", "pl", "hu")
Language = Literal["en", "fi", "pl", "hu"]
Ident = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]


class SlaTimes(_Model):
    """Action times for one priority, in minutes."""

    first_response: int | None = Field(default=None, gt=0)
    resolution: int | None = Field(default=None, gt=0)


WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class BusinessHoursConfig(_Model):
    """When a queue works (issue 7): SLA deadlines count only these minutes."""

    days: tuple[Weekday, ...] = Field(default=("mon", "tue", "wed", "thu", "fri"), min_length=1)
    start: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="17:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    timezone: TimeZoneName = "UTC"
    holidays: tuple[date, ...] = ()  # whole days off, in the queue's time zone

    @model_validator(mode="after")
    def _order(self) -> BusinessHoursConfig:
        if self.end > "24:00" or self.end <= self.start:
            raise ValueError(f"end {self.end!r} must be after start {self.start!r} (overnight shifts: not supported)")
        return self


class TicketsConfig(_Model):
    """Ticket life (issue 7): reopening, SLA warnings."""

    # A customer reply to a ticket resolved longer ago than this opens a new, linked ticket.
    reopen_days: float = Field(default=14, ge=0)
    sla_warning_percent: int = Field(default=80, ge=1, le=99)  # warn the assignee at this share of a deadline
    # Who a ticket mails. One mail with 1,000 Cc addresses must not make 1,000 parties that every
    # agent reply then goes to: past this many Cc parties the rest are left out, and the agent is told.
    max_cc_parties: int = Field(default=20, ge=0, le=1000)
    # An agent's reply goes to at most this many envelope recipients (the customer and Cc parties),
    # however the parties grew (merges, the CLI, older data); the agent's confirmation names the rest.
    max_reply_recipients: int = Field(default=25, ge=1, le=1000)


class QueueConfig(_Model):
    """A queue (department): the support addresses that feed it and the agents who work it."""

    name: Ident
    addresses: tuple[MailAddress, ...] = ()
    members: tuple[Ident, ...] = ()
    language: Language | None = None
    default_priority: Priority = "normal"
    acknowledge: bool = True  # an acknowledgement to the customer when a ticket opens
    notify: bool = True  # notifications to the agents
    resolution_notice: bool = True  # a notice to the customer when the ticket is resolved
    sla: dict[Priority, SlaTimes] = Field(default_factory=dict)
    assignment: Literal["none", "round-robin", "least-open"] = "none"
    business_hours: BusinessHoursConfig | None = None  # SLA clocks count only these (issue 7)


class AgentConfig(_Model):
    """An agent: who may act on tickets by mail, from which addresses, in which queues."""

    id: Ident
    name: str
    addresses: tuple[PersonAddress, ...] = Field(min_length=1)
    queues: tuple[Ident, ...] = ()
    away: bool = False
    language: Language | None = None
    # Whether the agent's own signature block (under "-- ") reaches the customer with their words.
    # Off by default: the reply template signs every answer, and a personal signature often holds a
    # direct phone number or internal notes the team does not hand out.
    keep_signature: bool = False


MATCH_FIELDS: tuple[str, ...] = (
    "recipient", "sender", "sender_domain", "subject", "body", "header", "language", "kind",
)
DETECTED_LANGUAGES: tuple[str, ...] = ("en", "fi", "pl", "hu", "de", "sv")
MAIL_KINDS: tuple[str, ...] = ("message", "auto-reply", "bounce", "bulk")
_CONDITION_ORDER = (
    "kind", "has_attachment", "recipient", "sender", "sender_domain", "language", "header", "subject", "body",
    "all", "any",
)


class MatchConfig(_Model):
    """How a field is matched: one of equals, glob, regex, keywords (a header: also its name)."""

    name: str | None = Field(default=None, pattern=r"^[!-9;-~]{1,100}$")  # header conditions only
    equals: tuple[str, ...] | None = None
    glob: tuple[str, ...] | None = None
    regex: str | None = None
    keywords: tuple[str, ...] | None = None

    @field_validator("equals", "glob", "keywords", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_matcher(self) -> MatchConfig:
        given = [k for k in ("equals", "glob", "regex", "keywords") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of equals, glob, regex, keywords (got {', '.join(given)})")
        if not given and self.name is None:
            raise ValueError("give one of equals, glob, regex, keywords")
        for key in ("equals", "glob", "keywords"):
            if getattr(self, key) == ():
                raise ValueError(f"{key!r} needs at least one value")
        return self

    @property
    def how(self) -> str:
        """Which matcher this is; 'present' for a header condition without one."""
        return next((k for k in ("equals", "glob", "regex", "keywords") if getattr(self, k) is not None), "present")


class _ConditionFields(_Model):
    """Conditions on a new message; every key given must hold (all/any/not nest further ones)."""

    all: tuple[ConditionConfig, ...] | None = None
    any: tuple[ConditionConfig, ...] | None = None
    not_: ConditionConfig | None = Field(default=None, alias="not")
    recipient: MatchConfig | None = None
    sender: MatchConfig | None = None
    sender_domain: MatchConfig | None = None
    subject: MatchConfig | None = None
    body: MatchConfig | None = None
    header: MatchConfig | None = None
    language: MatchConfig | None = None
    kind: MatchConfig | None = None
    has_attachment: bool | None = None

    @field_validator(*MATCH_FIELDS, mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        # `subject = "x"` or `subject = ["x", "y"]` is short for `subject = { equals = ... }`.
        return {"equals": value} if isinstance(value, (str, list, tuple)) else value

    @model_validator(mode="after")
    def _consistent(self) -> _ConditionFields:
        for key in MATCH_FIELDS:
            match: MatchConfig | None = getattr(self, key)
            if match is None:
                continue
            if key == "header" and match.name is None:
                raise ValueError("a header condition needs the header's 'name'")
            if key != "header" and match.name is not None:
                raise ValueError(f"'name' belongs to header conditions, not to {key!r}")
            if key != "header" and match.how == "present":
                raise ValueError(f"{key!r}: give one of equals, glob, regex, keywords")
        for key in ("all", "any"):
            if getattr(self, key) == ():
                raise ValueError(f"{key!r} needs at least one condition")
        return self

    def condition_keys(self) -> list[str]:
        """The condition keys set here, in evaluation order (cheap ones first)."""
        keys = [k for k in _CONDITION_ORDER if getattr(self, k) is not None]
        return [*keys, "not"] if self.not_ is not None else keys


class ConditionConfig(_ConditionFields):
    """A nested condition (inside all, any or not)."""

    @model_validator(mode="after")
    def _not_empty(self) -> ConditionConfig:
        if not self.condition_keys():
            raise ValueError("an empty condition; give e.g. subject, sender_domain, any, not")
        return self


class RuleConfig(_ConditionFields):
    """A routing rule: its conditions (none: it always matches) and what it decides for a new ticket."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,60}$")
    description: str = ""
    queue: str | None = None
    priority: Priority | None = None
    category: str | None = Field(default=None, min_length=1, max_length=60)
    tags: tuple[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,39}$")], ...] = ()
    assignee: str | None = None
    suppress_ack: bool = False
    quarantine: bool = False
    stop: bool = True
    continue_: bool = Field(default=False, alias="continue")

    @model_validator(mode="after")
    def _stop_or_continue(self) -> RuleConfig:
        if self.continue_ and self.stop and "stop" in self.model_fields_set:
            raise ValueError("'stop = true' and 'continue = true' contradict each other")
        return self

    @property
    def stops(self) -> bool:
        """Whether a match ends the evaluation (the default; `continue = true` or `stop = false` go on)."""
        return self.stop and not self.continue_

    def actions(self) -> dict[str, object]:
        """What this rule sets, for traces."""
        out: dict[str, object] = {
            k: getattr(self, k) for k in ("queue", "priority", "category", "assignee") if getattr(self, k) is not None
        }
        if self.tags:
            out["tags"] = list(self.tags)
        if self.suppress_ack:
            out["suppress_ack"] = True
        if self.quarantine:
            out["quarantine"] = True
        return out


class RuleTestConfig(_Model):
    """A message file and the ticket fields routing must give it; `check-config` runs these."""

    name: str | None = None
    file: Path  # relative to the config file
    recipients: tuple[PersonAddress, ...] = ()  # envelope recipients (default: none, To/Cc decide)
    queue: str | None = None
    priority: Priority | None = None
    category: str | None = None
    tags: tuple[str, ...] | None = None  # exactly these tags
    assignee: str | None = None  # as a rule decides it (strategies need the store)
    ack_suppressed: bool | None = None
    quarantined: bool | None = None
    rules: tuple[str, ...] | None = None  # exactly these rules matched, in order

    @property
    def label(self) -> str:
        return self.name or str(self.file)



class StorageConfig(_Model):
    database: Path = Path("mailgate.sqlite3")
    attachments: Path | None = None  # default: "<database>.attachments" beside the database
    synchronous: str = Field(default="NORMAL", pattern="^(NORMAL|FULL)$")
    busy_timeout: float = Field(default=10.0, gt=0)  # seconds to wait for another writer


class SmtpConfig(_Model):
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
        value = (value,) if isinstance(value, str) else value
        if isinstance(value, (list, tuple)):
            for item in value:
                try:
                    ipaddress.ip_network(str(item).strip(), strict=False)
                except ValueError as exc:
                    raise ValueError(
                        f"{item!r} is not an IP address or network (e.g. '127.0.0.1', '10.0.0.0/24')"
                    ) from exc
        return value

    def trusts(self, peer: str | None) -> bool:
        """Whether the SMTP/LMTP peer address is one of trusted_peers."""
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # "::ffff:127.0.0.1" from a dual-stack listener
        return any(address in ipaddress.ip_network(n.strip(), strict=False) for n in self.trusted_peers)

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


class ImapAccount(_Model):
    """One mailbox mailgate fetches from: where, how to log in, which folders, what to do after storing."""

    name: Ident
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)  # default: 993 for tls, else 143
    security: Literal["tls", "starttls", "none"] = "tls"
    ca_file: Path | None = None  # a private CA for tls/starttls; default: the system's
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    oauth2_token_file: Path | None = None  # XOAUTH2 access token, re-read on every login
    oauth2_token_command: tuple[str, ...] | None = None  # prints an access token on stdout
    folders: tuple[str, ...] = Field(default=("INBOX",), min_length=1)
    after_store: Literal["seen", "move", "delete"] = "seen"
    move_to: str | None = None
    address: MailAddress | None = None  # the support address this mailbox receives for
    poll_interval: float = Field(default=60.0, gt=0, le=86400)  # seconds; also the IDLE renewal
    idle: bool = True
    batch_size: int = Field(default=50, ge=1, le=1000)
    max_message_size: int | None = Field(default=None, ge=1024)  # default: smtp.max_message_size
    timeout: float = Field(default=60.0, gt=0)  # seconds per network operation
    # Agent identity: the Received headers this mailbox's provider adds on top, its Authentication-Results
    # above the last of them (as smtp.trusted_received). 0, the default: none of its results count, since
    # a provider that keeps a sender's forged results looks the same as one that removes them.
    trusted_received: int = Field(default=0, ge=0, le=10)

    @field_validator("oauth2_token_command", mode="before")
    @classmethod
    def _command(cls, value: object) -> object:
        if isinstance(value, str):
            parts = shlex.split(value)
            if not parts:
                raise ValueError("an empty command")
            return tuple(parts)
        return value

    @field_validator("security")
    @classmethod
    def _clear_text_only_on_loopback(cls, value: str, info: ValidationInfo) -> str:
        host = info.data.get("host")
        if value == "none" and isinstance(host, str) and not is_loopback(host):
            raise ValueError(
                f"security = 'none' sends the password in clear text; allowed only for a loopback"
                f" host (127.0.0.1, ::1, localhost), not {host!r}: use 'tls' or 'starttls'"
            )
        return value

    @field_validator("folders")
    @classmethod
    def _folders(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, folder in enumerate(value):
            if not folder.strip():
                raise ValueError("an empty folder name")
            if folder in value[:i]:
                raise ValueError(f"folder {folder!r} is listed twice")
        return value

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else (993 if self.security == "tls" else 143)

    def problems(self) -> list[tuple[str, str]]:
        """(key inside this account, message) for settings that contradict each other."""
        out: list[tuple[str, str]] = []
        ways = [k for k in _CREDENTIAL_KEYS if getattr(self, k) is not None]
        if not ways:
            out.append(("password", f"give one of {', '.join(_CREDENTIAL_KEYS)}"))
        for key in ways[1:]:
            out.append((key, f"the login secret is given two ways ({ways[0]!r} and {key!r}); keep one"))
        if self.after_store == "move" and not self.move_to:
            out.append(("move_to", "after_store = 'move' needs move_to = \"<folder>\""))
        if self.move_to is not None and self.after_store != "move":
            out.append(("move_to", "move_to is only used with after_store = 'move'"))
        if self.move_to is not None and self.move_to in self.folders:
            out.append(("move_to", f"{self.move_to!r} is also a folder to read: mail would go round in circles"))
        return out


_CREDENTIAL_KEYS = ("password", "password_file", "password_env", "oauth2_token_file", "oauth2_token_command")


class RelayConfig(_Model):
    """The smarthost every outgoing mail goes through (aiosmtplib), or a Maildir folder instead."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    # The relay password kept out of the config file, which is group-readable for the operators
    # (0640 root:mailgate) while the password should not be: read by load(), so at start and on reload.
    password_file: Path | None = None
    timeout: float = Field(default=60.0, gt=0)  # seconds per SMTP command
    connections: int = Field(default=2, ge=1, le=32)  # deliveries in parallel, one session each
    # A relay that is a folder: every outgoing mail is written into this Maildir (new/) instead of
    # being sent. A first run has no MTA on 127.0.0.1, and a relay port where nothing listens made
    # every acknowledgement retry for two days; a folder shows the whole loop at once. Relative to
    # the config file. Nothing leaves the machine: production configs name host/port instead.
    maildir: Path | None = None

    @field_validator("maildir", mode="before")
    @classmethod
    def _folder(cls, value: object) -> object:
        # A string from TOML arrives as a Path already (the base model's TOML conversion runs first).
        if isinstance(value, (str, Path)) and not str(value).strip():
            raise ValueError("give a folder (e.g. \"var/outgoing\"), or leave maildir out to use the relay")
        return value

    def problems(self) -> list[tuple[str, str]]:
        """(key inside [relay], message): a folder and a smarthost at once would leave one unused."""
        if self.maildir is None:
            return []
        smtp_keys = [k for k in ("host", "port", "security", "username", "password") if k in self.model_fields_set]
        return [(key, f"{key!r} is for a smarthost, but maildir = {str(self.maildir)!r} delivers into a folder;"
                      " keep one of the two") for key in smtp_keys]

    @model_validator(mode="after")
    def _auth(self) -> RelayConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("the relay password is given two ways ('password' and 'password_file'); keep one")
        has_password = self.password is not None or self.password_file is not None
        if (self.username is None) == has_password:
            raise ValueError("give both 'username' and 'password' (or 'password_file'), or neither")
        if self.username is not None and self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                f"a password over security = 'none' travels in clear text; use 'tls' or 'starttls'"
                f" for {self.host!r}"
            )
        return self


class OutboxConfig(_Model):
    """Outgoing mail: delayed send, retries, loop protection, templates, bounce address."""

    send_delay: float = Field(default=30.0, ge=0)  # seconds an agent's reply waits (cancellable)
    max_age: float = Field(default=2 * 86400.0, gt=0)  # seconds of retrying before a mail is failed
    retry_base: float = Field(default=60.0, gt=0)  # first retry after this, then doubling
    retry_max: float = Field(default=3600.0, gt=0)  # the longest wait between two tries
    auto_replies_per_hour: int = Field(default=5, ge=0)  # automatic mails per recipient per hour
    # Senders answered as people although their mail looks automatic ("*@tickets.partner.example").
    human_senders: tuple[str, ...] = ()
    templates: Path | None = None  # operator overrides: <folder>/<lang>/<name>.txt|.html
    bounce_address: MailAddress | None = None  # VERP base; default bounces@<first support domain>
    # Bytes of the customer's files attached to one notification (also the assignment notice and a
    # [files] mail); the rest are listed with name, type and size. Agents' mailboxes refuse messages
    # past 10-25 MB (Gmail 25, Exchange Online 10-35 by tenant), and a refused notification loses the words too.
    # 0 attaches none: every file is only listed.
    notify_attachments_max: int = Field(default=10 * 1024 * 1024, ge=0)


class HttpConfig(_Model):
    """[http]: the health and metrics listener for monitoring (Prometheus, load balancers, scripts)."""

    # Off unless set: it tells anyone who can connect how much mail flows and whether the relay
    # answers, so it binds to loopback in the example and a reverse proxy guards anything wider.
    listen: HostPort | None = None
    # /healthz calls the relay failing when its last attempt within this many minutes failed:
    # an outage older than that with nothing sent since is "unknown", not a reason to page.
    relay_minutes: float = Field(default=15, gt=0)

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: object) -> HostPort | None:
        return None if value is None else parse_listen(value)


class StormConfig(_Model):
    """Mail storms and backscatter: caps that keep a flood from one sender, or of forged senders, from
    turning into a flood of tickets, agent notifications and acknowledgements. 0 turns a cap off."""

    # A broken mailer or a grudge sends hundreds of mails an hour; past this many from one From address
    # in a clock hour (UTC) its mail is still stored, on its latest ticket, but opens no ticket and tells
    # no agent: they get one summary instead, and `mailgate storms list` shows the count.
    sender_mails_per_hour: int = Field(default=20, ge=0)
    # Spam with forged senders makes every acknowledgement backscatter to an innocent address; caps on
    # all acknowledgements together bound what a flood can make mailgate send (RT/Znuny-style global cap).
    acks_per_minute: int = Field(default=60, ge=0)
    acks_per_hour: int = Field(default=1000, ge=0)
    # No acknowledgement when the trusted MTA's Authentication-Results (gateway.authserv_id) say the
    # sender's domain failed SPF or DMARC: the From is most likely forged and the answer would be backscatter.
    no_ack_on_auth_fail: bool = True
    # Headers a spam filter before mailgate sets to "yes" (SpamAssassin X-Spam-Flag/X-Spam-Status,
    # rspamd X-Spam): such mail gets no acknowledgement. A sender forging one only silences its own ack.
    spam_headers: tuple[str, ...] = ("X-Spam-Flag", "X-Spam-Status", "X-Spam")


class RetentionConfig(_Model):
    """Data care: how long mail is kept. Every limit is off (None) unless the operator sets it."""

    # Privacy law (GDPR art. 5(1)(e)) wants personal data kept no longer than needed; a closed ticket's
    # messages and files go after this many days since it closed. The ticket row and an event stay.
    closed_after_days: float | None = Field(default=None, gt=0)
    # The spool keeps every mail's wire bytes for replay and forensics; they are the bulk of the database.
    # Processed ('done'/'duplicate') rows lose their bytes after this many days; dead rows never do.
    spool_after_days: float | None = Field(default=None, gt=0)
    # Sent, cancelled and failed outgoing mail (wire bytes again) is deleted after this many days.
    outbox_after_days: float | None = Field(default=None, gt=0)
    # Rows deleted per transaction: short write locks, so intake never waits on a purge.
    batch_size: int = Field(default=200, ge=1, le=10_000)


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


class Config(_Model):
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
    tickets: TicketsConfig = TicketsConfig()  # ticket life: reopen, SLA (issue 7)
    storms: StormConfig = StormConfig()  # per-sender and installation-wide caps on what a flood can cause
    http: HttpConfig = HttpConfig()  # /metrics and /healthz for monitoring; off by default
    retention: RetentionConfig = RetentionConfig()  # how long mail, spool and outbox rows are kept

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
        errors.extend(_routing_errors(self, queue_names, agent_ids))
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


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One thing wrong with a config file."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Paths in the config are relative to the config file, not to the working directory."""
    state = state_base(base)
    storage = data.get("storage")
    if isinstance(storage, dict):
        for key in ("database", "attachments"):
            if isinstance(storage.get(key), str):
                storage[key] = str(state / os.path.expanduser(storage[key]))
    relay = data.get("relay")
    if isinstance(relay, dict) and isinstance(relay.get("maildir"), str) and relay["maildir"].strip():
        # Data, like the database: under the unit's StateDirectory, not beside /etc's read-only config.
        relay["maildir"] = str(state / os.path.expanduser(relay["maildir"]))
    gateway = data.get("gateway")
    if isinstance(gateway, dict) and isinstance(gateway.get("secret_file"), str):
        gateway["secret_file"] = str(base / os.path.expanduser(gateway["secret_file"]))
    relay = data.get("relay")
    if isinstance(relay, dict) and isinstance(relay.get("password_file"), str):
        relay["password_file"] = str(base / os.path.expanduser(relay["password_file"]))
    for account in data.get("imap") or ():
        for key in ("password_file", "oauth2_token_file", "ca_file"):
            if isinstance(account, dict) and isinstance(account.get(key), str):
                account[key] = str(base / os.path.expanduser(account[key]))


def load(path: Path | str) -> Config:
    """Read and validate a config file; raise ConfigError with every issue in it."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(name, None, "-", f"cannot read: {exc.strerror or exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue(name, None, "-", f"not UTF-8: {exc}")]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            [ConfigIssue(name, int(match.group(1)) if match else None, "-", f"TOML syntax: {exc}")]
        ) from exc
    _resolve_paths(data, path.resolve().parent)
    data["source"] = str(path.resolve())
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        # Operators fix a file once, not in rounds: the sections that did validate are still checked
        # against each other, so an unknown queue shows up next to a typo'd key in the same run.
        issues = _issues(name, text, exc)
        partial, dropped, kept = _salvage(data, exc)
        if partial is not None:
            for key, message in _cross_errors(partial):
                key = _original_key(kept, key)
                if not any(d in message for d in dropped) and not any(i.key == key for i in issues):
                    issues.append(ConfigIssue(name, key_line(text, key), key, message))
        # In file order, as an operator goes through them; those without a line last.
        issues.sort(key=lambda i: (i.line is None, i.line or 0))
        raise ConfigError(issues) from exc
    issues = [ConfigIssue(name, key_line(text, key), key, message) for key, message in _cross_errors(config)]
    if config.gateway.secret_file is not None:
        where = key_line(text, "gateway.secret_file")
        try:
            if len(config.secret_bytes()) < 16:
                issues.append(ConfigIssue(name, where, "gateway.secret_file", "the secret must be at least 16 characters"))
        except OSError as exc:
            issues.append(ConfigIssue(name, where, "gateway.secret_file", f"cannot read: {exc.strerror or exc}"))
    if config.relay.password_file is not None:
        where = key_line(text, "relay.password_file")
        try:
            password = config.relay.password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            issues.append(ConfigIssue(name, where, "relay.password_file", f"cannot read: {reason}"))
        else:
            if not password:
                issues.append(ConfigIssue(name, where, "relay.password_file", "the file is empty"))
            else:
                relay = config.relay.model_copy(update={"password": SecretStr(password)})
                config = config.model_copy(update={"relay": relay})
    if issues:
        raise ConfigError(sorted(issues, key=lambda i: (i.line is None, i.line or 0)))
    return config


def _cross_errors(config: Config) -> list[tuple[str, str]]:
    try:
        return config.cross_check()
    except Exception as exc:  # noqa: BLE001 - a half-validated config must not hide the errors already found
        return [("-", f"cross-section check stopped: {type(exc).__name__}: {exc}")]


def _salvage(data: dict[str, Any], exc: ValidationError) -> tuple[Config | None, list[str], dict[str, Any]]:
    """The config with every invalid key left out (defaults in its place), for the cross-section check.

    An invalid key falls back to its default; an item of a list ([[queues]], [[agents]] ...) that still
    fails is left out, and what the others say about it by name ("unknown agent 'anna'") is not reported.
    The config is None when nothing usable remains (e.g. [gateway] itself is broken).
    """
    data = _copy(data)
    dropped: list[str] = []
    for _ in range(20):
        changed = False
        for error in exc.errors():
            loc = _original(data, list(error["loc"]))
            changed |= _drop(data, loc[:-1] if error["type"] == "missing" else loc, dropped)
        if not changed:
            return None, dropped, data
        try:
            return Config.model_validate(_compact(data)), dropped, data
        except ValidationError as again:
            exc = again
    return None, dropped, data


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


_STAND_IN_SECRET = "stand-in secret for the cross-section check"
_GONE = object()  # a left-out item of a top-level array; others keep their positions (queues.3 stays 3)


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: [x for x in v if x is not _GONE] if isinstance(v, list) else v for k, v in data.items()}


def _original(data: dict[str, Any], loc: list[Any]) -> list[Any]:
    """A location in the compacted config -> the same place in the file (items left out counted)."""
    if len(loc) >= 2 and isinstance(data.get(loc[0]), list) and isinstance(loc[1], int):
        kept = [i for i, item in enumerate(data[loc[0]]) if item is not _GONE]
        if loc[1] < len(kept):
            return [loc[0], kept[loc[1]], *loc[2:]]
    return loc


def _original_key(data: dict[str, Any], key: str) -> str:
    parts: list[Any] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return ".".join(str(p) for p in _original(data, parts))


def _drop(data: dict[str, Any], loc: list[Any], dropped: list[str]) -> bool:
    """Leave out the value at loc; where that is no key of a table, the nearest enclosing one."""
    if not loc:
        return False
    if loc == ["gateway"]:
        # [gateway] is required and every other section refers to its addresses. Its one rule across
        # keys is the secret (given once): a stand-in lets the rest of the file be checked meanwhile.
        gateway = data.get("gateway")
        if isinstance(gateway, dict) and gateway.get("secret") != _STAND_IN_SECRET:
            gateway.pop("secret_file", None)
            gateway["secret"] = _STAND_IN_SECRET
            return True
        return False
    if len(loc) == 2 and isinstance(data.get(loc[0]), list) and isinstance(loc[1], int):
        items = data[loc[0]]
        if loc[1] >= len(items) or items[loc[1]] is _GONE:
            return False
        item = items[loc[1]]
        for key in ("id", "name"):
            if isinstance(item, dict) and isinstance(item.get(key), str):
                dropped.append(repr(item[key]))
        items[loc[1]] = _GONE
        return True
    node: Any = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _drop(data, loc[:-1], dropped)
    if isinstance(node, dict) and loc[-1] in node:
        del node[loc[-1]]
        return True
    return _drop(data, loc[:-1], dropped)


# --- Production checks: private data, a real secret, a writable store ------------------------------
# config.example.toml ships a secret starting with this marker; anyone who read the example can
# sign reply tokens with it (and so act as an agent), so only --dev runs accept it.
EXAMPLE_SECRET_MARKER = "change-me"


def state_base(config_folder: Path) -> Path:
    """Where relative [storage] paths resolve: systemd's StateDirectory= (it sets $STATE_DIRECTORY,
    e.g. /var/lib/mailgate) under the unit, whose ProtectSystem=strict makes the config folder
    read-only; else the config file's folder, as for a checkout's `var/`."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state and Path(state).is_absolute() else config_folder


def production_issues(config: Config) -> list[ConfigIssue]:
    """What stops this config from running for real: the example secret (outside --dev) and a store
    folder the process cannot write (`run` would exit 75 and systemd restart it forever)."""
    name, text = _source_text(config)
    issues: list[ConfigIssue] = []
    secret_key = "gateway.secret" if config.gateway.secret is not None else "gateway.secret_file"
    try:
        secret = config.secret_bytes()
    except OSError:
        secret = b""
    if not config.dev and secret.startswith(EXAMPLE_SECRET_MARKER.encode()):
        issues.append(ConfigIssue(name, key_line(text, secret_key), secret_key,
                                  "replace the example secret: e.g. `openssl rand -hex 32`"
                                  " (or run with --dev for a trial)"))
    for key, path, is_dir in (("storage.database", config.database_path, False),
                              ("storage.attachments", config.attachments_path, True)):
        problem = _unwritable(path, is_dir)
        if problem:
            issues.append(ConfigIssue(name, key_line(text, key) or key_line(text, "storage.database"), key, problem))
    return issues


def _unwritable(path: Path, is_dir: bool) -> str | None:
    """Why the process cannot create or write path, or None: as the daemon would find out only at its
    first mail (a read-only mount, a folder owned by another user, a file in the way)."""
    if path.exists():
        if is_dir and not path.is_dir():
            return f"{path} exists and is not a folder"
        if not is_dir and path.is_dir():
            return f"{path} is a folder, not a database file"
        if not os.access(path, os.W_OK | (os.X_OK if is_dir else 0)):
            return f"{path} is not writable by this user"
        if not is_dir and not os.access(path.parent, os.W_OK | os.X_OK):
            # SQLite writes its -wal and -journal files beside the database.
            return f"{path}: its folder {path.parent} is not writable (SQLite keeps its journal there)"
        return None
    # Not there yet: mailgate creates it, so the nearest existing folder above must let it.
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"cannot create {path}: {folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot create {path}: {folder} is not writable by this user (read-only under the unit?)"
    return None


def permission_warnings(config: Config) -> list[str]:
    """Secrets other local users can read: a config holding one inline and readable by group or
    others, a secret or password file readable by others. Warnings, not errors: the operator decides."""
    warnings: list[str] = []
    inline = ["gateway.secret"] if config.gateway.secret is not None else []
    if config.relay.password is not None and config.relay.password_file is None:
        inline.append("relay.password")
    inline += [f"imap.{i}.password" for i, account in enumerate(config.imap) if account.password is not None]
    if config.source is not None and inline:
        mode = _mode(config.source)
        if mode is not None and mode & 0o077:
            warnings.append(f"{config.source} holds {', '.join(inline)} inline and is readable by"
                            f" {'others' if mode & 0o007 else 'its group'} (mode {mode:04o}):"
                            " chmod 600 it, or move the secret to a file only mailgate reads (secret_file, password_file)")
    files = [("gateway.secret_file", config.gateway.secret_file), ("relay.password_file", config.relay.password_file)]
    files += [(f"imap.{i}.{key}", getattr(a, key)) for i, a in enumerate(config.imap)
              for key in ("password_file", "oauth2_token_file")]
    for key, path in files:
        mode = _mode(path) if path is not None else None
        if mode is not None and mode & 0o004:
            warnings.append(f"{key} {path} is readable by every local user (mode {mode:04o}): chmod 600 it")
    return warnings


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return None


def _source_text(config: Config) -> tuple[str, str]:
    if config.source is None:
        return "-", ""
    try:
        return str(config.source), config.source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return str(config.source), ""


def _issues(name: str, text: str, exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        parts = [str(p) for p in error["loc"]]
        key = ".".join(parts) or "-"
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if error["type"] == "extra_forbidden":
            message += _did_you_mean(error["loc"])
        elif error["type"].endswith("_type") and isinstance(error.get("input"), (str, int, float, bool)):
            # Strict types: say what TOML made of the value, e.g. the quotes around "yes" or "2526".
            message += f", not {_TOML_TYPES.get(type(error['input']), 'a value')} {_toml_repr(error['input'])}"
        issues.append(ConfigIssue(name, key_line(text, key), key, message))
    return issues


_TOML_TYPES = {str: "a string", bool: "a boolean", int: "an integer", float: "a float"}


def _toml_repr(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value[:60].replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    """ "; did you mean 'lmtp'?" for a typo'd key, from the names its table knows."""
    model = _model_at(loc[:-1])
    if model is None:
        return ""
    names = [f.alias or n for n, f in model.model_fields.items() if n != "source"]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that validates the table at loc (e.g. ("queues", 0, "sla", "high") -> SlaTimes)."""
    model: type[BaseModel] = Config
    in_container = False  # the next part is an index of a tuple or a key of a dict, not a field
    for part in loc:
        if in_container:
            in_container = False
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        inner = _model_in(field.annotation) if field is not None else None
        if field is None or inner is None:
            return None
        model, in_container = inner, _is_container(field.annotation)
    return None if in_container else model


def _is_container(annotation: object) -> bool:
    if get_origin(annotation) in (tuple, dict):
        return True
    return get_origin(annotation) in (Union, UnionType) and any(_is_container(a) for a in get_args(annotation))


def _is_model(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_in(annotation: object) -> type[BaseModel] | None:
    if _is_model(annotation):
        return annotation  # type: ignore[return-value]
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


_TABLE = re.compile(r"^\s*(\[\[?)\s*((?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*'))*)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*'))*)\s*=")
_PART = re.compile(r"[A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*'")


def _key_parts(dotted: str) -> list[str]:
    return [p.strip("\"'") for p in _PART.findall(dotted)]


def key_line(text: str, dotted: str) -> int | None:
    """The line where a dotted key (e.g. "imap.1.port", "queues.0.sla.high.first_response") is set.

    tomllib keeps no positions, so follow the table headers the way a reader of the file would:
    [[arrays]] count their items, [sub.tables] under one belong to its last item, and a dotted key
    or an inline table (`sla.high.first_response = 60`, `sla = { high = {...} }`) is found on its line.
    When the key is not in the file (a missing key), the line of its table.
    """
    wanted = dotted.split(".")
    table: list[str] = []
    counts: dict[str, int] = {}
    best: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        header = _TABLE.match(line)
        if header and not _KEY.match(line):
            names = _key_parts(header.group(2))
            table = []
            for i, part in enumerate(names):
                table.append(part)
                joined = ".".join(table)
                if header.group(1) == "[[" and i == len(names) - 1:
                    counts[joined] = counts.get(joined, -1) + 1
                    table.append(str(counts[joined]))
                elif joined in counts:  # a sub-table of an array's latest item
                    table.append(str(counts[joined]))
            if table == wanted[: len(table)]:
                best = number  # the key may be missing: point at its (deepest) table
            continue
        key = _KEY.match(line)
        if key:
            full = [*table, *_key_parts(key.group(1))]
            # The key itself, or an inline table / array on this line that holds it.
            if full == wanted[: len(full)] and len(full) > len(table):
                return number
    return best


def _routing_errors(config: Config, queue_names: list[str], agent_ids: list[str]) -> list[tuple[str, str]]:
    """Rules naming unknown queues or agents, patterns that do not compile, duplicate rule names."""
    errors: list[tuple[str, str]] = []
    if config.gateway.default_queue is not None and config.gateway.default_queue not in queue_names:
        errors.append(("gateway.default_queue", f"unknown queue {config.gateway.default_queue!r}"))
    seen: set[str] = set()
    for i, rule in enumerate(config.rules):
        if rule.name in seen:
            errors.append((f"rules.{i}.name", f"duplicate rule name {rule.name!r}"))
        seen.add(rule.name)
        if rule.queue is not None and rule.queue not in queue_names:
            errors.append((f"rules.{i}.queue", f"unknown queue {rule.queue!r}"))
        if rule.assignee is not None and rule.assignee not in agent_ids:
            errors.append((f"rules.{i}.assignee", f"unknown agent {rule.assignee!r}"))
        errors.extend(_condition_errors(rule, f"rules.{i}"))
    for i, test in enumerate(config.rule_tests):
        if test.queue is not None and test.queue not in queue_names:
            errors.append((f"rule_tests.{i}.queue", f"unknown queue {test.queue!r}"))
        if test.assignee is not None and test.assignee not in agent_ids:
            errors.append((f"rule_tests.{i}.assignee", f"unknown agent {test.assignee!r}"))
        for name in test.rules or ():
            if name not in seen:
                errors.append((f"rule_tests.{i}.rules", f"unknown rule {name!r}"))
    return errors


def _condition_errors(cond: _ConditionFields, key: str) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    for field in MATCH_FIELDS:
        match: MatchConfig | None = getattr(cond, field)
        if match is None:
            continue
        if match.regex is not None:
            try:
                re.compile(match.regex)
            except re.error as exc:
                errors.append((f"{key}.{field}.regex", f"bad regex {match.regex!r}: {exc}"))
        allowed = {"language": DETECTED_LANGUAGES, "kind": MAIL_KINDS}.get(field, ())
        for value in (match.equals or ()) if allowed else ():
            if value.lower() not in allowed:
                errors.append((f"{key}.{field}.equals", f"{value!r} is not one of {', '.join(allowed)}"))
    for combinator in ("all", "any"):
        for j, child in enumerate(getattr(cond, combinator) or ()):
            errors.extend(_condition_errors(child, f"{key}.{combinator}.{j}"))
    if cond.not_ is not None:
        errors.extend(_condition_errors(cond.not_, f"{key}.not"))
    return errors
