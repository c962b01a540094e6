"""Scale-out: the same mails through 1 daemon on SQLite, 1 on PostgreSQL and 2 on one PostgreSQL database.

Each setup runs mailgate as bench/e2e.py does (`python -m mailgate run` on config.example.toml with its
queues, agents, acknowledgements and notifications; the acknowledgement caps off; the e2e relay sink
process), from a fresh store: for PostgreSQL a new database on a throwaway cluster this bench starts
(initdb in a temp folder, trust, fsync off), or on `--server URL`'s. With two daemons the clients are
split between their SMTP ports, as an MTA spreads over two MX hosts of equal preference.

    .venv/bin/python bench/scaleout.py [--mails 500] [--clients 8] [--corpus generated|shared|both]
                                       [--server postgresql://user@127.0.0.1:5432] [--keep]

Per setup: the accept rate (mails / seconds until the last client's last 250), the seconds until every
mail is processed (ticketed) and until the outbox is empty with the sink holding every row sent
(delivered); per daemon: mails accepted on its port, CPU ms per mail it accepted (its process tree),
write transactions and statements (its /metrics). The last line is JSON with sqlite_rate, pg1_rate,
pg2_rate and pg2_vs_pg1 (accept rates), and the ticketed and delivered rates of each setup.

On PostgreSQL every write transaction takes one advisory lock (store/pg.py), so two daemons write one
after the other as one does; what two daemons add is a second process for parsing, composing, SMTP
and the relay sessions, which the 2-core development machine shares with the clients and the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import e2e  # noqa: E402
import e2e_mail  # noqa: E402
import e2e_parts  # noqa: E402

# --- PostgreSQL ----------------------------------------------------------------------------------------


SERVER_PID: list[int] = []  # the throwaway cluster's postmaster: its CPU is the database's share


@contextlib.contextmanager
def cluster(work: Path) -> Iterator[str]:
    """A throwaway PostgreSQL on 127.0.0.1 for this run; its URL without a database."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda d: int(d.parent.name), reverse=True)
    on_path = shutil.which("initdb")
    bindir = next((d for d in [*([Path(on_path).parent] if on_path else []), *found] if (d / "pg_ctl").exists()), None)
    if bindir is None:
        raise SystemExit("no PostgreSQL server binaries (Debian: apt-get install postgresql); or give --server URL")
    folder = Path(tempfile.mkdtemp(prefix="pg-", dir=work))
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        as_user = {"user": "postgres"}
        shutil.chown(work, "postgres")
        shutil.chown(folder, "postgres")
    port = e2e.free_port()

    def tool(*args: object) -> None:
        subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=120, cwd=folder,
                       stdin=subprocess.DEVNULL, start_new_session=True, **as_user)

    tool(bindir / "initdb", "-D", folder / "data", "-U", "mailgate", "--auth=trust", "--locale=C", "--encoding=UTF8")
    # No durability (a bench's data is thrown away); SQLite's side runs with the config's synchronous.
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    tool(bindir / "pg_ctl", "-D", folder / "data", "-o", options, "-l", folder / "log", "-w", "start")
    SERVER_PID.append(int((folder / "data" / "postmaster.pid").read_text().split()[0]))
    try:
        yield f"postgresql://mailgate@127.0.0.1:{port}"
    finally:
        SERVER_PID.clear()
        tool(bindir / "pg_ctl", "-D", folder / "data", "-m", "fast", "stop")


class PgDatabase:
    """e2e_parts.Database's counts, read from a PostgreSQL database (a fresh one: no start line)."""

    def __init__(self, url: str) -> None:
        import asyncpg  # type: ignore[import-untyped]

        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(url))

    def value(self, sql: str) -> int:
        return int(self.loop.run_until_complete(self.conn.fetchval(sql)) or 0)

    def spooled(self) -> int:
        return self.value("SELECT COUNT(*) FROM spool")

    def processed(self) -> int:
        return self.value("SELECT COUNT(*) FROM spool WHERE state IN ('done', 'duplicate', 'dead')")

    def outbox(self) -> dict[str, int]:
        rows = self.loop.run_until_complete(self.conn.fetch("SELECT state, COUNT(*) FROM outbox GROUP BY state"))
        return {r[0]: int(r[1]) for r in rows}

    def unsent(self) -> int:
        return self.value("SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'sending')")

    def inbound_messages(self) -> int:
        return self.value("SELECT COUNT(*) FROM messages WHERE direction = 'in'")

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def fresh_database(server: str, name: str) -> str:
    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{server}/{name}"


