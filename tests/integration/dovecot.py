"""A throwaway Dovecot IMAP (and optionally LMTP) server on 127.0.0.1 for tests and benches: passwd-file, Maildir, no systemd."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient  # type: ignore[import-untyped]

# Dovecot 2.3 syntax (Debian 12); 2.4 would need a rewritten config.
_CONFIG = """\
instance_name = mailgate-test-{port}
protocols = imap{protocols}
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
first_valid_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/mail/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""

# An MTA in front (Postfix's lmtp client) delivers into the same Maildirs; the unprivileged master
# runs the lmtp processes as the mail user itself.
_LMTP = """\
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
protocol lmtp {{
  # Full addresses are the passwd-file's user names: keep the domain, lower-cased.
  auth_username_format = %Lu
}}
"""


def find_dovecot() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None
    )


def _group_alive(group: int) -> bool:
    """True while a live (not zombie) process remains in the group."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dovecot:
    """Start, stop and restart one Dovecot on a fixed port and data folder; talk to it with imapclient."""

    def __init__(self, binary: str, users: dict[str, str], port: int | None = None, *, lmtp: bool = False) -> None:
        self.binary = binary
        self.users = users
        self.port = port or free_port()
        self.lmtp_port = free_port() if lmtp else None
        self.host = "127.0.0.1"
        # Not under pytest's tmp_path: that is mode 0700 for root, and Dovecot runs as nobody then.
        self.dir = Path(tempfile.mkdtemp(prefix="mailgate-dovecot-"))
        self.process: subprocess.Popen[bytes] | None = None
        # imap-login refuses to run as root ("This process must not be run as root").
        self.run_user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        entry = pwd.getpwnam(self.run_user)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self._write_config()

    def _write_config(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir(exist_ok=True)
        (self.dir / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items()))
        lmtp = self.lmtp_port is not None
        (self.dir / "dovecot.conf").write_text(
            _CONFIG.format(
                port=self.port, dir=self.dir, user=self.run_user, group=grp.getgrgid(self.gid).gr_name,
                uid=self.uid, gid=self.gid, protocols=" lmtp" if lmtp else "",
            )
            + (_LMTP.format(lmtp_port=self.lmtp_port) if lmtp else "")
        )
        if os.geteuid() == 0:
            self.dir.chmod(0o755)
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, self.uid, self.gid)

    def start(self, wait: float = 15.0) -> None:
        log = open(self.dir / "startup.log", "ab")  # noqa: SIM115 - owned by the child process
        as_root = os.geteuid() == 0
        # -F: stay in the foreground as our child, so stop() can wait for it. Own session and no
        # shared stdio, or a caller capturing output would wait for EOF forever.
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.dir / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            user=self.uid if as_root else None,
            group=self.gid if as_root else None,
            extra_groups=[] if as_root else None,
        )
        log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start: {self.logs()}")
            if self._greets():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not answer on {self.host}:{self.port}: {self.logs()}")

    def _greets(self) -> bool:
        ports = [(self.port, b"* OK")] + ([(self.lmtp_port, b"220")] if self.lmtp_port else [])
        for port, greeting in ports:
            try:
                with socket.create_connection((self.host, port), timeout=1) as sock:
                    if not sock.recv(64).startswith(greeting):
                        return False
            except OSError:
                return False
        return True

    def stop(self) -> None:
        """Stop the master and every process it started, as a service restart does.

        The master leaves running imap sessions behind when it runs unprivileged, so signal the
        whole process group: each session says BYE and exits, like shutdown_clients = yes.
        """
        process, self.process = self.process, None
        if process is None:
            return
        group = process.pid  # start_new_session: the master leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while _group_alive(group):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
                break
            time.sleep(0.02)
        if process.poll() is None:
            process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self) -> str:
        out = []
        for name in ("startup.log", "dovecot.log"):
            path = self.dir / name
            if path.exists():
                out.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(out)

    def client(self, user: str | None = None) -> IMAPClient:
        user = user or next(iter(self.users))
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(user, self.users[user])
        return client

    def append(self, messages: list[bytes] | bytes, folder: str = "INBOX", user: str | None = None) -> None:
        if isinstance(messages, bytes):
            messages = [messages]
        client = self.client(user)
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                client.append(folder, raw)
        finally:
            client.logout()
