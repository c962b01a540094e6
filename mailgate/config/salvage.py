"""A broken config, salvaged: invalid keys left out so the sections that did validate are still cross-checked."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from mailgate.config.model import Config


def salvage(data: dict[str, Any], exc: ValidationError) -> tuple[Config | None, list[str], dict[str, Any]]:
    """The config with every invalid key left out (defaults in its place), for the cross-section check.

    An invalid key falls back to its default; an item of a list ([[queues]], [[agents]] ...) that still
    fails is left out, and what the others say about it by name ("unknown agent 'anna'") is not reported.
    The config is None when nothing usable remains (e.g. [gateway] itself is broken).
    """
    data = _copy(data)
    dropped: list[str] = []
    for _ in range(20):
        changed = False
        for error in exc.errors():
            loc = _original(data, list(error["loc"]))
            changed |= _drop(data, loc[:-1] if error["type"] == "missing" else loc, dropped)
        if not changed:
            return None, dropped, data
        try:
            return Config.model_validate(_compact(data)), dropped, data
        except ValidationError as again:
            exc = again
    return None, dropped, data


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


_STAND_IN_SECRET = "stand-in secret for the cross-section check"
_GONE = object()  # a left-out item of a top-level array; others keep their positions (queues.3 stays 3)


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {k: [x for x in v if x is not _GONE] if isinstance(v, list) else v for k, v in data.items()}


def _original(data: dict[str, Any], loc: list[Any]) -> list[Any]:
    """A location in the compacted config -> the same place in the file (items left out counted)."""
    if len(loc) >= 2 and isinstance(data.get(loc[0]), list) and isinstance(loc[1], int):
        kept = [i for i, item in enumerate(data[loc[0]]) if item is not _GONE]
        if loc[1] < len(kept):
            return [loc[0], kept[loc[1]], *loc[2:]]
    return loc


def original_key(data: dict[str, Any], key: str) -> str:
    parts: list[Any] = [int(p) if p.isdigit() else p for p in key.split(".")]
    return ".".join(str(p) for p in _original(data, parts))


def _drop(data: dict[str, Any], loc: list[Any], dropped: list[str]) -> bool:
    """Leave out the value at loc; where that is no key of a table, the nearest enclosing one."""
    if not loc:
        return False
    if loc == ["gateway"]:
        # [gateway] is required and every other section refers to its addresses. Its one rule across
        # keys is the secret (given once): a stand-in lets the rest of the file be checked meanwhile.
        gateway = data.get("gateway")
        if isinstance(gateway, dict) and gateway.get("secret") != _STAND_IN_SECRET:
            gateway.pop("secret_file", None)
            gateway["secret"] = _STAND_IN_SECRET
            return True
        return False
    if len(loc) == 2 and isinstance(data.get(loc[0]), list) and isinstance(loc[1], int):
        items = data[loc[0]]
        if loc[1] >= len(items) or items[loc[1]] is _GONE:
            return False
        item = items[loc[1]]
        for key in ("id", "name"):
            if isinstance(item, dict) and isinstance(item.get(key), str):
                dropped.append(repr(item[key]))
        items[loc[1]] = _GONE
        return True
    node: Any = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _drop(data, loc[:-1], dropped)
    if isinstance(node, dict) and loc[-1] in node:
        del node[loc[-1]]
        return True
    return _drop(data, loc[:-1], dropped)

