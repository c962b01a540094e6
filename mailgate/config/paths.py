"""Where the relative paths of a config file resolve: beside the file, or under systemd's state folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Paths in the config are relative to the config file, not to the working directory."""
    state = state_base(base)
    storage = data.get("storage")
    if isinstance(storage, dict):
        url = storage.get("url")
        if isinstance(url, str) and url.startswith("sqlite:///") and len(url) > 10 and "database" not in storage:
            # SQLAlchemy's spelling, which operators know: sqlite:///relative, sqlite:////absolute. It is
            # the `database` path; anything else (both keys, a malformed URL) is left for the check to name.
            storage["database"] = url[len("sqlite:///"):]
            del storage["url"]
        if isinstance(storage.get("url"), str) and "attachments" not in storage:
            # Without a database file to sit beside, attachment files go under the state folder
            # (never the working directory); several daemons need this folder shared (README).
            storage["attachments"] = str(state / "mailgate.attachments")
        if isinstance(storage.get("password_file"), str):
            storage["password_file"] = str(base / os.path.expanduser(storage["password_file"]))
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
    web = data.get("web")
    for site in (web.get("sites") or ()) if isinstance(web, dict) else ():
        if isinstance(site, dict) and isinstance(site.get("token_file"), str):
            site["token_file"] = str(base / os.path.expanduser(site["token_file"]))
    for account in data.get("imap") or ():
        for key in ("password_file", "oauth2_token_file", "ca_file"):
            if isinstance(account, dict) and isinstance(account.get(key), str):
                account[key] = str(base / os.path.expanduser(account[key]))


def state_base(config_folder: Path) -> Path:
    """Where relative [storage] paths resolve: systemd's StateDirectory= (it sets $STATE_DIRECTORY,
    e.g. /var/lib/mailgate) under the unit, whose ProtectSystem=strict makes the config folder
    read-only; else the config file's folder, as for a checkout's `var/`."""
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state and Path(state).is_absolute() else config_folder

