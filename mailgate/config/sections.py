"""The smaller sections: [gateway], [tickets], [storage], [http], [storms], [retention]."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from mailgate.config.base import HostPort, Language, MailAddress, StrictModel, TimeZoneName, parse_listen


class GatewayConfig(StrictModel):
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
    # Agent identity: Authentication-Results from these authserv-ids (the operator's own MTA) are trusted;
    # any other host can write "dkim=pass" into a header (RFC 8601 section 5).
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


class TicketsConfig(StrictModel):
    """Ticket life: reopening, SLA warnings."""

    # A customer reply to a ticket resolved longer ago than this opens a new, linked ticket.
    reopen_days: float = Field(default=14, ge=0)
    sla_warning_percent: int = Field(default=80, ge=1, le=99)  # warn the assignee at this share of a deadline
    # Who a ticket mails. One mail with 1,000 Cc addresses must not make 1,000 parties that every
    # agent reply then goes to: past this many Cc parties the rest are left out, and the agent is told.
    max_cc_parties: int = Field(default=20, ge=0, le=1000)
    # An agent's reply goes to at most this many envelope recipients (the customer and Cc parties),
    # however the parties grew (merges, the CLI, older data); the agent's confirmation names the rest.
    max_reply_recipients: int = Field(default=25, ge=1, le=1000)


class StorageConfig(StrictModel):
    database: Path = Path("mailgate.sqlite3")
    # The database as a URL: "sqlite:///relative.sqlite3", "sqlite:////var/lib/mailgate/db.sqlite3", or
    # "postgresql://mailgate@db.example.org/mailgate?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem"
    # (libpq's query keys for TLS). Unset: the SQLite file `database`.
    url: str | None = None
    # PostgreSQL's password: from a file or an environment variable, never inline in the URL, which
    # shows in `ps`, logs, support tickets and backups of the config. Neither: ~/.pgpass, or trust/peer.
    password_file: Path | None = None
    password_env: str | None = None
    connect_timeout: float = Field(default=10.0, gt=0)  # seconds to reach PostgreSQL
    attachments: Path | None = None  # default: "<database>.attachments" beside the database
    synchronous: str = Field(default="NORMAL", pattern="^(NORMAL|FULL)$")
    busy_timeout: float = Field(default=10.0, gt=0)  # seconds to wait for another writer
    # This daemon's name on rows it claims, when several share one database; default: the host name
    # and a hash of the config file's path (see config/node.py).
    node: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
    # Seconds a claim on outbox and spool rows holds before another daemon takes it over; default:
    # max(300, 4 × relay.timeout), long enough for a batch to be handed to the relay.
    lease: float | None = Field(default=None, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if scheme == "sqlite" and value.startswith("sqlite:///") and len(value) > 10:
            # A well-formed one became `database` while paths were resolved (config/paths.py).
            raise ValueError("give either 'url' or 'database', not both")
        if not sep or scheme not in ("postgresql", "postgres"):
            raise ValueError("give sqlite:///PATH or postgresql://USER@HOST[:PORT]/DATABASE")
        userinfo = rest.split("/", 1)[0].rpartition("@")[0]
        if ":" in userinfo:
            raise ValueError("no password in the URL: it shows in `ps`, logs and config backups;"
                             " use storage.password_file or storage.password_env")
        if not rest.split("?", 1)[0].partition("/")[2]:
            raise ValueError("name the database: postgresql://USER@HOST/DATABASE")
        return value

    @model_validator(mode="after")
    def _one_password(self) -> StorageConfig:
        if self.url is not None and "database" in self.model_fields_set:
            raise ValueError("give either 'url' or 'database', not both")
        if self.password_file is not None and self.password_env is not None:
            raise ValueError("give at most one of 'password_file' or 'password_env'")
        if (self.password_file is not None or self.password_env is not None) and self.url is None:
            raise ValueError("'password_file' and 'password_env' are for a postgresql:// url")
        return self

    @property
    def engine(self) -> str:
        """"postgresql" when `url` names a PostgreSQL database, else "sqlite"."""
        return "sqlite" if self.url is None else "postgresql"


class HttpConfig(StrictModel):
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


class StormConfig(StrictModel):
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


class RetentionConfig(StrictModel):
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
