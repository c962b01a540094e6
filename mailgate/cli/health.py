"""CLI: `mailgate health [--json]` for scripts and monitoring: exit 0 when the daemon is well, 1 when not."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import click

from mailgate.cli.support import emit_json, load_config
from mailgate.config import Config
from mailgate.runners import health
from mailgate.store import stats, store_for

TIMEOUT = 10.0


@click.command("health")
@click.option("--url", default=None, help="The daemon's listener, e.g. http://127.0.0.1:9925 (default: from [http] listen).")
@click.option("--store", "direct", is_flag=True,
              help="Read the database instead of asking the daemon (no worker check: works while it is down).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def health_command(ctx: click.Context, url: str | None, direct: bool, as_json: bool) -> None:
    """Ask the running daemon's /healthz (store, workers, relay); without [http] listen, check the store."""
    config = load_config(ctx)
    if url is None and config.http.listen is not None and not direct:
        url = _local_url(config)
    report = asyncio.run(_from_store(config)) if url is None or direct else _from_daemon(url)
    ok = report.get("status") == "ok"
    if as_json:
        emit_json(report)
    else:
        problems = report.get("problems") or []
        click.echo(f"{report.get('status', 'failing')}" + (f": {'; '.join(problems)}" if problems else ""))
        for key in ("store", "relay", "spooled", "queued", "failed", "dead"):
            if key in report:
                click.echo(f"  {key}: {report[key]}")
        for name, state in (report.get("workers") or {}).items():
            click.echo(f"  worker {name}: {state}")
    ctx.exit(0 if ok else 1)


def _local_url(config: Config) -> str:
    listen = config.http.listen
    assert listen is not None
    # A wildcard bind answers on loopback too; connect there rather than to "0.0.0.0".
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listen.host, listen.host)
    return f"http://[{host}]:{listen.port}" if ":" in host else f"http://{host}:{listen.port}"


def _from_daemon(url: str) -> dict[str, Any]:
    target = url.rstrip("/") + "/healthz"
    try:
        with urllib.request.urlopen(target, timeout=TIMEOUT) as answer:  # noqa: S310 (the operator's own URL)
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as exc:
        try:
            return dict(json.loads(exc.read()))
        except ValueError:
            return {"status": "failing", "problems": [f"{target} answered {exc.code}"]}
    except (OSError, ValueError) as exc:  # refused, timed out, not our JSON: the daemon is not answering
        return {"status": "failing", "problems": [f"daemon not answering at {target}: {exc}"]}


async def _from_store(config: Config) -> dict[str, Any]:
    """The database alone: writable, and what waits or failed in it (the workers need the daemon)."""
    try:
        store = await store_for(config).open()
    except Exception as exc:
        return {"status": "failing", "store": str(exc), "problems": [f"store: {exc}"]}
    try:
        writable = await health.store_writable(store)
        report: dict[str, Any] = {"store": writable}
        if writable == "writable":
            report.update(await health.status_counts(store))
            async with store.read() as tx:
                report["dead"] = await stats.spool_count(tx, "dead")
    finally:
        await store.close()
    problems = [] if writable == "writable" else [f"store: {writable}"]
    return {"status": "ok" if not problems else "failing", "problems": problems, **report}


def attach(main: click.Group) -> None:
    main.add_command(health_command)
