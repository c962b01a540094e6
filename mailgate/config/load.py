"""Read a config file: TOML, validation, secrets kept in files, and every error with file:line:key."""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from types import UnionType
from typing import Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

from mailgate.config.issues import ConfigError, ConfigIssue
from mailgate.config.locate import key_line
from mailgate.config.model import Config
from mailgate.config.paths import resolve_paths
from mailgate.config.salvage import original_key, salvage


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
    resolve_paths(data, path.resolve().parent)
    data["source"] = str(path.resolve())
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        # Operators fix a file once, not in rounds: the sections that did validate are still checked
        # against each other, so an unknown queue shows up next to a typo'd key in the same run.
        issues = _issues(name, text, exc)
        partial, dropped, kept = salvage(data, exc)
        if partial is not None:
            for key, message in _cross_errors(partial):
                key = original_key(kept, key)
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

