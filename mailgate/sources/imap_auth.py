"""The login secret of an IMAP account: a password (inline, file, environment) or an XOAUTH2 token."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Literal

from mailgate.config import ImapAccount

TOKEN_COMMAND_TIMEOUT = 30.0


class CredentialsUnavailable(Exception):
    """The secret cannot be read now (missing file or variable, failing command)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    mechanism: Literal["password", "xoauth2"]
    secret: str

    def __repr__(self) -> str:  # never print the secret, even in a traceback
        return f"Credentials(mechanism={self.mechanism!r}, secret=<hidden>)"


def _read(path: os.PathLike[str], what: str) -> str:
    try:
        value = open(path, encoding="utf-8").read().strip()  # noqa: SIM115 - short read
    except OSError as exc:
        raise CredentialsUnavailable(f"cannot read {what} {os.fspath(path)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CredentialsUnavailable(f"{what} {os.fspath(path)!r} is not UTF-8") from exc
    if not value:
        raise CredentialsUnavailable(f"{what} {os.fspath(path)!r} is empty")
    return value


def _run(command: tuple[str, ...]) -> str:
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=TOKEN_COMMAND_TIMEOUT, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CredentialsUnavailable(f"oauth2_token_command {command[0]!r} failed: {exc}") from exc
    if done.returncode != 0:
        # Only the first line of stderr: a token helper's output is not ours to spread in logs.
        first = done.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
        raise CredentialsUnavailable(
            f"oauth2_token_command {command[0]!r} exited {done.returncode}: {first[0] if first else ''}"
        )
    token = done.stdout.decode("utf-8", "replace").strip()
    if not token:
        raise CredentialsUnavailable(f"oauth2_token_command {command[0]!r} printed no token")
    return token


def credentials(account: ImapAccount) -> Credentials:
    """Read the secret now: tokens expire, files get rotated, so this runs before every login (blocking)."""
    if account.password is not None:
        return Credentials("password", account.password.get_secret_value())
    if account.password_file is not None:
        return Credentials("password", _read(account.password_file, "password_file"))
    if account.password_env is not None:
        value = os.environ.get(account.password_env)
        if not value:
            raise CredentialsUnavailable(f"environment variable {account.password_env} is not set")
        return Credentials("password", value)
    if account.oauth2_token_file is not None:
        return Credentials("xoauth2", _read(account.oauth2_token_file, "oauth2_token_file"))
    if account.oauth2_token_command is not None:
        return Credentials("xoauth2", _run(account.oauth2_token_command))
    raise CredentialsUnavailable("no password or token configured")
