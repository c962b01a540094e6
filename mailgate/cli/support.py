"""What every CLI command shares: load the config, run one transaction, report a refusal, print JSON."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailgate import config as config_mod
from mailgate.config import AgentConfig, Config, ConfigError
from mailgate.errors import Refused
from mailgate.store import StoreUnavailable, Txn, store_for

log = logging.getLogger("mailgate.cli")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
EX_TEMPFAIL = 75  # sysexits: the store is unavailable now, try again later
# SQLite stores INTEGER in 64 signed bits: a larger Python int raises OverflowError in the driver,
# so every number a user types is checked against this before it reaches a query.
MAX_ID = 2**63 - 1


if TYPE_CHECKING:
    _IntParam = click.ParamType[int]
    _TextParam = click.ParamType[str]
else:  # click made ParamType generic in 8.2; the 8.1 that pyproject allows cannot subscript it at runtime
    _IntParam = _TextParam = click.ParamType


class RowNumber(_IntParam):
    """A ticket number or row id: a plain decimal from 1 to 2**63-1, else a usage error (never a traceback)."""

    name = "number"

    def __init__(self, what: str = "ticket number") -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            text = str(value).strip()
            # str.isdigit() accepts "²" and other digits int() refuses; only ASCII decimals are numbers here.
            if not (text.isascii() and text.isdecimal()) or len(text) > 19:
                self.fail(f"{value!r} is not a valid {self.what} (a whole number from 1 to {MAX_ID})", param, ctx)
            number = int(text)
        if not 1 <= number <= MAX_ID:
            self.fail(f"{value!r} is not a valid {self.what} (a whole number from 1 to {MAX_ID})", param, ctx)
        return number


class IdOrText(_TextParam):
    """An id or a name/address (contacts): all-digit input must be a valid id, the rest passes as text."""

    name = "id-or-address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if text and text.isdigit():
            return str(RowNumber("contact id").convert(text, param, ctx))
        return text


TICKET = RowNumber("ticket number")
ROW_ID = RowNumber("id")
CONTACT = IdOrText()
LIMIT = click.IntRange(1, 100_000)  # how many rows a listing shows


def _wants_json(ctx: click.Context) -> bool:
    return "--json" in ctx.meta.get("mailgate.argv", ())


class SafeGroup(click.Group):
    """The top-level group: with --json a usage error or failure is a JSON object too, and no command
    ever ends in a traceback (scripts parse stdout; a traceback there is unparseable and leaks internals)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["mailgate.argv"] = tuple(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if _wants_json(ctx):
                emit_json({"ok": False, "error": exc.format_message(), "usage": isinstance(exc, click.UsageError)})
            raise
        except (click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
            message = f"{type(exc).__name__}: {exc}"
            log.debug("cli.failed error=%s", message, exc_info=True)  # the traceback only with --log-level DEBUG
            if _wants_json(ctx):
                emit_json({"ok": False, "error": message})
            click.echo(f"error: {message}", err=True)
            ctx.exit(1)


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


def read(ctx: click.Context, reader: Callable[[Txn], Awaitable[T]]) -> T:
    """One read transaction around `reader`; an unavailable store exits 75 (sysexits EX_TEMPFAIL)."""
    return run_txn(ctx, False, lambda _config, tx: reader(tx), write=False)


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


def as_agent(help_text: str = "The agent id this is done as.") -> Callable[[F], F]:
    """--as AGENT; --agent, its older spelling, still works (operators' scripts) but is hidden from help."""

    def decorate(f: F) -> F:
        f = click.option("--agent", "agent_alias", default=None, hidden=True)(f)
        return click.option("--as", "agent_id", default=None, help=help_text)(f)

    return decorate


def acting_agent(config: Config, agent_id: str | None, *, needed: bool = False) -> AgentConfig | None:
    """The agent named by --as, refused when unknown (or missing where the command acts for someone)."""
    if agent_id is None:
        if needed:
            raise Refused("--as is needed: the agent on whose behalf this is done (answers go to them)")
        return None
    agent = config.agent(agent_id)
    if agent is None:
        raise Refused(f"unknown agent {agent_id!r} (--as)")
    return agent
