"""TOML config → frozen, validated objects; every error names file, line and key."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
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


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


class AgentConfig(_Model):
    """An agent: who may act on tickets by mail, from which addresses, in which queues."""

    id: Ident
    name: str
    addresses: tuple[PersonAddress, ...] = Field(min_length=1)
    queues: tuple[Ident, ...] = ()
    away: bool = False
    language: Language | None = None


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
    timeout: float = Field(default=300, gt=0)

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: object) -> HostPort:
        return parse_listen(value)


class Config(_Model):
    """The whole config, parsed once."""

    gateway: GatewayConfig
    storage: StorageConfig = StorageConfig()
    smtp: SmtpConfig = SmtpConfig()
    queues: tuple[QueueConfig, ...] = ()
    agents: tuple[AgentConfig, ...] = ()

    # Set by load(): where the file lives, so relative paths resolve against it.
    source: Path | None = None

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
    storage = data.get("storage")
    if isinstance(storage, dict):
        for key in ("database", "attachments"):
            if isinstance(storage.get(key), str):
                storage[key] = str(base / os.path.expanduser(storage[key]))
    gateway = data.get("gateway")
    if isinstance(gateway, dict) and isinstance(gateway.get("secret_file"), str):
        gateway["secret_file"] = str(base / os.path.expanduser(gateway["secret_file"]))


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
        raise ConfigError(_issues(name, text, exc)) from exc
    cross = config.cross_check()
    if cross:
        raise ConfigError([ConfigIssue(name, key_line(text, key), key, message) for key, message in cross])
    if config.gateway.secret_file is not None:
        try:
            secret = config.secret_bytes()
        except OSError as exc:
            raise ConfigError(
                [ConfigIssue(name, key_line(text, "gateway.secret_file"), "gateway.secret_file",
                             f"cannot read: {exc.strerror or exc}")]
            ) from exc
        if len(secret) < 16:
            raise ConfigError(
                [ConfigIssue(name, key_line(text, "gateway.secret_file"), "gateway.secret_file",
                             "the secret must be at least 16 characters")]
            )
    return config


def _issues(name: str, text: str, exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        parts = [str(p) for p in error["loc"]]
        key = ".".join(parts) or "-"
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        issues.append(ConfigIssue(name, key_line(text, key), key, message))
    return issues


_TABLE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")


def key_line(text: str, dotted: str) -> int | None:
    """The line where a dotted key (e.g. "imap.1.port") is set, or its table starts.

    tomllib keeps no positions, so follow the table headers the way a reader of the file would.
    """
    wanted = dotted.split(".")
    table: list[str] = []
    counts: dict[str, int] = {}
    best: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        header = _TABLE.match(line)
        if header and not _KEY.match(line):
            names = [n.strip().strip("\"'") for n in header.group(2).split(".")]
            if header.group(1) == "[[":
                joined = ".".join(names)
                index = counts.get(joined, -1) + 1
                counts[joined] = index
                table = [*names, str(index)]
            else:
                table = names
            if table == wanted[: len(table)] and best is None and len(table) == len(wanted):
                best = number
            if table == wanted[: len(table)] and len(table) < len(wanted) and best is None:
                best = number  # the key is missing: point at its table
            continue
        key = _KEY.match(line)
        if key and [*table, key.group(1).strip('"')] == wanted[: len(table) + 1]:
            return number
    return best
