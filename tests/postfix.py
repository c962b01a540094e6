"""A throwaway Postfix on 127.0.0.1 for end-to-end tests: private config folder, fixed transports, no DNS."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .dovecot import free_port

# Nothing may leave the machine or ask a name server: every domain the test uses has an explicit
# numeric next hop in transport_maps; any other domain hits default_transport/relay_transport =
# error and bounces at once, which is also how the test gets a real Postfix DSN.
_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.test
mydomain = example.test
myorigin = $myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relay_domains = {relay_domains}
transport_maps = texthash:{dir}/transport
default_transport = error:no route off this test machine
relay_transport = error:no route off this test machine
disable_dns_lookups = yes
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no
recipient_delimiter = +
smtputf8_enable = yes
biff = no
alias_maps =
alias_database =
local_recipient_maps =
maillog_file_prefixes = {dir}
maillog_file = {dir}/maillog
# Test runs are short: retry a deferred mail within seconds, not minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
bounce_queue_lifetime = 0
delay_warning_time = 0
"""

# chroot "n" everywhere: the queue lives in a temp folder without the files a chroot needs.
_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def find_postfix() -> str | None:
    return shutil.which("postfix") or next(
        (p for p in ("/usr/sbin/postfix", "/usr/local/sbin/postfix") if os.access(p, os.X_OK)), None
    )


def postfix_missing() -> str | None:
    """Why this machine cannot run the throwaway Postfix (None: it can)."""
    if find_postfix() is None:
        return "postfix is not installed (.ci/run installs it)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (postfix -c DIR start)"
    return None


class Postfix:
    """One Postfix instance from its own config folder; smtpd on a free loopback port (never 25)."""

    def __init__(self, binary: str, routes: dict[str, str], port: int | None = None) -> None:
        """routes: domain → transport, e.g. {"example.test": "lmtp:inet:127.0.0.1:2424"}."""
        for domain, transport in routes.items():
            kind = transport.split(":", 1)[0]
            if kind in ("smtp", "lmtp") and "[127.0.0.1]" not in transport and ":inet:127.0.0.1:" not in transport:
                raise ValueError(f"{domain}: {transport!r} would leave loopback or need a name lookup")
        self.binary = binary
        self.routes = routes
        self.host = "127.0.0.1"
        self.port = port or free_port()
        # Postfix's daemons drop to the postfix user after chdir into the queue: the folder must be
        # reachable for them, which pytest's 0700 tmp_path is not.
        self.dir = Path(tempfile.mkdtemp(prefix="mailgate-postfix-"))
        self.dir.chmod(0o755)
        self.config = self.dir / "etc"
        self._write_config()

    def _write_config(self) -> None:
        self.config.mkdir(exist_ok=True)
        # The queue belongs to root (postfix check creates and owns its subfolders); the data
        # folder (caches, the bounce-log database) to the mail_owner, as the Debian package sets up.
        (self.dir / "queue").mkdir(mode=0o755, exist_ok=True)
        data = self.dir / "data"
        data.mkdir(mode=0o700, exist_ok=True)
        entry = pwd.getpwnam("postfix")
        os.chown(data, entry.pw_uid, entry.pw_gid)
        (self.dir / "transport").write_text("".join(f"{d} {t}\n" for d, t in self.routes.items()))
        (self.config / "main.cf").write_text(
            _MAIN_CF.format(dir=self.dir, relay_domains=", ".join(self.routes))
        )
        (self.config / "master.cf").write_text(_MASTER_CF.format(port=self.port))

    def _postfix(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-c", str(self.config), *args],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False,
        )

    def start(self, wait: float = 30.0) -> None:
        done = self._postfix("start")
        if done.returncode != 0:
            raise RuntimeError(f"postfix start failed ({done.returncode}): {done.stdout}{done.stderr}{self.logs()}")
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._greets():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postfix did not answer on {self.host}:{self.port}: {self.logs()}")

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"220")
        except OSError:
            return False

    def _master_pid(self) -> int | None:
        try:
            return int((self.dir / "queue" / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """postfix stop; if the master (it leads its own process group) lingers, kill the group."""
        pid = self._master_pid()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._postfix("stop", timeout=30)
        if pid is None:
            return
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self) -> str:
        path = self.dir / "maillog"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def send(self, raw: bytes, rcpts: list[str], sender: str) -> dict[str, tuple[int, bytes]]:
        """Inject over SMTP, as another MTA or a mail client's submission would."""
        with smtplib.SMTP(self.host, self.port, timeout=30) as client:
            return client.sendmail(sender, rcpts, raw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