# --- one setup --------------------------------------------------------------------------------------------


@dataclass
class Node:
    """One daemon of a setup, with its ports and what it reported."""

    folder: Path
    smtp_port: int
    http_port: int
    proc: subprocess.Popen[bytes] | None = None
    counters: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    accepted: int = 0


@dataclass
class Result:
    name: str
    mails: int
    accepted_s: float
    ticketed_s: float
    delivered_s: float
    nodes: list[dict[str, Any]]
    sink_duplicates: int
    outbox: dict[str, int]
    server_cpu_s: float | None = None  # PostgreSQL's backends (the bench's own cluster only)
    tickets: int = 0  # replies threaded onto their tickets leave fewer than mails

    def rate(self, seconds: float) -> float:
        return self.mails / seconds if seconds else 0.0

    def line(self) -> str:
        return (f"{self.name:>7}: {self.mails} mails, {self.tickets} tickets; accept {self.rate(self.accepted_s):.0f}/s; ticketed "
                f"{self.ticketed_s:.2f} s ({self.rate(self.ticketed_s):.0f}/s); delivered {self.delivered_s:.2f} s "
                f"({self.rate(self.delivered_s):.0f}/s); outbox {self.outbox}; sink duplicates {self.sink_duplicates}"
                + (f"; PostgreSQL CPU {self.server_cpu_s * 1000 / self.mails:.2f} ms/mail"
                   if self.server_cpu_s is not None else ""))


def node_config(folder: Path, relay_port: int, clients: int, url: str | None) -> Node:
    node = Node(folder, e2e.free_port(), e2e.free_port())
    path = e2e.bench_config(folder, node.smtp_port, relay_port, node.http_port, clients)
    if url is not None:
        text = path.read_text(encoding="utf-8")
        database = f'database = "{folder / "mailgate.sqlite3"}"'
        assert database in text, "bench_config's database line moved; update bench/scaleout.py"
        path.write_text(text.replace(database, f'url = "{url}"'), encoding="utf-8")
    return node


