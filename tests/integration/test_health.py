"""Health and metrics as operators meet them: /metrics and /healthz on a running daemon, `mailgate health`, the watchdog."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailgate import config as config_mod
from mailgate.config import Config
from mailgate.daemon import Running, started

from .conftest import SUPPORT, closed_port, mail, run_cli_sync, send, settle, write_config
from .sink import AGENTS, Sink, relay_section, wait_mail

HTTP = '\n[http]\nlisten = "127.0.0.1:0"\n'
CUSTOMER = "alice@customer.test"


@pytest.fixture
def health_config(tmp_path: Path) -> Callable[..., Config]:
    def make(relay_port: int, extra: str = "") -> Config:
        body = relay_section(relay_port, send_delay=0.2) + AGENTS + HTTP + extra
        return config_mod.load(write_config(tmp_path, body))

    return make


async def http(running: Running, request: bytes | str) -> tuple[int, bytes]:
    """One request on a fresh connection to the daemon's listener; the status and body it answers."""
    assert running.monitor is not None and running.monitor.http_port is not None
    if isinstance(request, str):
        request = f"{request} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", running.monitor.http_port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(20):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def metrics(running: Running) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = await http(running, "GET /metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def healthz(running: Running) -> tuple[int, dict[str, object]]:
    status, body = await http(running, "GET /healthz")
    return status, json.loads(body)


async def customer_writes(running: Running, sink: Sink | None, n: int = 0) -> None:
    subject = f"Printer on fire {n}"
    await send(running.smtp_port, mail(subject=subject, message_id=f"<m{n}@customer.test>"), [SUPPORT])
    await settle(running)
    if sink is not None:
        await wait_mail(sink, CUSTOMER, subject)


@pytest.mark.asyncio
async def test_metrics_count_a_mail_sent_over_smtp(health_config: Callable[..., Config], sink: Sink) -> None:
    async with started(health_config(sink.port)) as running:
        before = await metrics(running)
        assert before.get(("mailgate_mails_received_total", (("source", "smtp"),)), 0) == 0
        assert before[("mailgate_outbox_rows", (("state", "failed"),))] == 0
        assert before[("mailgate_worker_up", (("kind", "spool-worker"),))] == 1

        await customer_writes(running, sink)
        await customer_writes(running, sink, 1)
        after = await metrics(running)

    assert after[("mailgate_mails_received_total", (("source", "smtp"),))] == 2
    assert after[("mailgate_tickets_opened_total", (("queue", "support"),))] == 2
    assert after[("mailgate_outbox_rows", (("state", "sent"),))] >= 2  # the acknowledgements (and agents' notices)
    assert after[("mailgate_outbox_oldest_queued_seconds", ())] >= 0
    assert after[("mailgate_relay_failures_total", ())] == 0
    assert after[("mailgate_spool_rows", (("state", "dead"),))] == 0
    assert after[("mailgate_imap_accounts", (("state", "idle"),))] == 0
    assert after[("mailgate_sla_breached_tickets", (("kind", "resolution"),))] == 0
    assert not [name for name, _ in after if name.endswith("_created")]
    # Bounded labels only: nothing a sender writes (addresses, subjects) becomes a series.
    assert not [key for key in after if any("@" in v or "Printer" in v for _, v in key[1])]


@pytest.mark.asyncio
async def test_healthz_ok_then_503_when_the_relay_fails(health_config: Callable[..., Config], sink: Sink) -> None:
    async with started(health_config(sink.port)) as running:
        status, body = await healthz(running)
        assert (status, body["relay"], body["store"]) == (200, "unknown", "writable")
        assert set(body["workers"].values()) == {"alive"}  # type: ignore[union-attr]
        await customer_writes(running, sink)
        status, body = await healthz(running)
        assert (status, body["relay"]) == (200, "ok")

    async with started(health_config(closed_port())) as running:
        assert running.outgoing is not None
        sender = running.outgoing.sender
        await customer_writes(running, None, 5)  # a new mail (the first one is a duplicate now)
        async with asyncio.timeout(20):
            while sender.relay_failed_at is None:
                sender.delivered.clear()
                await sender.delivered.wait()
        status, body = await healthz(running)
        assert (status, body["status"], body["relay"]) == (503, "failing", "failing")
        assert body["problems"] == ["relay failing"]
        samples = await metrics(running)
        assert samples[("mailgate_relay_failures_total", ())] >= 1


@pytest.mark.asyncio
async def test_healthz_503_when_a_worker_is_stopped(health_config: Callable[..., Config], sink: Sink) -> None:
    async with started(health_config(sink.port)) as running:
        assert (await healthz(running))[0] == 200
        assert running.worker_task is not None
        running.worker_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running.worker_task
        status, body = await healthz(running)
        assert status == 503
        assert body["workers"]["spool-worker"] == "dead"  # type: ignore[index]
        assert body["problems"] == ["worker spool-worker dead"]
        samples = await metrics(running)
        assert samples[("mailgate_worker_up", (("kind", "spool-worker"),))] == 0

        running.server.close()  # the SMTP listener gone: nobody can hand us mail
        _status, body = await healthz(running)
        assert body["workers"]["smtp-server"] == "dead"  # type: ignore[index]


@pytest.mark.asyncio
async def test_listener_refuses_everything_but_get_metrics_and_healthz(
    health_config: Callable[..., Config], sink: Sink
) -> None:
    async with started(health_config(sink.port)) as running:
        assert (await http(running, "POST /metrics"))[0] == 405
        assert (await http(running, "HEAD /healthz"))[0] == 405
        assert (await http(running, "GET /"))[0] == 404
        assert (await http(running, "GET /../etc/passwd"))[0] == 404
        assert (await http(running, b"\x16\x03\x01garbage\r\n\r\n"))[0] == 400
        assert (await http(running, b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n"))[0] == 400
        assert (await http(running, "GET /" + "a" * 20000))[0] == 400
        # A client that connects and says nothing holds no one else up.
        _idle = await asyncio.open_connection("127.0.0.1", running.monitor.http_port)  # type: ignore[union-attr]
        assert (await http(running, "GET /healthz?verbose=1"))[0] == 200
        _idle[1].close()
        await customer_writes(running, sink)


def _cli(config: Config, *args: str) -> tuple[int, str]:
    result = run_cli_sync(config, "health", *args)
    return result.exit_code, result.output


@pytest.mark.asyncio
async def test_mailgate_health_exit_codes(health_config: Callable[..., Config], sink: Sink) -> None:
    config = health_config(sink.port)
    async with started(config) as running:
        url = f"http://127.0.0.1:{running.monitor.http_port}"  # type: ignore[union-attr]
        code, output = await asyncio.to_thread(_cli, config, "--url", url, "--json")
        assert code == 0, output
        assert json.loads(output)["workers"]["spool-worker"] == "alive"
        code, output = await asyncio.to_thread(_cli, config, "--url", url)
        assert (code, output.splitlines()[0]) == (0, "ok")

        assert running.worker_task is not None
        running.worker_task.cancel()
        code, output = await asyncio.to_thread(_cli, config, "--url", url)
        assert code == 1
        assert output.splitlines()[0] == "failing: worker spool-worker dead"

    # The daemon down: nobody answers at the URL, but the store itself is fine.
    code, output = await asyncio.to_thread(_cli, config, "--url", url)
    assert code == 1 and "daemon not answering" in output
    code, output = await asyncio.to_thread(_cli, config, "--store", "--json")
    assert code == 0, output
    assert json.loads(output) == {"status": "ok", "problems": [], "store": "writable", "spooled": 0, "queued": 0,
                                  "failed": 0, "dead": 0}


def _notify_socket(tmp_path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    return sock


async def _next(sock: socket.socket) -> str:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(20):
        return (await loop.sock_recv(sock, 4096)).decode()


@pytest.mark.asyncio
async def test_watchdog_pings_while_workers_live_and_stops_when_one_dies(
    health_config: Callable[..., Config], sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = _notify_socket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # WatchdogSec=0.2s: a ping every 0.1 s
    try:
        async with started(health_config(sink.port)) as running:
            assert running.monitor is not None and running.monitor.watchdog is not None
            assert running.monitor.watchdog.interval == pytest.approx(0.1)
            first = await _next(sock)
            assert first.splitlines() == ["WATCHDOG=1", "STATUS=spooled 0, queued 0, failed 0"]

            assert running.worker_task is not None
            running.worker_task.cancel()
            while "worker dead" not in (message := await _next(sock)):
                pass
            assert message == "STATUS=worker dead: spool-worker; spooled 0, queued 0, failed 0"
            later = [await _next(sock) for _ in range(3)]
            assert not [m for m in later if "WATCHDOG=1" in m]
    finally:
        sock.close()


@pytest.mark.asyncio
async def test_no_listener_and_no_watchdog_unless_asked(make_config: Callable[..., Config],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    async with started(make_config()) as running:
        assert running.monitor is not None
        assert running.monitor.server is None and running.monitor.watchdog is None


def test_http_listen_errors_name_file_line_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, '\n[http]\nlisten = "localhost"\n')
    with pytest.raises(config_mod.ConfigError) as caught:
        config_mod.load(path)
    assert [str(issue).split(": ", 1)[1] for issue in caught.value.issues][0].startswith("http.listen:")
    assert ":" in str(caught.value.issues[0]).split(": ", 1)[0]
