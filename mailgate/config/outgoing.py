"""[relay] and [outbox]: where outgoing mail goes and how it waits, retries and stays polite."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from mailgate.config.base import MailAddress, StrictModel, is_loopback


class RelayConfig(StrictModel):
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


class OutboxConfig(StrictModel):
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

