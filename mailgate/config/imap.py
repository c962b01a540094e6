"""[[imap]]: the mailboxes mailgate fetches from, how it logs in, and what it does after storing."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from mailgate.config.base import Ident, MailAddress, StrictModel, is_loopback


class ImapAccount(StrictModel):
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

