"""Outbound throughput and acknowledgement latency against an aiosmtpd sink on 127.0.0.1.

Run: python bench/outbound.py [--messages N] [--rate R] [--seconds S]
  1. render only: templates + compose, no store, no network (messages/s)
  2. baseline: aiosmtplib sending pre-built bytes to the sink over relay.connections sessions
  3. mailgate: N mails rendered, queued in the outbox and delivered by the sender (messages/s)
  4. steady load: customer mails at R/s over SMTP for S seconds; time from the 250 of each to
     its acknowledgement accepted by the sink (p50, p99)
Prints figures as it goes; the last line is one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import smtplib
import statistics
import sys
import tempfile
import time
from email import message_from_bytes, policy
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailgate import config as config_mod
from mailgate import tokens
from mailgate.daemon import started
from mailgate.outgoing import compose
from mailgate.outgoing.templates import Templates, sample_context

CONNECTIONS = 2


class Sink:
    """Counts what it accepts and when; keyed by In-Reply-To for the latency figures."""

    def __init__(self) -> None:
        self.count = 0
        self.arrived: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        raw = envelope.original_content or b""
        head = raw.split(b"\r\n\r\n", 1)[0]
        msg = message_from_bytes(head, policy=policy.compat32)
        parent = (msg["In-Reply-To"] or "").strip()
        if parent:
            self.arrived.setdefault(parent, time.perf_counter())
        self.changed.set()
        return "250 2.0.0 OK"

    async def wait(self, count: int, timeout: float = 300) -> None:
        async with asyncio.timeout(timeout):
            while self.count < count:
                self.changed.clear()
                await self.changed.wait()


def write_config(folder: Path, sink_port: int) -> Path:
    path = folder / "config.toml"
    path.write_text(
        '[gateway]\naddresses = ["support@example.test"]\nsecret = "bench-secret-0123456789"\n'
        '[storage]\ndatabase = "mailgate.sqlite3"\n[smtp]\nlisten = "127.0.0.1:0"\n'
        f'[relay]\nhost = "127.0.0.1"\nport = {sink_port}\nsecurity = "none"\nconnections = {CONNECTIONS}\n'
        "[outbox]\nauto_replies_per_hour = 1000000\n"
    )
    return path


def render_only(count: int) -> float:
    templates = Templates()
    data = sample_context()
    secret = b"bench-secret-0123456789"
    token = tokens.Token("r", 1042)
    start = time.perf_counter()
    for i in range(count):
        rendered = templates.render("ack", "en", data)
        compose.wire(compose.Outgoing(
            from_name="Support", from_address="support@example.test", to_name="Zoë", to_address=f"c{i}@customer.test",
            reply_to=tokens.reply_address(secret, "support@example.test", token), subject=rendered.subject,
            message_id=tokens.message_id(secret, "example.test", token), text=rendered.text, html=rendered.html,
            marker=tokens.body_marker(secret, token), in_reply_to=f"m{i}@customer.test",
        ))
    return count / (time.perf_counter() - start)


async def baseline(port: int, sink: Sink, count: int) -> float:
    """Bare aiosmtplib: the same bytes, no rendering, no store, the same number of sessions."""
    raw = b"From: a@example.test\r\nTo: b@customer.test\r\nSubject: x\r\n\r\n" + (b"x" * 70 + b"\r\n") * 30
    before = sink.count
    start = time.perf_counter()

    async def one_session(n: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="bench")
        await client.connect()
        for _ in range(n):
            await client.sendmail("a@example.test", ["b@customer.test"], raw)
        await client.quit()

    share = [count // CONNECTIONS + (1 if i < count % CONNECTIONS else 0) for i in range(CONNECTIONS)]
    await asyncio.gather(*(one_session(n) for n in share))
    await sink.wait(before + count)
    return count / (time.perf_counter() - start)


async def outbox_throughput(running: object, sink: Sink, count: int) -> tuple[float, float]:
    """Render + queue N mails (batches of 50 per transaction), then wait until the sink has them all."""
    store = running.store  # type: ignore[attr-defined]
    mailer = running.mailer  # type: ignore[attr-defined]
    before = sink.count
    start = time.perf_counter()
    done = 0
    while done < count:
        async with store.txn() as tx:
            info = await mailer.ticket(tx, 1)
            for _ in range(min(50, count - done)):
                await mailer.queue_mail(
                    tx, info, kind="notify", template="notify_new", to_name="Agent",
                    to_address=f"agent{done}@agents.test", language="en", auto_kind="auto-generated",
                    data=mailer.data(info, agent_name="Agent", agent_id="agent", message_text="Hello " * 50),
                )
                done += 1
    queued = time.perf_counter()
    await sink.wait(before + count)
    end = time.perf_counter()
    return count / (end - start), count / (queued - start)


def steady_load(port: int, rate: float, seconds: float, accepted: dict[str, float]) -> None:
    """One SMTP session sending customer mails at a fixed rate; records the time of each 250."""
    total = int(rate * seconds)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            message_id = f"load{i}.{int(start)}@customer.test"
            raw = (
                f"From: Customer {i} <c{i}@customer.test>\r\nTo: support@example.test\r\n"
                f"Subject: steady load {i}\r\nMessage-ID: <{message_id}>\r\n"
                "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHello,\r\n\r\nthe printer is on fire again.\r\n"
            ).encode()
            client.sendmail(f"c{i}@customer.test", ["support@example.test"], raw)
            accepted[f"<{message_id}>"] = time.perf_counter()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="sink.bench", decode_data=False, loop=loop), host="127.0.0.1", port=0
    )
    sink_port = int(server.sockets[0].getsockname()[1])
    figures: dict[str, object] = {"messages": args.messages, "rate_per_s": args.rate, "seconds": args.seconds,
                                  "relay_connections": CONNECTIONS}
    figures["render_msgs_per_s"] = round(render_only(min(args.messages, 2000)), 1)
    print(f"render only (templates + compose): {figures['render_msgs_per_s']} msg/s", flush=True)
    figures["baseline_relay_msgs_per_s"] = round(await baseline(sink_port, sink, args.messages), 1)
    print(f"baseline aiosmtplib -> sink: {figures['baseline_relay_msgs_per_s']} msg/s", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        config = config_mod.load(write_config(Path(folder), sink_port))
        async with started(config) as running:
            # One ticket to write about (its acknowledgement is the first mail).
            await asyncio.to_thread(_one_mail, running.smtp_port)
            await sink.wait(sink.count + 1)
            sent, queued = await outbox_throughput(running, sink, args.messages)
            figures["sent_msgs_per_s"] = round(sent, 1)
            figures["queued_msgs_per_s"] = round(queued, 1)
            print(f"mailgate outbox (render + queue + deliver): {sent:.1f} msg/s (queueing alone {queued:.1f})",
                  flush=True)
            accepted: dict[str, float] = {}
            await asyncio.to_thread(steady_load, running.smtp_port, args.rate, args.seconds, accepted)
            async with asyncio.timeout(120):
                while not all(k in sink.arrived for k in accepted):
                    sink.changed.clear()
                    await sink.changed.wait()
    server.close()
    latencies = [(sink.arrived[k] - t) * 1000 for k, t in accepted.items()]
    figures["acks"] = len(latencies)
    figures["ack_p50_ms"] = round(statistics.median(latencies), 1)
    figures["ack_p99_ms"] = round(percentile(latencies, 0.99), 1)
    figures["ack_max_ms"] = round(max(latencies), 1)
    print(f"ack latency (250 of the customer's mail -> ack accepted by sink), {len(latencies)} mails at "
          f"{args.rate}/s: p50 {figures['ack_p50_ms']} ms, p99 {figures['ack_p99_ms']} ms", flush=True)
    figures["sent_vs_baseline"] = round(sent / float(figures["baseline_relay_msgs_per_s"]), 3)  # type: ignore[arg-type]
    figures["sent_vs_render"] = round(sent / float(figures["render_msgs_per_s"]), 3)  # type: ignore[arg-type]
    return figures


def _one_mail(port: int) -> None:
    raw = (b"From: First <first@customer.test>\r\nTo: support@example.test\r\nSubject: first\r\n"
           b"Message-ID: <first@customer.test>\r\n\r\nHello\r\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("first@customer.test", ["support@example.test"], raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="mails for the throughput figures")
    parser.add_argument("--rate", type=float, default=20.0, help="customer mails per second in the steady load")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the steady load")
    args = parser.parse_args()
    figures = asyncio.run(main_async(args))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
