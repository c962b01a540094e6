"""Checks for a production run: no example secret, a writable store, secrets other users cannot read."""

from __future__ import annotations

import os
from pathlib import Path

from mailgate.config.issues import ConfigIssue
from mailgate.config.locate import key_line
from mailgate.config.model import Config

# config.example.toml ships a secret starting with this marker; anyone who read the example can
# sign reply tokens with it (and so act as an agent), so only --dev runs accept it.
EXAMPLE_SECRET_MARKER = "change-me"


def production_issues(config: Config) -> list[ConfigIssue]:
    """What stops this config from running for real: the example secret (outside --dev) and a store
    folder the process cannot write (`run` would exit 75 and systemd restart it forever)."""
    name, text = source_text(config)
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
    paths = [("storage.attachments", config.attachments_path, True)]
    if config.storage.engine == "sqlite":  # PostgreSQL's own files are the server's business
        paths.insert(0, ("storage.database", config.database_path, False))
    elif config.storage.password_file is not None:
        problem = _unreadable(config.storage.password_file)
        if problem:
            issues.append(ConfigIssue(name, key_line(text, "storage.password_file"), "storage.password_file", problem))
    for key, path, is_dir in paths:
        problem = _unwritable(path, is_dir)
        if problem:
            issues.append(ConfigIssue(name, key_line(text, key) or key_line(text, "storage.database"), key, problem))
    return issues


def _unreadable(path: Path) -> str | None:
    """Why the process cannot read a secret file, or None."""
    if not path.is_file():
        return f"{path} is not a file"
    if not os.access(path, os.R_OK):
        return f"{path} is not readable by this user"
    return None


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
    inline += [f"web.sites.{i}.token" for i, site in enumerate(config.web.sites) if site.token_file is None]
    if config.source is not None and inline:
        mode = _mode(config.source)
        if mode is not None and mode & 0o077:
            warnings.append(f"{config.source} holds {', '.join(inline)} inline and is readable by"
                            f" {'others' if mode & 0o007 else 'its group'} (mode {mode:04o}):"
                            " chmod 600 it, or move the secret to a file only mailgate reads (secret_file, password_file)")
    files = [("gateway.secret_file", config.gateway.secret_file), ("relay.password_file", config.relay.password_file)]
    files += [(f"imap.{i}.{key}", getattr(a, key)) for i, a in enumerate(config.imap)
              for key in ("password_file", "oauth2_token_file")]
    files += [(f"web.sites.{i}.token_file", site.token_file) for i, site in enumerate(config.web.sites)]
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


def source_text(config: Config) -> tuple[str, str]:
    if config.source is None:
        return "-", ""
    try:
        return str(config.source), config.source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return str(config.source), ""