def run_setup(work: Path, name: str, mails: list[e2e_mail.Mail], clients: int, daemons: int,
              url: str | None) -> Result:
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    relay_port = e2e.free_port()
    nodes = []
    for n in range(daemons):
        (folder / f"d{n}").mkdir()
        nodes.append(node_config(folder / f"d{n}", relay_port, max(1, clients // daemons), url))
    sink = e2e._server("sink", folder, relay_port, folder / "sink.txt")
    try:
        for node in nodes:  # one after the other: the first migrates, the others find it done
            log = node.folder / "daemon.log"
            node.proc = e2e._spawn([sys.executable, "-m", "mailgate", "--config", str(node.folder / "config.toml"),
                                    "run"], log, node.folder)
            e2e._wait_ready(node.proc, log, lambda n=node: e2e._listening(n.http_port) and e2e._listening(n.smtp_port),
                            f"mailgate {node.folder.name}")
        db: Any = PgDatabase(url) if url is not None else e2e_parts.Database(nodes[0].folder / "mailgate.sqlite3")
        try:
            return _measure(name, folder, nodes, db, mails, clients)
        finally:
            db.close()
    finally:
        for node in nodes:
            e2e._stop(node.proc)
        e2e._stop(sink)


def _measure(name: str, folder: Path, nodes: list[Node], db: Any, mails: list[e2e_mail.Mail], clients: int) -> Result:
    sink = e2e.SinkLog(folder / "sink.txt")
    before = [e2e._counters(n.http_port) for n in nodes]
    # Mail i goes to daemon i mod N, by that daemon's share of the client processes.
    crowds = [e2e.Clients(node.smtp_port, ("list", mails[i::len(nodes)]), max(1, clients // len(nodes)))
              for i, node in enumerate(nodes)]
    cpu0 = [e2e_parts.cpu_seconds(n.proc.pid) for n in nodes if n.proc is not None]
    server = SERVER_PID[0] if SERVER_PID and isinstance(db, PgDatabase) else None
    server0 = e2e_parts.cpu_seconds(server) if server is not None else 0.0
    for crowd in crowds:
        crowd.barrier.wait(timeout=60)
    t0 = time.monotonic()
    count = len({m.raw for m in mails})
    accepted_at = ticketed_at = delivered_at = None
    while delivered_at is None:
        time.sleep(e2e.POLL)
        now = time.monotonic()
        if now - t0 > 900:
            raise SystemExit(f"{name}: not done after {now - t0:.0f} s; see {folder}")
        for node in nodes:
            if node.proc is not None and node.proc.poll() is not None:
                raise SystemExit(f"mailgate exited:\n{(node.folder / 'daemon.log').read_text(errors='replace')[-3000:]}")
        if accepted_at is None:
            if not all([crowd.collect() for crowd in crowds]):
                continue
            accepted_at = max(s.finished for crowd in crowds for s in crowd.sent.values())
        if ticketed_at is None:
            failed = sum(s.failed for crowd in crowds for s in crowd.sent.values())
            spooled = db.spooled()
            if spooled < count - failed or db.processed() < spooled:
                continue
            ticketed_at = now
        if db.unsent() == 0 and sink.update() >= db.outbox().get("sent", 0):
            delivered_at = now
    server_cpu = e2e_parts.cpu_seconds(server) - server0 if server is not None else None
    per_node = []
    for node, crowd, started_cpu, first in zip(nodes, crowds, cpu0, before, strict=True):
        assert node.proc is not None
        cpu = e2e_parts.cpu_seconds(node.proc.pid) - started_cpu
        after = e2e._counters(node.http_port)
        crowd.close()
        moved = {k: after[k] - first[k] for k in e2e.COUNTERS}
        accepted = crowd.accepted
        per_node.append({
            "daemon": node.folder.name, "accepted": accepted,
            "cpu_ms_per_accepted_mail": round(cpu * 1000 / max(1, accepted), 2),
            "write_txns": int(moved[e2e.COUNTERS[1]]), "statements": int(moved[e2e.COUNTERS[0]]),
            "refused": sum(s.refused for s in crowd.sent.values()),
        })
    assert accepted_at is not None and ticketed_at is not None
    return Result(name, sum(c.accepted for c in crowds), accepted_at - t0, ticketed_at - t0, delivered_at - t0,
                  per_node, sink.duplicates, db.outbox(), server_cpu, db.value("SELECT COUNT(*) FROM tickets"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=500, help="mails per setup (default 500)")
    parser.add_argument("--clients", type=int, default=8, help="SMTP client processes in all (default 8)")
    parser.add_argument("--corpus", choices=("generated", "shared", "both"), default="generated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", help="a PostgreSQL server to make the bench's databases on (default: its own)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, SQLite files)")
    args = parser.parse_args()
    mails = e2e_mail.corpus(args.corpus, args.mails, args.seed)
    print(f"{len(mails)} {args.corpus} mails, {args.clients} clients; {os.cpu_count()} CPUs; config.example.toml"
          " with acknowledgement caps off")
    work = Path(tempfile.mkdtemp(prefix="mailgate-scaleout-"))
    results: dict[str, Result] = {}
    try:
        with contextlib.ExitStack() as stack:
            server = args.server or stack.enter_context(cluster(work))
            tag = f"mailgate_scaleout_{os.getpid()}"
            setups = (("sqlite", 1, None), ("pg1", 1, fresh_database(server, f"{tag}_1")),
                      ("pg2", 2, fresh_database(server, f"{tag}_2")))
            for name, daemons, url in setups:
                result = run_setup(work, name, mails, args.clients, daemons, url)
                results[name] = result
                print(result.line())
                for node in result.nodes:
                    print(f"         {node}")
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    figures: dict[str, Any] = {"mails": len(mails), "clients": args.clients, "corpus": args.corpus}
    for name, result in results.items():
        figures[f"{name}_rate"] = round(result.rate(result.accepted_s), 1)
        figures[f"{name}_ticketed_rate"] = round(result.rate(result.ticketed_s), 1)
        figures[f"{name}_delivered_rate"] = round(result.rate(result.delivered_s), 1)
    figures["pg2_vs_pg1"] = round(figures["pg2_rate"] / figures["pg1_rate"], 3) if figures.get("pg1_rate") else None
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
