"""End to end, the real work: mailgate on the example config beside a trivial SMTP server, A B A B.

Every party is its own process: the mailgate daemon (`python -m mailgate run` on config.example.toml
with ports, paths and a secret filled in: queues with agents as members, acknowledgements and
agent notifications on, [http] for /metrics), a relay sink (aiosmtpd; counts mails and duplicate
Message-IDs), the trivial server (aiosmtpd that INSERTs each mail into SQLite in WAL mode, commits
and answers 250: the least any SMTP server does), and N client processes (smtplib, one connection
each, their share of the mails in order, time to 250 per mail). The two servers take turns on the
same mails; figures are medians over rounds of ratios within a round (the machine is shared).

    .venv/bin/python bench/e2e.py [--mails 500] [--clients 8] [--rounds 2] [--corpus generated|shared|both]
                        [--no-relay-down] [--stored-tickets 100000 --open-on-one-agent 20000] [--memory 50000]
                        [--other /tmp/main-checkout]

- accepted: the last client got its last 250. ticketed: every mail is processed by the daemon
  (a ticket message, or counted as duplicate/dead), read from its SQLite file read-only.
  delivered: that, and no outbox row queued or sending, and the sink holds every row sent.
  The trivial server does nothing after the 250: its ticketed and delivered times are its accept time.
- CPU ms per mail: utime+stime of the server's process tree (/proc, children included), from the
  first mail until delivered (trivial: until accepted), divided by the mails.
- statements and write transactions per mail: mailgate_store_*_total on /metrics before and after,
  less what the bench's own scrapes cost.
- Each mailgate round sits between two trivial rounds (B A B A B): its ratios are to those two.
- Relay DOWN (a second section unless --no-relay-down): nothing listens on the relay port; accept,
  ticketed, p99, and the outbox rows that pile up with their attempts.
- --stored-tickets N [--open-on-one-agent M]: each round also runs mailgate on a store that holds N
  tickets (M open on one agent); stored_vs_empty is its ticketed rate over the empty store's.
- --memory N: one daemon takes N more mails (made by the clients as they go); RSS sampled every 2 s.
- --other DIR: a second mailgate (another checkout's package, e.g. `git archive main | tar -x -C DIR`)
  runs in every round too, A B C: before and after on the same machine in the same minute.

Generated mail by default (bench/e2e_mail.py: distinct customers, a third answering their own earlier
mail, non-ASCII names and subjects, HTML, a few attachments); --corpus shared uses ../shared/corpus as
bench/ingest.py picks it. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import e2e_mail  # noqa: E402
import e2e_parts  # noqa: E402
from e2e_mail import Mail  # noqa: E402

POLL = 0.02
COUNTERS = ("mailgate_store_statements_total", "mailgate_store_write_transactions_total",
            "mailgate_store_read_transactions_total")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_config(folder: Path, smtp_port: int, relay_port: int, http_port: int, clients: int) -> Path:
    """config.example.toml as a deployment runs it, with only what a bench must change."""
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    edits = [
        (r'(?m)^secret = "change-me[^"]*"', f'secret = "bench-{os.urandom(16).hex()}"'),
        (r'(?m)^database = "var/mailgate.sqlite3"', f'database = "{folder / "mailgate.sqlite3"}"'),
        (r'(?m)^listen = "127.0.0.1:2525"', f'listen = "127.0.0.1:{smtp_port}"'),
        # Behind one MTA a deployment raises this to the MTA's concurrency; the bench's clients are that MTA.
        (r"(?m)^max_connections_per_peer = 20", f"max_connections_per_peer = {max(20, clients)}"),
        (r'(?m)^maildir = "var/outgoing".*$', f'host = "127.0.0.1"\nport = {relay_port}\nsecurity = "none"'),
        (r'(?m)^# \[http\]\n# listen = "127.0.0.1:9925".*$', f'[http]\nlisten = "127.0.0.1:{http_port}"'),
        # The acknowledgement storm fuse counts all customers together (60 a minute): a bench's flood of
        # distinct customers would turn most acknowledgements off, and that is not the work to measure.
        (r"(?m)^acks_per_minute = 60", "acks_per_minute = 0"),
        (r"(?m)^acks_per_hour = 1000", "acks_per_hour = 0"),
        (r'(?m)^file = "examples/', f'file = "{REPO / "examples"}/'),
    ]
    for pattern, replacement in edits:
        text, n = re.subn(pattern, lambda _m, r=replacement: r, text)
        if n == 0:
            raise SystemExit(f"config.example.toml changed: {pattern!r} not found; update bench/e2e.py")
    values = tomllib.loads(text)
    assert values["relay"]["port"] == relay_port and values["http"]["listen"].endswith(f":{http_port}")
    assert values["queues"] and values["agents"], "the example config lost its queues or agents"
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


# --- clients ------------------------------------------------------------------------------------------


@dataclass
class Sent:
    latencies: list[float]
    refused: int  # 4xx answers and lost connections, each retried
    failed: int  # 5xx: given up
    finished: float  # time.monotonic() of the last answer


def _share(spec: tuple[Any, ...], n: int, clients: int) -> Iterator[Mail]:
    if spec[0] == "list":
        yield from spec[1][n::clients]
    else:
        _, seed, start, count = spec
        for i in range(start + n, start + count, clients):
            yield e2e_mail.generated(seed, i)


def _connect(port: int, n: int) -> smtplib.SMTP:
    conn = smtplib.SMTP("127.0.0.1", port, timeout=300)
    conn.ehlo(f"client{n}.bench.test")
    return conn


def _client(port: int, spec: tuple[Any, ...], n: int, clients: int, barrier: Any, results: Any) -> None:
    """Send this client's share on one connection, as an MTA does; a 4xx or a lost connection is
    retried on a new connection after a pause (an MTA's retry, compressed), a 5xx given up."""
    latencies: list[float] = []
    refused = failed = 0
    conn: smtplib.SMTP | None = _connect(port, n)
    barrier.wait()
    for mail in _share(spec, n, clients):
        for _attempt in range(100):
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = _connect(port, n)
                conn.sendmail(mail.mail_from, mail.rcpt_to, mail.raw)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
            except smtplib.SMTPResponseException as exc:
                codes = [exc.smtp_code]
            except (smtplib.SMTPException, OSError):
                codes = [0]
            else:
                latencies.append(time.perf_counter() - t0)
                break
            if max(codes) >= 500:
                failed += 1
                break
            refused += 1
            with contextlib.suppress(smtplib.SMTPException, OSError):
                if conn is not None:
                    conn.close()
            conn = None
            time.sleep(0.05)
        else:
            failed += 1
    finished = time.monotonic()
    with contextlib.suppress(smtplib.SMTPException, OSError):
        if conn is not None:
            conn.quit()
    results.put((n, Sent(latencies, refused, failed, finished)))


class Clients:
    """N client processes, connected and greeted before the clock starts."""

    def __init__(self, port: int, spec: tuple[Any, ...], clients: int) -> None:
        ctx = multiprocessing.get_context("fork")  # the mails are in memory already: no pickling
        self.barrier = ctx.Barrier(clients + 1)
        self.results = ctx.Queue()
        self.procs = [ctx.Process(target=_client, args=(port, spec, n, clients, self.barrier, self.results))
                      for n in range(clients)]
        self.sent: dict[int, Sent] = {}
        for proc in self.procs:
            proc.start()

    def go(self) -> float:
        self.barrier.wait(timeout=60)
        return time.monotonic()

    def collect(self) -> bool:
        """Take what finished clients reported; True once all have."""
        while len(self.sent) < len(self.procs):
            try:
                n, sent = self.results.get_nowait()
            except queue.Empty:
                break
            self.sent[n] = sent
        if len(self.sent) < len(self.procs) and any(p.exitcode not in (None, 0) for p in self.procs):
            raise SystemExit("an SMTP client died; see its traceback above")
        return len(self.sent) == len(self.procs)

    def close(self) -> None:
        for proc in self.procs:
            proc.join(timeout=30)

    @property
    def latencies(self) -> list[float]:
        return [x for s in self.sent.values() for x in s.latencies]

    @property
    def accepted(self) -> int:
        return len(self.latencies)


# --- the servers ----------------------------------------------------------------------------------------


def _spawn(args: list[str], log: Path, cwd: Path, source: Path | None = None) -> subprocess.Popen[bytes]:
    """A process with its output in log; with source, `-m mailgate` imports that checkout's package."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                                start_new_session=True, env=env)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, ready: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class SinkLog:
    """The sink's file of Message-IDs, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.ids, self.count = path, 0, set[bytes](), 0

    def update(self) -> int:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offset += len(complete)
            for line in complete.splitlines():
                self.count += 1
                self.ids.add(line)
        return self.count

    @property
    def duplicates(self) -> int:
        return self.count - len(self.ids)


def _server(kind: str, folder: Path, port: int, target: Path) -> subprocess.Popen[bytes]:
    log = folder / f"{kind}.log"
    proc = _spawn([sys.executable, str(BENCH / "e2e_parts.py"), kind, str(port), str(target)], log, folder)
    _wait_ready(proc, log, lambda: "ready" in log.read_text(errors="replace"), kind)
    return proc


@dataclass
class Round:
    side: str
    mails: int
    accepted_s: float
    ticketed_s: float
    delivered_s: float | None
    latencies: list[float]
    cpu_s: float
    refused: int = 0
    failed: int = 0
    counters: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def rate(self, what: str) -> float | None:
        seconds = {"accept": self.accepted_s, "ticketed": self.ticketed_s, "delivered": self.delivered_s}[what]
        return self.mails / seconds if seconds else None

    def pct(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000 if len(self.latencies) > 1 else 0.0

    def line(self) -> str:
        parts = [f"{self.side:>14}: {self.mails} mails, accept {self.rate('accept'):.0f}/s"]
        if self.side != "trivial":
            parts.append(f"ticketed {self.ticketed_s:.2f} s ({self.rate('ticketed'):.0f}/s)")
            if self.delivered_s is not None:
                parts.append(f"outbox empty {self.delivered_s:.2f} s ({self.rate('delivered'):.0f}/s)")
        parts.append(f"250 p50 {self.pct(50):.1f} ms p99 {self.pct(99):.1f} ms")
        parts.append(f"CPU {self.cpu_s * 1000 / self.mails:.2f} ms/mail")
        if self.counters:
            parts.append(f"{self.counters['statements'] / self.mails:.1f} statements, "
                         f"{self.counters['write_txns'] / self.mails:.2f} write txns per mail")
        if self.refused or self.failed:
            parts.append(f"4xx/retried {self.refused}, failed {self.failed}")
        return "; ".join(parts)


def trivial_round(work: Path, mails: list[Mail], clients: int) -> Round:
    folder = Path(tempfile.mkdtemp(prefix="trivial-", dir=work))
    port = free_port()
    proc = _server("trivial", folder, port, folder / "trivial.sqlite3")
    try:
        crowd = Clients(port, ("list", mails), clients)
        cpu0 = e2e_parts.cpu_seconds(proc.pid)
        t0 = crowd.go()
        while not crowd.collect():
            time.sleep(POLL)
        cpu1 = e2e_parts.cpu_seconds(proc.pid)
        crowd.close()
        accepted = max(s.finished for s in crowd.sent.values()) - t0
    finally:
        _stop(proc)
    return Round("trivial", crowd.accepted, accepted, accepted, accepted, crowd.latencies, cpu1 - cpu0,
                 sum(s.refused for s in crowd.sent.values()), sum(s.failed for s in crowd.sent.values()))


def merged(rounds: list[Round]) -> Round:
    """Trivial rounds taken as one: all their mails over all their seconds."""
    seconds = sum(r.accepted_s for r in rounds)
    return Round("trivial", sum(r.mails for r in rounds), seconds, seconds, seconds,
                 [x for r in rounds for x in r.latencies], sum(r.cpu_s for r in rounds),
                 sum(r.refused for r in rounds), sum(r.failed for r in rounds))


def _counters(port: int) -> dict[str, float]:
    sample = e2e_parts.scrape(port)
    return {name: sample.get(name, float("nan")) for name in COUNTERS}


def mailgate_round(work: Path, spec: tuple[Any, ...], count: int, clients: int, *, side: str = "mailgate",
                   relay_up: bool = True, store: Path | None = None, rss_every: float | None = None,
                   source: Path | None = None) -> Round:
    """One daemon from a fresh folder (or a copy of `store`), the mails of `spec` from `clients` clients;
    `count`: how many distinct mails that is; `source`: the checkout whose mailgate runs (default:
    the one installed in this interpreter)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{side}-", dir=work))
    smtp_port, relay_port, http_port = free_port(), free_port(), free_port()
    config = bench_config(folder, smtp_port, relay_port, http_port, clients)
    if store is not None:
        shutil.copy(store, folder / "mailgate.sqlite3")
    held = None
    sink = None
    daemon = None
    try:
        if relay_up:
            sink = _server("sink", folder, relay_port, folder / "sink.txt")
        else:  # bound and never listening: every connection is refused at once, as from a stopped relay
            held = socket.socket()
            held.bind(("127.0.0.1", relay_port))
        log = folder / "daemon.log"
        daemon = _spawn([sys.executable, "-m", "mailgate", "--config", str(config), "run"], log, folder, source)
        _wait_ready(daemon, log, lambda: _listening(http_port) and _listening(smtp_port), "mailgate")
        return _measure(folder, daemon, spec, count, clients, side, smtp_port, http_port, relay_up, rss_every)
    finally:
        _stop(daemon)
        _stop(sink)
        if held is not None:
            held.close()


def _measure(folder: Path, daemon: subprocess.Popen[bytes], spec: tuple[Any, ...], count: int, clients: int,
             side: str, smtp_port: int, http_port: int, relay_up: bool, rss_every: float | None) -> Round:
    db = e2e_parts.Database(folder / "mailgate.sqlite3")
    sink = SinkLog(folder / "sink.txt")
    first = _counters(http_port)
    before = _counters(http_port)
    per_scrape = {k: before[k] - first[k] for k in COUNTERS}
    crowd = Clients(smtp_port, spec, clients)
    cpu0 = e2e_parts.cpu_seconds(daemon.pid)
    rss: list[tuple[float, float]] = [(0.0, e2e_parts.rss_mb(daemon.pid))]
    poll = POLL if rss_every is None else 0.5
    t0 = crowd.go()
    accepted_at = ticketed_at = delivered_at = None
    deadline = t0 + (3600 * 3 if rss_every else 900)
    while delivered_at is None:
        time.sleep(poll)
        now = time.monotonic()
        if now > deadline:
            raise SystemExit(f"{side}: not done after {now - t0:.0f} s; see {folder / 'daemon.log'}")
        if daemon.poll() is not None:
            raise SystemExit(f"mailgate exited:\n{(folder / 'daemon.log').read_text(errors='replace')[-3000:]}")
        if rss_every is not None and now - t0 - rss[-1][0] >= rss_every:
            rss.append((now - t0, e2e_parts.rss_mb(daemon.pid)))
        if accepted_at is None:
            if not crowd.collect():
                continue
            accepted_at = max(s.finished for s in crowd.sent.values())
        if ticketed_at is None:
            # Bytes sent twice (a shared-corpus file in two sources) are spooled once.
            spooled = db.spooled()
            if spooled < count - sum(s.failed for s in crowd.sent.values()) or db.processed() < spooled:
                continue
            ticketed_at = now
            if not relay_up:
                break
        if db.unsent() == 0 and sink.update() >= db.outbox().get("sent", 0):
            delivered_at = now
    cpu1 = e2e_parts.cpu_seconds(daemon.pid)
    rss.append((time.monotonic() - t0, e2e_parts.rss_mb(daemon.pid)))
    after = _counters(http_port)
    crowd.close()
    moved = {k: after[k] - before[k] - per_scrape[k] for k in COUNTERS}
    outbox = db.outbox()
    extra: dict[str, Any] = {
        "ticket_messages": db.inbound_messages(), "dead": db.dead(), "outbox": outbox,
        "sent_per_mail": round(outbox.get("sent", 0) / max(1, crowd.accepted), 2),
        "sink_received": sink.update(), "sink_duplicates": sink.duplicates, "rss": rss,
        # Statements are counted per process: a daemon that runs work in children reports only its own.
        "processes": len(e2e_parts.tree(daemon.pid)),
    }
    db.close()
    assert accepted_at is not None and ticketed_at is not None
    return Round(
        side, crowd.accepted, accepted_at - t0, ticketed_at - t0,
        None if delivered_at is None else delivered_at - t0, crowd.latencies, cpu1 - cpu0,
        sum(s.refused for s in crowd.sent.values()), sum(s.failed for s in crowd.sent.values()),
        {"statements": moved[COUNTERS[0]], "write_txns": moved[COUNTERS[1]], "read_txns": moved[COUNTERS[2]]},
        extra,
    )


# --- the report -----------------------------------------------------------------------------------------


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None and v == v]
    return statistics.median(present) if present else None


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def ratio(a: Round, b: Round, what: str, b_what: str | None = None) -> float | None:
    top, bottom = a.rate(what), b.rate(b_what or what)
    return top / bottom if top and bottom else None


def summary(pairs: list[tuple[Round, Round]]) -> dict[str, Any]:
    """Medians over rounds; ratios within each pair first (drift on a shared machine hits both sides)."""
    ours = [a for a, _ in pairs]
    trivial = [b for _, b in pairs]
    per_mail = lambda key: median(r.counters.get(key, float("nan")) / r.mails for r in ours)  # noqa: E731
    return {
        "accept_vs_trivial": rounded(median(ratio(a, b, "accept") for a, b in pairs)),
        "ticketed_vs_trivial": rounded(median(ratio(a, b, "ticketed") for a, b in pairs)),
        "delivered_vs_trivial": rounded(median(ratio(a, b, "delivered") for a, b in pairs)),
        "cpu_ms_per_mail": rounded(median(r.cpu_s * 1000 / r.mails for r in ours), 2),
        "p50_ms": rounded(median(r.pct(50) for r in ours), 2),
        "p99_ms": rounded(median(r.pct(99) for r in ours), 2),
        "statements_per_mail": rounded(per_mail("statements"), 1),
        "write_txns_per_mail": rounded(per_mail("write_txns"), 2),
        "read_txns_per_mail": rounded(per_mail("read_txns"), 2),
        "accept_per_s": rounded(median(r.rate("accept") for r in ours), 1),
        "ticketed_per_s": rounded(median(r.rate("ticketed") for r in ours), 1),
        "delivered_per_s": rounded(median(r.rate("delivered") for r in ours), 1),
        "sent_per_mail": median(r.extra["sent_per_mail"] for r in ours),
        "ticket_messages_per_mail": median(r.extra["ticket_messages"] / r.mails for r in ours),
        "refused_4xx": sum(r.refused for r in ours),
        "failed": sum(r.failed for r in ours),
        "sink_duplicates": sum(r.extra["sink_duplicates"] for r in ours),
        "dead": sum(r.extra["dead"] for r in ours),
        "daemon_processes": max(r.extra["processes"] for r in ours),
        "trivial_accept_per_s": rounded(median(r.rate("accept") for r in trivial), 1),
        "trivial_cpu_ms_per_mail": rounded(median(r.cpu_s * 1000 / r.mails for r in trivial), 2),
        "trivial_p50_ms": rounded(median(r.pct(50) for r in trivial), 2),
        "trivial_p99_ms": rounded(median(r.pct(99) for r in trivial), 2),
    }


def print_summary(title: str, figures: dict[str, Any]) -> None:
    print(f"== {title}")
    print(f"   accept {figures['accept_per_s']}/s = {figures['accept_vs_trivial']} of trivial "
          f"({figures['trivial_accept_per_s']}/s); ticketed {figures['ticketed_per_s']}/s = "
          f"{figures['ticketed_vs_trivial']}; outbox empty {figures['delivered_per_s']}/s = "
          f"{figures['delivered_vs_trivial']} (trivial: ticketed = delivered = accepted, it does nothing else)")
    print(f"   time to 250: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms (trivial "
          f"{figures['trivial_p50_ms']} / {figures['trivial_p99_ms']}); CPU {figures['cpu_ms_per_mail']} ms/mail "
          f"(trivial {figures['trivial_cpu_ms_per_mail']}); per mail: {figures['statements_per_mail']} statements, "
          f"{figures['write_txns_per_mail']} write txns, {figures['sent_per_mail']} mails sent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=500, help="mails per round (default 500)")
    parser.add_argument("--clients", type=int, default=8, help="SMTP client processes (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs (default 2; 0: none); medians reported")
    parser.add_argument("--corpus", choices=("generated", "shared", "both"), default="generated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-relay-down", action="store_true", help="skip the relay-down section")
    parser.add_argument("--stored-tickets", type=int, default=0, help="also run on a store holding this many tickets")
    parser.add_argument("--open-on-one-agent", type=int, default=0, help="of them, open and assigned to one agent")
    parser.add_argument("--memory", type=int, default=0, help="also send this many mails to one daemon, sampling RSS")
    parser.add_argument("--other", type=Path, help="another checkout (e.g. main's, from `git archive`) run in each"
                        " round too, on the same mails and config: before/after in one run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    args = parser.parse_args()
    mails = e2e_mail.corpus(args.corpus, args.mails, args.seed)
    spec = ("list", mails)
    distinct = len({m.raw for m in mails})
    size = sum(len(m.raw) for m in mails)
    print(f"{len(mails)} {args.corpus} mails ({size / len(mails) / 1024:.1f} KiB average), {args.clients} clients, "
          f"{args.rounds} rounds; {os.cpu_count()} CPUs; config.example.toml with acknowledgement caps off")
    work = Path(tempfile.mkdtemp(prefix="mailgate-e2e-"))
    figures: dict[str, Any] = {"mails": len(mails), "clients": args.clients, "rounds": args.rounds,
                               "corpus": args.corpus}
    try:
        grown = None
        if args.stored_tickets:
            import e2e_store

            t = time.perf_counter()
            template = Path(tempfile.mkdtemp(prefix="grown-", dir=work))
            config = bench_config(template, free_port(), free_port(), free_port(), args.clients)
            grown = e2e_store.migrate(config)
            e2e_store.fill(grown, args.stored_tickets, args.open_on_one_agent)
            print(f"stored {args.stored_tickets} tickets ({args.open_on_one_agent} open on one agent) in "
                  f"{time.perf_counter() - t:.0f} s; {grown.stat().st_size / 1024 / 1024:.0f} MiB")
        pairs: list[tuple[Round, Round]] = []
        other_pairs: list[tuple[Round, Round]] = []
        grown_runs: list[Round] = []
        # B A B A B: each mailgate round is compared with the trivial rounds just before and after it,
        # so load that other users of the machine add or take away in the meantime hits both sides.
        trivials = [trivial_round(work, mails, args.clients)] if args.rounds or not args.no_relay_down else []
        for n in range(args.rounds):
            a = mailgate_round(work, spec, distinct, args.clients)
            print(f"round {n + 1} " + a.line())
            c = g = None
            if args.other is not None:
                c = mailgate_round(work, spec, distinct, args.clients, side="other", source=args.other)
                print(f"round {n + 1} " + c.line())
            if grown is not None:
                g = mailgate_round(work, spec, distinct, args.clients, side="mailgate-stored", store=grown)
                print(f"round {n + 1} " + g.line())
            trivials.append(trivial_round(work, mails, args.clients))
            print(f"round {n + 1} " + trivials[-1].line())
            bracket = merged(trivials[-2:])
            pairs.append((a, bracket))
            if c is not None:
                other_pairs.append((c, bracket))
            if g is not None:
                grown_runs.append(g)
        if pairs:  # --rounds 0: only the sections asked for below
            figures.update(summary(pairs))
            print_summary("relay up", figures)
        if other_pairs:
            theirs = summary(other_pairs)
            print_summary(f"relay up, {args.other}", theirs)
            figures["other"] = str(args.other)
            figures.update({f"other_{k}": v for k, v in theirs.items() if not k.startswith("trivial_")})
        if grown_runs:
            figures["stored_tickets"] = args.stored_tickets
            figures["open_on_one_agent"] = args.open_on_one_agent
            figures["stored_vs_empty"] = rounded(median(g.rate("ticketed") / a.rate("ticketed")  # type: ignore[operator]
                                                        for g, (a, _) in zip(grown_runs, pairs, strict=True)))
            figures["stored_delivered_vs_empty"] = rounded(median(
                ratio(g, a, "delivered") for g, (a, _) in zip(grown_runs, pairs, strict=True)))
            figures["stored_cpu_vs_empty"] = rounded(median(
                g.cpu_s / a.cpu_s for g, (a, _) in zip(grown_runs, pairs, strict=True)))
            print(f"== {args.stored_tickets} tickets stored: ticketed {figures['stored_vs_empty']} of the empty "
                  f"store's rate, delivered {figures['stored_delivered_vs_empty']}, CPU per mail "
                  f"{figures['stored_cpu_vs_empty']} of the empty store's")
        if not args.no_relay_down:
            down = mailgate_round(work, spec, distinct, args.clients, side="relay-down", relay_up=False)
            print(down.line())
            trivials.append(trivial_round(work, mails, args.clients))
            print(trivials[-1].line())
            b = merged(trivials[-2:])
            waiting = down.extra["outbox"].get("queued", 0) + down.extra["outbox"].get("sending", 0)
            figures.update({
                "relay_down_accept_vs_trivial": rounded(ratio(down, b, "accept")),
                "relay_down_ticketed_vs_trivial": rounded(ratio(down, b, "ticketed", "accept")),
                "relay_down_p99_ms": rounded(down.pct(99), 2),
                "relay_down_cpu_ms_per_mail": rounded(down.cpu_s * 1000 / down.mails, 2),
                "relay_down_outbox_waiting": waiting,
                "relay_down_outbox_attempts": down.extra["outbox"].get("attempts", 0),
            })
            print(f"== relay down: accept {figures['relay_down_accept_vs_trivial']} of trivial, ticketed "
                  f"{figures['relay_down_ticketed_vs_trivial']}, p99 {figures['relay_down_p99_ms']} ms; outbox rows "
                  f"waiting {waiting} after {figures['relay_down_outbox_attempts']} attempts")
        if args.memory:
            memory(work, args, figures)
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


def memory(work: Path, args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """One daemon, args.memory mails made by the clients as they go (not held by the bench), RSS sampled."""
    spec = ("generated", args.seed + 1, 0, args.memory)
    run = mailgate_round(work, spec, args.memory, args.clients, side="memory", rss_every=2.0)
    print(run.line())
    samples = run.extra["rss"]
    warm = next((mb for t, mb in samples if t >= run.accepted_s * 0.1), samples[0][1])
    figures.update({
        "memory_mails": run.mails,
        "rss_first_mb": round(samples[0][1], 1),
        "rss_warm_mb": round(warm, 1),
        "rss_last_mb": round(samples[-1][1], 1),
        "rss_max_mb": round(max(mb for _, mb in samples), 1),
        "rss_growth_mb": round(samples[-1][1] - warm, 1),
        "memory_ticketed_per_s": rounded(run.rate("ticketed"), 1),
    })
    print(f"== memory over {run.mails} mails: RSS {figures['rss_first_mb']} MiB at start, {figures['rss_warm_mb']} "
          f"after 10%, {figures['rss_last_mb']} at the end (max {figures['rss_max_mb']}): growth "
          f"{figures['rss_growth_mb']} MiB")


if __name__ == "__main__":
    main()
