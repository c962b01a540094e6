"""`mailgate config show`: the effective config as TOML or JSON; and where check-config looks at the disk."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, SecretStr

from mailgate.cli.support import emit_json, load_config
from mailgate.config import HostPort, RuleConfig

MASK = "********"
# `stop = false` and `continue = true` are two spellings of one setting: a rule's default `stop`
# shown beside its `continue = true` would read (and load) as a contradiction, so it shows only when set.
_ONLY_WHEN_SET = {(RuleConfig, "stop")}


def effective(model: BaseModel, *, all_keys: bool) -> dict[str, Any]:
    """The config as plain TOML-able values: set keys (or every key), secrets masked, unset keys left out."""
    out: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        if name == "source":
            continue
        value = getattr(model, name)
        default = not field.is_required() and value == field.get_default(call_default_factory=True)
        if default and (not all_keys or (type(model), name) in _ONLY_WHEN_SET and name not in model.model_fields_set):
            continue
        plain = _plain(value, all_keys)
        if plain is not None:
            out[field.alias or name] = plain
    return out


def _plain(value: Any, all_keys: bool) -> Any:
    if value is None:
        return None  # TOML has no null: an unset key is simply absent
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, HostPort):
        return str(value)
    if isinstance(value, BaseModel):
        return effective(value, all_keys=all_keys)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, all_keys) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v, all_keys) for v in value]
    return value


def to_toml(data: dict[str, Any]) -> str:
    """TOML for the effective config: a [table] or [[array]] per section, nested values inline."""
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]", *(f"{k} = {_value(v)}" for k, v in value.items())]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                lines += ["", f"[[{key}]]", *(f"{k} = {_value(v)}" for k, v in item.items())]
        else:
            lines.insert(0, f"{key} = {_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


@click.group("config")
def config_group() -> None:
    """The config as mailgate reads it."""


@config_group.command("show")
@click.option("--all", "all_keys", is_flag=True, help="Every key, defaults included (else only what differs).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of TOML.")
@click.pass_context
def config_show(ctx: click.Context, all_keys: bool, as_json: bool) -> None:
    """Print the effective config (like postconf -n): paths resolved, secrets masked as ********."""
    config = load_config(ctx)
    data = effective(config, all_keys=all_keys)
    if as_json:
        emit_json(data)
    else:
        click.echo(f"# {config.source}", nl=True)
        click.echo(to_toml(data), nl=False)


def attach(main: click.Group) -> None:
    main.add_command(config_group)
