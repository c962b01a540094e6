"""The base model every config section shares, and the value types its fields use."""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")


def _address(value: str) -> str:
    value = value.strip().lower()
    if not _ADDRESS.match(value):
        raise ValueError(f"not a mail address: {value!r}")
    if "+" in value.split("@", 1)[0]:
        raise ValueError(f"support addresses carry no '+' part (mailgate adds its own): {value!r}")
    return value


MailAddress = Annotated[str, AfterValidator(_address)]


def _zone_name(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (e.g. 'Europe/Helsinki', 'UTC')") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(_zone_name)]


def _mentions(annotation: object, kind: type) -> bool:
    """Whether a field's type is `kind` or holds it (Path | None, tuple[Path, ...], tuple[str, ...] | None)."""
    return (
        annotation is kind
        or get_origin(annotation) is kind
        or any(_mentions(arg, kind) for arg in get_args(annotation))
    )


class StrictModel(BaseModel):
    """A config table: frozen, no unknown keys, and TOML's own value types only."""

    # Strict: TOML already types every value, so `lmtp = "yes"`, `port = "2526"` or `away = "off"`
    # is a slip, refused with its line. Lax parsing guessed at such words ("off" was false, "of" an
    # error) and let a value work in one place that another reader of the file takes differently.
    # Only what TOML itself cannot spell is converted (see _toml_types); int -> float stays allowed.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _toml_types(cls, data: object) -> object:
        # TOML has arrays, not tuples, and strings, not paths: convert just those two, by field type.
        if not isinstance(data, dict):
            return data
        fields = {f.alias or name: f for name, f in cls.model_fields.items()}
        out = dict(data)
        for key, value in data.items():
            field = fields.get(key)
            if field is None:
                continue
            if isinstance(value, list) and _mentions(field.annotation, tuple):
                out[key] = tuple(value)
            elif isinstance(value, str) and _mentions(field.annotation, Path):
                out[key] = Path(value)
        return out


class HostPort(BaseModel):
    model_config = ConfigDict(frozen=True)
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def ip_networks(value: object) -> object:
    """A list of addresses or networks (one string is a list of one), each checked; for a field validator."""
    value = (value,) if isinstance(value, str) else value
    if isinstance(value, (list, tuple)):
        for item in value:
            try:
                ipaddress.ip_network(str(item).strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network (e.g. '127.0.0.1', '10.0.0.0/24')") from exc
    return value


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


WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

