"""The `mailgate` program: the top-level group and its options; each command group lives in its own module.

Where a command lives: run, check-config in run.py; ingest, spool, imap in intake.py; parse and
rules test in explain.py; tickets list/show in tickets.py, the acting ticket commands in ops.py,
life.py and cases.py; outbox, storms, postfix-config, db, health, retention, config in their own files."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mailgate.cli import cases as cli_cases
from mailgate.cli import config as cli_config
from mailgate.cli import data as cli_data
from mailgate.cli import db as cli_db
from mailgate.cli import delete as cli_delete
from mailgate.cli import explain as cli_explain
from mailgate.cli import export as cli_export
from mailgate.cli import health as cli_health
from mailgate.cli import intake as cli_intake
from mailgate.cli import life as cli_life
from mailgate.cli import ops as cli_ops
from mailgate.cli import outbox as cli_outbox
from mailgate.cli import postfix as cli_postfix
from mailgate.cli import replies as cli_replies
from mailgate.cli import report as cli_report
from mailgate.cli import run as cli_run
from mailgate.cli import search as cli_search
from mailgate.cli import storms as cli_storms
from mailgate.cli import tickets as cli_tickets
from mailgate.cli.support import SafeGroup
from mailgate.obs import FORMATS, setup_logging

DEFAULT_CONFIG = "/etc/mailgate/config.toml"


def entry() -> None:
    """The `mailgate` program (console script and `python -m mailgate`)."""
    # Customers' mail, attachments and the spool are nobody else's business: with the usual umask
    # 022 SQLite made the database (and its -wal/-shm) 0644, readable by every local user. Set at
    # process start, before any command opens a file, so run, ingest (spawned by the MTA with its
    # own umask), every command that writes, and whatever the daemon runs create 0600 files and
    # 0700 folders.
    os.umask(0o077)
    main()


@click.group(cls=SafeGroup)
@click.option(
    "--config",
    "config_path",
    envvar="MAILGATE_CONFIG",
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The TOML config file (or $MAILGATE_CONFIG).",
)
@click.option("--log-level", envvar="MAILGATE_LOG_LEVEL", default="INFO", show_default=True,
              help="DEBUG, INFO, WARNING or ERROR; libraries stay at WARNING unless named: INFO,mail.log=INFO,apscheduler=DEBUG.")
@click.option("--log-format", envvar="MAILGATE_LOG_FORMAT", default="auto", show_default=True,
              type=click.Choice(FORMATS),
              help="text; json (one object per line); journald (<N> priority prefixes); auto: journald when stderr is the journal.")
@click.version_option(package_name="mailgate")
@click.pass_context
def main(ctx: click.Context, config_path: Path, log_level: str, log_format: str) -> None:
    """mailgate: a help desk that lives in email."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    try:
        setup_logging(log_level, log_format)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--log-level") from exc


cli_run.attach(main)
cli_intake.attach(main)
cli_explain.attach(main)
main.add_command(cli_tickets.tickets)
# life.py adds the `contacts` group that data.py then extends with `contacts erase`: keep this order.
cli_life.attach(main, cli_tickets.tickets)
cli_cases.attach(cli_tickets.tickets)
cli_ops.attach(cli_tickets.tickets)
cli_search.attach(cli_tickets.tickets)
cli_export.attach(cli_tickets.tickets)
cli_outbox.attach(main)
cli_storms.attach(main)
cli_postfix.attach(main)
cli_db.attach(main)
cli_health.attach(main)
cli_data.attach(main)
cli_config.attach(main)
cli_delete.attach(main, cli_tickets.tickets)
cli_replies.attach(main)
cli_report.attach(main)
