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
from collections.abc import Mapping, Sequence
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


# What keeps the instance off the network: lines from elsewhere (postfix-config's output) may add
# to main.cf but never loosen these.
_SAFETY = frozenset({
    "inet_interfaces", "inet_protocols", "mynetworks", "default_transport", "relay_transport",
    "disable_dns_lookups", "smtp_dns_support_level", "lmtp_dns_support_level", "smtp_host_lookup",
    "lmtp_host_lookup", "queue_directory", "data_directory", "mail_owner", "setgid_group",
    "maillog_file", "maillog_file_prefixes",
})
# How mail reaches mailgate: set by the fixture for its routes, but left to the caller's main.cf
# lines when it gives any, so a line missing there is missing in the instance too.
_FRONT = frozenset({"recipient_delimiter", "relay_domains"})
# Lists the instance needs its own entries in: extra values come first, the fixture's routes after.
_MERGED = frozenset({"transport_maps"})


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

    def __init__(
        self,
        binary: str,
        routes: dict[str, str],
        port: int | None = None,
        *,
        main: Mapping[str, str] | None = None,
        master: Sequence[str] = (),
        maps: Mapping[str, str] | None = None,
    ) -> None:
        """routes: domain → transport, e.g. {"example.test": "lmtp:inet:127.0.0.1:2424"}.

        main: extra main.cf parameters (they replace the fixture's, except the safety settings;
        transport_maps are put before the fixture's own; given any, the caller owns _FRONT); master: extra master.cf lines;
        maps: lookup tables by the path main names them with → their text. Each is written into
        the instance's folder, main's values are pointed there, and hash/btree ones are postmap'd."""
        for domain, transport in routes.items():
            kind = transport.split(":", 1)[0]
            if kind in ("smtp", "lmtp") and "[127.0.0.1]" not in transport and ":inet:127.0.0.1:" not in transport:
                raise ValueError(f"{domain}: {transport!r} would leave loopback or need a name lookup")
        unsafe = sorted(_SAFETY & set(main or {}))
        if unsafe:
            raise ValueError(f"main.cf lines may not change {', '.join(unsafe)}: the instance would leave loopback")
        self.main = dict(main or {})
        self.master = list(master)
        self.maps = dict(maps or {})
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
        moved = {path: self.dir / "maps" / Path(path).name for path in self.maps}
        if moved:
            (self.dir / "maps").mkdir(exist_ok=True)
        for path, text in self.maps.items():
            moved[path].write_text(text)
        main_cf = _MAIN_CF.format(dir=self.dir, relay_domains=", ".join(self.routes))
        lines = main_cf.splitlines()
        if self.main:
            lines = [line for line in lines if line.split("=", 1)[0].strip() not in _FRONT]
        for key, value in self.main.items():
            for path, there in moved.items():
                value = value.replace(path, str(there))
            ours = [line for line in lines if line.split("=", 1)[0].strip() == key]
            if key in _MERGED and ours:
                value = f"{value}, {ours[0].split('=', 1)[1].strip()}"
            lines = [line for line in lines if line not in ours] + [f"{key} = {value}"]
        (self.config / "main.cf").write_text("\n".join(lines) + "\n")
        master_cf = _MASTER_CF.format(port=self.port) + "".join(f"{line}\n" for line in self.master)
        (self.config / "master.cf").write_text(master_cf)
        for path, there in moved.items():
            parts = (part.strip() for value in self.main.values() for part in value.split(","))
            kinds = {part.split(":", 1)[0] for part in parts if part.endswith(f":{path}")}
            for kind in sorted(kinds & {"hash", "btree", "lmdb", "cdb"}):
                self._postmap(f"{kind}:{there}")

    def _postmap(self, table: str) -> None:
        postmap = Path(self.binary).with_name("postmap")
        done = subprocess.run([str(postmap), "-c", str(self.config), table], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"postmap {table} failed ({done.returncode}): {done.stdout}{done.stderr}")

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
