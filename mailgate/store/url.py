"""Where a PostgreSQL store lives: the URL of the config, and the password kept out of it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class Location:
    """A PostgreSQL URL (libpq's form; TLS as its query keys: sslmode, sslrootcert …) and its password."""

    url: str
    password: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, url: str, password_file: Path | None = None, password_env: str | None = None) -> Location:
        """The location a config names, the password read now (a file rotated later is read at the next start)."""
        password = None
        if password_file is not None:
            password = password_file.read_text(encoding="utf-8").strip("\r\n")
        elif password_env is not None:
            password = os.environ.get(password_env)
            if password is None:
                raise ValueError(f"storage.password_env: the environment has no {password_env}")
        return cls(url, password)

    def display(self) -> str:
        """The URL for logs and `db status`: the query (certificate paths) left out, never a password."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))

    def display_path(self) -> Path:
        return Path(self.display())

    def connect_args(self) -> dict[str, object]:
        args: dict[str, object] = {"dsn": self.url}
        if self.password is not None:
            args["password"] = self.password
        return args
