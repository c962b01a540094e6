"""The command line facing Postfix: how `ingest` reads pipe(8)'s arguments, and `postfix-config`."""

from __future__ import annotations

import io
import itertools
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from mailgate.cli.support import load_config
from mailgate.config import Config, bounce_address
from mailgate.sources import pipe

DEFAULT_COMMAND = "/usr/local/bin/mailgate"  # where systemd/mailgate.service runs it from
TRANSPORT = "mailgate"  # the master.cf service and transport name the printed lines use
TRANSPORT_MAP = "/etc/postfix/mailgate_transport"
# Concurrent `mailgate ingest` processes: each is a Python start-up plus a SQLite write, and
# writers queue behind the database's one write lock, so past a few they only wait.
PIPE_MAXPROC = 4


class IngestCommand(click.Command):
    """`ingest` as Postfix's pipe(8) calls it: any number of recipients, and never a usage bounce.

    pipe(8) expands an argument holding ${recipient} into one argument per recipient, so
    `--recipient ${recipient}` arrives as `--recipient a@x b@x`: every address after --recipient
    (up to the next option or a file) is a recipient. A usage error (a master.cf typo) exits 75, so Postfix keeps
    the mail until the line is fixed instead of bouncing it to the customer."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, self._spread_recipients(ctx, args))
        except click.UsageError as exc:
            click.echo(f"4.3.5 mailgate ingest: {exc.format_message()}", err=True)
            ctx.exit(pipe.EX_TEMPFAIL)
            raise AssertionError("unreachable") from exc

    def _spread_recipients(self, ctx: click.Context, args: list[str]) -> list[str]:
        """`--recipient a b --sender s` as `--recipient a --recipient b --sender s`."""
        options = [p for p in self.get_params(ctx) if isinstance(p, click.Option)]
        valued = {name for p in options if not p.is_flag for name in p.opts}
        out: list[str] = []
        taking = False
        rest = iter(args)
        for arg in rest:
            if arg == "--":
                out += [arg, *rest]
                break
            name = arg.split("=", 1)[0]
            if name in valued:
                out.append(arg)
                if "=" not in arg:
                    out += list(itertools.islice(rest, 1))  # the option's value, whatever it looks like
                taking = name == "--recipient"
            elif taking and pipe.is_address(arg):
                out += ["--recipient", arg]
            else:
                out.append(arg)
                taking = False
        return out


@contextmanager
def held_log() -> Iterator[None]:
    """Hold log lines in memory while the block runs and print them after what it printed.

    pipe(8) reads an enhanced status code only at the very start of the command's output, so a
    log line written before a failure would hide the status line from Postfix."""
    buffer = io.StringIO()
    root = logging.getLogger()
    handlers = [h for h in root.handlers if type(h) is logging.StreamHandler and h.stream is sys.stderr]
    for handler in handlers:
        handler.setStream(buffer)
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(sys.stderr)
        sys.stderr.write(buffer.getvalue())
        sys.stderr.flush()


def _command() -> str:
    """The path of the `mailgate` running now, for the pipe line; the unit's path otherwise."""
    argv0 = sys.argv[0] if sys.argv else ""
    return os.path.abspath(argv0) if Path(argv0).name == "mailgate" else DEFAULT_COMMAND


def _nexthop(config: Config, lmtp: bool) -> str:
    """Where Postfix reaches the listener: a wildcard listen address is reached on loopback."""
    host, port = config.smtp.listen.host, config.smtp.listen.port
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if lmtp:
        return f"inet:[{host}]:{port}" if ":" in host else f"inet:{host}:{port}"
    return f"[ipv6:{host}]:{port}" if ":" in host else f"[{host}]:{port}"


def postfix_lines(config: Config, *, mode: str, command: str) -> str:
    """main.cf, master.cf and transport lines that put Postfix in front of this config."""
    addresses = [*config.gateway.addresses, bounce_address(config)]
    domains = sorted({a.split("@", 1)[1] for a in addresses})
    source = config.source.resolve() if config.source is not None else Path("/etc/mailgate/config.toml")
    lines = [f"# Postfix in front of mailgate ({source}); mode: {mode}"]
    if mode == "pipe":
        limit = PIPE_MAXPROC
        service = [
            f"{TRANSPORT}  unix  -       n       n       -       {limit}       pipe",
            f"  user=mailgate argv={command} --config {source} ingest --sender=${{sender}} --recipient=${{recipient}}",
        ]
        nexthop = ""
        why = "more ingest processes only queue for the database's write lock"
        notes = [
            "# Each recipient becomes its own --recipient=ADDRESS argument; a null sender arrives as",
            "# MAILER-DAEMON and is stored as the null sender, so it is never answered.",
        ]
    else:
        lmtp = config.smtp.lmtp
        limit = max(1, min(config.smtp.max_connections_per_peer, config.smtp.max_connections))
        service = [f"{TRANSPORT}  unix  -       -       n       -       {limit}       {'lmtp' if lmtp else 'smtp'}"]
        nexthop = _nexthop(config, lmtp)
        why = "mailgate takes smtp.max_connections_per_peer sessions from one client, then answers 421"
        notes = [] if lmtp else [
            "# [smtp] lmtp = false in this config: Postfix speaks SMTP to mailgate. Set lmtp = true",
            "# (recommended: one answer per recipient, RFC 2033) and print these lines again.",
        ]
        if not config.smtp.trusted_peers:
            notes.append('# To let this Postfix\'s Authentication-Results prove agents: [smtp] trusted_peers = ["127.0.0.1"]')
    width = max(len(a) for a in addresses) + 2
    lines += notes
    lines += [
        "",
        "# --- /etc/postfix/main.cf ---",
        "# Replies come back to support+<token>@ and bounces to bounces+<token>@: with \"+\" as the",
        "# delimiter Postfix finds them under the plain addresses of the transport map.",
        "recipient_delimiter = +",
        f"transport_maps = hash:{TRANSPORT_MAP}",
        "# Only if Postfix does not already receive mail for these domains (mydestination, virtual_*):",
        f"relay_domains = {', '.join(domains)}",
        f"relay_recipient_maps = hash:{TRANSPORT_MAP}",
        f"# At most {limit} deliveries at once: {why}.",
        f"{TRANSPORT}_destination_concurrency_limit = {limit}",
        "",
        "# --- /etc/postfix/master.cf ---",
        *service,
        "",
        f"# --- {TRANSPORT_MAP} (then: postmap {TRANSPORT_MAP} && postfix reload) ---",
        "# The bounce address must be here too, or bounces of mailgate's own mail are lost.",
        *(f"{a:<{width}}{TRANSPORT}:{nexthop}" for a in addresses),
    ]
    return "\n".join(lines) + "\n"


def attach(main: click.Group) -> None:
    @main.command("postfix-config")
    @click.option("--lmtp", "mode", flag_value="lmtp", default=True,
                  help="Postfix delivers by LMTP to the daemon's listener (recommended).")
    @click.option("--pipe", "mode", flag_value="pipe", help="Postfix runs `mailgate ingest` per mail.")
    @click.option("--command", default=None, help="Path of mailgate in the pipe line (default: this one).")
    @click.pass_context
    def postfix_config(ctx: click.Context, mode: str, command: str | None) -> None:
        """Print the Postfix main.cf, master.cf and transport lines for this config."""
        config = load_config(ctx)
        click.echo(postfix_lines(config, mode=mode, command=command or _command()), nl=False)

