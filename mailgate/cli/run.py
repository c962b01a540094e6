"""`mailgate run` and `mailgate check-config`: start the daemon, or say whether a config can run it."""

from __future__ import annotations

import asyncio
import logging

import click

from mailgate import config as config_mod
from mailgate import rules
from mailgate.cli import db as cli_db
from mailgate.cli.support import load_config
from mailgate.outgoing import report_mail, saved_replies, templates
from mailgate.rules import report as rules_report
from mailgate.sources import pipe
from mailgate.store import SchemaTooNew, StoreUnavailable

log = logging.getLogger("mailgate.cli")

DEV = click.option("--dev", is_flag=True, help="A trial run: accept the example secret (never in production);"
                   " with run, outgoing mail goes to var/outgoing (Maildir, beside the config) unless [relay] names one.")


def _production_config(ctx: click.Context, dev: bool, *, print_warnings: bool = False) -> config_mod.Config:
    """The config, refused (file:line:key, exit 1) when it cannot run for real; each warning is one
    log line (the daemon's) or one printed line (check-config's)."""
    config = load_config(ctx).model_copy(update={"dev": dev})
    issues = config_mod.production_issues(config)
    for issue in issues:
        click.echo(f"config error: {issue}", err=True)
    if issues:
        ctx.exit(1)
    for warning in config_mod.permission_warnings(config):
        if print_warnings:
            click.echo(f"warning: {warning}", err=True)
        else:
            log.warning("config.insecure %s", warning)
    return config


@click.command()
@DEV
@click.pass_context
def run(ctx: click.Context, dev: bool) -> None:
    """Run the daemon: receive mail by SMTP/LMTP and thread it into tickets."""
    # Loaded here, not at the top: `ingest` runs once per delivered mail from Postfix's pipe(8),
    # and the daemon's stack (aiosmtpd, APScheduler, imapclient) would slow every delivery.
    from mailgate import daemon

    config = _production_config(ctx, dev)
    if dev:
        config = config_mod.dev_outgoing(config)
    try:
        asyncio.run(daemon.run(config))
    except SchemaTooNew as exc:
        # EX_CONFIG, not EX_TEMPFAIL: no restart helps until mailgate is upgraded or a backup restored.
        click.echo(f"cannot start: {exc}", err=True)
        ctx.exit(cli_db.EX_CONFIG)
    except StoreUnavailable as exc:
        click.echo(f"store unavailable: {exc}", err=True)
        ctx.exit(pipe.EX_TEMPFAIL)
    except OSError as exc:
        click.echo(f"cannot start: {exc}", err=True)
        ctx.exit(1)


@click.command("check-config")
@DEV
@click.pass_context
def check_config(ctx: click.Context, dev: bool) -> None:
    """Validate the config; exit 0 when it is usable, 1 with every error otherwise."""
    config = _production_config(ctx, dev, print_warnings=True)
    if config.rule_tests:  # the operator's own rule tests, so a rule change that breaks one never goes live
        ran, failures = rules_report.run_tests(config, rules.compile_rules(config))
        for issue in failures:
            click.echo(f"rule test failed: {issue}", err=True)
        if failures:
            ctx.exit(1)
        click.echo(f"{ran} rule tests passed")
    template_problems = templates.check(config) + saved_replies.check(config) + report_mail.check(config)
    for problem in template_problems:
        click.echo(f"template error: {problem}", err=True)
    if template_problems:
        ctx.exit(1)
    click.echo(f"{ctx.obj['config_path']}: ok ({len(config.gateway.addresses)} support addresses)")



def attach(main: click.Group) -> None:
    main.add_command(run)
    main.add_command(check_config)
