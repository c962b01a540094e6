"""What every CLI command shares: load the config, run one transaction, report a refusal, print JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from mailgate import config as config_mod
from mailgate.config import Config, ConfigError
from mailgate.errors import Refused
from mailgate.store import StoreUnavailable, Txn, store_for

T = TypeVar("T")
EX_TEMPFAIL = 75  # sysexits: the store is unavailable now, try again later


def load_config(ctx: click.Context, exit_code: int = 1) -> Config:
    """The config named by --config; every error printed with file, line and key, then exit."""
    try:
        return config_mod.load(ctx.obj["config_path"])
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(f"config error: {issue}", err=True)
        ctx.exit(exit_code)
        raise AssertionError("unreachable") from exc


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


def out(as_json: bool, data: dict[str, Any], text: str) -> None:
    """A success: an {"ok": true, …} object with --json, else one line of text."""
    if as_json:
        emit_json({"ok": True, **data})
    else:
        click.echo(text)


def run_txn(
    ctx: click.Context,
    as_json: bool,
    work: Callable[[Config, Txn], Awaitable[T]],
    *,
    write: bool = True,
    config: Config | None = None,
) -> T:
    """One transaction around `work`: all of it or, on a refusal (exit 1, reason printed), none of it."""
    config = config or load_config(ctx)

    async def go() -> T:
        async with store_for(config) as store:
            if write:
                async with store.txn() as tx:
                    return await work(config, tx)
            async with store.read() as tx:
                return await work(config, tx)

    try:
        return asyncio.run(go())
    except StoreUnavailable as exc:
        click.echo(f"store unavailable: {exc}", err=True)
        ctx.exit(EX_TEMPFAIL)
    except Refused as exc:
        if as_json:
            emit_json({"ok": False, "error": str(exc)})
        click.echo(f"refused: {exc}", err=True)
        ctx.exit(1)
    raise AssertionError("unreachable")
