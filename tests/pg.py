"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests: initdb in a temp folder, trust auth, no durability, no systemd."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "mailgate"
_TOOLS = ("initdb", "pg_ctl", "postgres")
# A test cluster is thrown away with its folder, so nothing has to survive a crash: no fsync, no
# full-page images, commits acknowledged before their WAL is flushed. max_connections: each daemon
# holds a pool, and several daemons share one database in the multi-process tests. max_wal_size:
# the folder may be in memory, and checkpoints cost little without fsync (default 1GB).
_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
max_wal_size = '256MB'
"""


def _version(bindir: Path) -> tuple[int, ...]:
    """The server's version from `postgres --version` ("postgres (PostgreSQL) 15.18 (Debian ...)")."""
    try:
        out = subprocess.run([bindir / "postgres", "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    found = re.search(r"(\d+)(?:\.(\d+))?", out)
    return tuple(int(n) for n in found.groups() if n is not None) if found else ()


def find_postgres() -> Path | None:
    """The newest folder holding initdb, pg_ctl and postgres: PATH's, or Debian's /usr/lib/postgresql/<major>/bin.

    Debian keeps the server tools off PATH (only client wrappers live in /usr/bin) so that several
    major versions can be installed side by side."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    usable = [d for d in dict.fromkeys(candidates) if all(os.access(d / tool, os.X_OK) for tool in _TOOLS)]
    # psql is the client; Debian's is a wrapper in /usr/bin, a source build puts it beside the server.
    usable = [d for d in usable if os.access(d / "psql", os.X_OK) or shutil.which("psql")]
    versions = {d: _version(d) for d in usable}
    return max(usable, key=lambda d: versions[d], default=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: initdb and postgres refuse to run as root ("cannot be run as root")."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):  # Debian's package creates `postgres`
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as")


def _base() -> Path:
    """Where clusters live: in memory (/dev/shm) when it has room, else the temp folder.

    With fsync off a cluster on disk still waits for it: CREATE DATABASE copies 7 MB of catalogs,
    and took 200-300 ms on a disk busy with other tests' SQLite fsyncs, against 8-16 ms on tmpfs.
    Docker gives containers a 64 MB /dev/shm, which PostgreSQL's own shared memory needs."""
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        stat = os.statvfs(shm)
        if os.access(shm, os.W_OK | os.X_OK) and stat.f_bavail * stat.f_frsize >= 2 << 30:
            return shm
    return Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive all the same
    return True


def reap_orphans(bindir: Path) -> None:
    """Stop and remove the clusters of earlier runs that died before their teardown (killed, or a
    hard timeout's os._exit): each folder names the test process that owns it."""
    for folder in {*Path("/dev/shm").glob("mailgate-pg-*"), *Path(tempfile.gettempdir()).glob("mailgate-pg-*")}:
        try:
            owner = int((folder / "owner").read_text())
        except (OSError, ValueError):
            continue  # another user's, or one still being made
        if owner != os.getpid() and not _alive(owner):
            PgCluster(bindir, folder).cleanup()


class PgCluster:
    """One initdb'd cluster in a temp folder: start, make and drop databases through psql, stop, remove."""

    def __init__(self, bindir: Path, folder: Path | None = None) -> None:
        self.bindir = bindir
        self.host = "127.0.0.1"
        self.port = 0
        self.version = 0  # server_version_num once started: 150018 for 15.18
        if folder is None:
            # Not under pytest's tmp_path: that is mode 0700 for root, and the server runs as postgres then.
            folder = Path(tempfile.mkdtemp(prefix="mailgate-pg-", dir=_base()))
            (folder / "owner").write_text(str(os.getpid()))
        self.dir = folder
        self.data = self.dir / "data"
        self.user = _server_user()
        self._numbers = itertools.count(1)
        psql = bindir / "psql"
        self.psql = str(psql) if os.access(psql, os.X_OK) else shutil.which("psql") or "psql"

    def _env(self) -> dict[str, str]:
        # A developer's PGHOST, PGPASSWORD, PGSSLMODE … are meant for their own server, not this one.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env["PGCONNECT_TIMEOUT"] = "10"
        return env

    def _run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A server tool, as the unprivileged user when we are root; its output is in the error."""
        as_root = self.user is not None
        return subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=self.dir, env=self._env(),
            stdin=subprocess.DEVNULL, start_new_session=True,
            user=self.user.pw_uid if self.user else None, group=self.user.pw_gid if self.user else None,
            extra_groups=[] if as_root else None,
        )

    def start(self, wait: float = 60.0) -> None:
        """initdb, then start on a free loopback port; a port taken in between is retried with another."""
        if self.user is not None:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        init = self._run(self.bindir / "initdb", "-D", self.data, "-U", USER, "--auth=trust", "--locale=C",
                         "--encoding=UTF8", "--no-sync", "--no-instructions")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stdout}{init.stderr}")
        conf = self.data / "postgresql.conf"
        base = conf.read_text()
        for _ in range(3):
            self.port = free_port()
            conf.write_text(base + _SETTINGS.format(port=self.port, sockets=self.dir))
            (self.dir / "postgres.log").unlink(missing_ok=True)
            started = self._run(self.bindir / "pg_ctl", "start", "-D", self.data, "-l", self.dir / "postgres.log",
                                "-w", "-t", str(int(wait)), "-s", timeout=wait + 30)
            if started.returncode == 0:
                break
            if "Address already in use" not in self.logs():
                raise RuntimeError(f"PostgreSQL did not start: {started.stdout}{started.stderr}{self.logs()}")
        else:
            raise RuntimeError(f"PostgreSQL found no free port: {self.logs()}")
        deadline = time.monotonic() + wait
        while (probe := self.sql("SHOW server_version_num", check=False)).returncode != 0:
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PostgreSQL does not answer on {self.host}:{self.port}: {probe.stderr}{self.logs()}")
            time.sleep(0.05)
        self.version = int(probe.stdout.strip())

    def sql(self, *statements: str, database: str = "postgres", check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run statements with psql over TCP, each on its own (CREATE DATABASE cannot share a transaction)."""
        args = [self.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
                "-U", USER, "-d", database]
        for statement in statements:
            args += ["-c", statement]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, env=self._env(),
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise RuntimeError(f"psql {statements}: {result.stderr}")
        return result

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def create_database(self, template: str = "template0") -> str:
        """A new database copied from `template` (empty by default), t_1, t_2 … in the order asked for; its name."""
        name = f"t_{next(self._numbers)}"
        # PostgreSQL 15 copies through the WAL by default, in time growing with the template; with
        # fsync off, the older file copy (and its two checkpoints) takes half as long or less.
        strategy = " STRATEGY FILE_COPY" if self.version >= 150000 else ""
        self.sql(f"CREATE DATABASE {name} TEMPLATE {template}{strategy}")
        return name

    def drop_database(self, name: str) -> None:
        # FORCE (PostgreSQL 13+) ends sessions a test left open, such as a daemon's pool it never stopped.
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop at once: the cluster is thrown away, so it needs no shutdown checkpoint."""
        if not (self.data / "postmaster.pid").exists():
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self._run(self.bindir / "pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w", "-t", "30", "-s")
        if (self.data / "postmaster.pid").exists():
            # pg_ctl could not stop it (another user's folder, a wedged server): its backends exit
            # on their own once they see the postmaster gone.
            with contextlib.suppress(ValueError, OSError):
                os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self) -> str:
        path = self.dir / "postgres.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
