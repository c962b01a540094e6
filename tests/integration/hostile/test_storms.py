"""Storms and backscatter over real SMTP: a flood from one sender, and spam from forged senders.

A flood must not become a flood of tickets, agent notifications or acknowledgements, yet every mail
is stored; forged senders must not turn mailgate into a backscatter source; ordinary customers
still get their acknowledgement afterwards.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from mailgate.clock import ManualClock
from mailgate.config import Config
from mailgate.daemon import Running, started
from mailgate.outgoing import guard as loops

from ..conftest import SUPPORT, mail, run_cli, settle
from ..sink import Sink, wait_mail
from .conftest import AINO, TRUSTED, still_flowing

pytestmark = pytest.mark.asyncio

FLOODER = "flood@storm.test"
# The daemon's SMTP peer in these tests is 127.0.0.1: trusting it stands for the operator's MTA in front.
TRUST_LOOPBACK = 'trusted_peers = ["127.0.0.1"]'


def by_mta(raw: bytes, results: str) -> bytes:
    """The mail as the trusted MTA hands it on: its verdict and its Received header on top."""
    return (
        f"Authentication-Results: {TRUSTED}; {results}\r\n"
        f"Received: from sender.test by {TRUSTED} with ESMTP; Mon, 23 Nov 2026 10:00:01 +0000\r\n"
    ).encode() + raw


def _send_many(port: int, mails: list[tuple[str, bytes]]) -> None:
    """One SMTP session, many transactions: how a broken mailer or a bot floods a server."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for sender, raw in mails:
            client.sendmail(sender, [SUPPORT], raw)


async def send_many(port: int, mails: list[tuple[str, bytes]]) -> None:
    await asyncio.to_thread(_send_many, port, mails)


async def cli(config: Config, *args: str) -> tuple[int, str]:
    """The real `mailgate` command against the daemon's database (asyncio.run needs its own thread)."""
    assert config.source is not None
    result = await run_cli(config, *args)
    return result.exit_code, result.stdout


async def _count(running: Running, sql: str, params: tuple[object, ...] = ()) -> int:
    async with running.store.read() as tx:
        return int(await tx.value(sql, params) or 0)


async def test_flood_from_one_sender_is_stored_but_capped(hostile_config: Callable[..., Config], sink: Sink) -> None:
    cap, total = 5, 200
    config = hostile_config("\n[storms]\nsender_mails_per_hour = 5\n")
    flood = [(FLOODER, mail(sender=f"Flood Bot <{FLOODER}>", subject=f"Alert {i}", message_id=f"<flood{i}@storm.test>"))
             for i in range(total)]
    async with started(config) as running:
        await send_many(running.smtp_port, flood)
        await settle(running, timeout=120)

        # Nothing is lost: every mail is a message on a ticket of the flooder.
        assert await _count(running, "SELECT COUNT(*) FROM spool WHERE state = 'done'") == total
        assert await _count(running, "SELECT COUNT(*) FROM messages WHERE from_address = ? AND direction = 'in'",
                            (FLOODER,)) == total
        # ... but only `cap` of them opened tickets and told the agents; one summary for the rest.
        tickets = await _count(running, "SELECT COUNT(*) FROM ticket_parties WHERE address = ? AND role = 'requester'",
                               (FLOODER,))
        assert 1 <= tickets <= cap
        summary = await wait_mail(sink, AINO, "Mail storm held")
        assert FLOODER in summary.text()
        notices = await _count(running, "SELECT COUNT(*) FROM outbox WHERE kind = 'notify' AND rcpt_to = ?", (AINO,))
        assert notices <= cap + 1
        acks = await _count(running, "SELECT COUNT(*) FROM outbox WHERE kind = 'ack' AND rcpt_to = ?", (FLOODER,))
        assert acks <= cap

        # The operator sees the count.
        code, stdout = await cli(config, "storms", "list", "--json")
        assert code == 0, stdout
        rows = [r for r in json.loads(stdout) if r["sender"] == FLOODER]
        assert sum(r["held"] for r in rows) == total - tickets
        code, stdout = await cli(config, "storms", "list")
        assert FLOODER in stdout and "held" in stdout

        await still_flowing(running, sink)


async def test_release_lets_a_trusted_sender_through(hostile_config: Callable[..., Config], sink: Sink) -> None:
    config = hostile_config("\n[storms]\nsender_mails_per_hour = 2\n")
    async with started(config) as running:
        await send_many(running.smtp_port, [
            (FLOODER, mail(sender=FLOODER, subject=f"Disk full {i}", message_id=f"<rel{i}@storm.test>")) for i in range(4)
        ])
        await settle(running)
        before = await _count(running, "SELECT COUNT(*) FROM tickets")
        assert before == 2
        code, stdout = await cli(config, "storms", "release", FLOODER, "--json")
        assert code == 0 and json.loads(stdout)["held"] == 2
        await send_many(running.smtp_port, [(FLOODER, mail(sender=FLOODER, subject="Disk full again",
                                                           message_id="<rel-after@storm.test>"))])
        await settle(running)
        assert await _count(running, "SELECT COUNT(*) FROM tickets") == before + 1


def _no_from(i: int) -> bytes:
    return (f"To: {SUPPORT}\r\nSubject: no sender {i}\r\nMessage-ID: <nofrom{i}@storm.test>\r\n\r\n"
            f"who am I {i}\r\n").encode()


async def test_flood_without_from_is_capped_by_envelope_sender(
    hostile_config: Callable[..., Config], sink: Sink
) -> None:
    config = hostile_config("\n[storms]\nsender_mails_per_hour = 3\n")
    async with started(config) as running:
        await send_many(running.smtp_port, [("bot@storm.test", _no_from(i)) for i in range(30)])
        await settle(running)
        assert await _count(running, "SELECT COUNT(*) FROM messages WHERE direction = 'in'") == 30
        assert await _count(running, "SELECT COUNT(*) FROM tickets") <= 4  # 3, and at most one hidden one
        assert await _count(running, "SELECT COUNT(*) FROM outbox WHERE kind = 'notify'") <= 4
        await still_flowing(running, sink)


async def test_forged_senders_get_at_most_the_global_cap(hostile_config: Callable[..., Config], sink: Sink) -> None:
    cap = 5
    clock = ManualClock()
    config = hostile_config("\n[storms]\nacks_per_minute = 5\n", smtp=TRUST_LOOPBACK)
    spam = [(f"victim{i}@forged.test", mail(sender=f"victim{i}@forged.test", subject=f"Cheap pills {i}",
                                             message_id=f"<spam{i}@forged.test>")) for i in range(50)]
    async with started(config, clock=clock) as running:
        await send_many(running.smtp_port, spam)
        await settle(running, timeout=60)
        assert await _count(running, "SELECT COUNT(*) FROM tickets") == 50  # every mail is kept
        acks = await _count(running, "SELECT COUNT(*) FROM outbox WHERE kind = 'ack'")
        assert acks <= cap
        await sink.wait_for(lambda r: sum(1 for m in r if "victim" in " ".join(m.rcpt_tos)) >= acks)
        assert sum(1 for m in sink.received if any("@forged.test" in a for a in m.rcpt_tos)) <= cap
        code, stdout = await cli(config, "storms", "list", "--json")
        assert code == 0, stdout
        withheld = [r for r in json.loads(stdout) if r["sender"] is None]
        assert withheld and withheld[0]["held"] == 50 - acks

        # A customer the trusted MTA vouches for (DKIM pass) is no backscatter risk: answered despite the cap.
        customer = "carol@customer.test"
        vouched = by_mta(mail(sender=f"Carol <{customer}>", subject="Real question", message_id="<carol1@customer.test>"),
                         "dkim=pass header.d=customer.test")
        await send_many(running.smtp_port, [(customer, vouched)])
        await settle(running)
        await wait_mail(sink, customer, "Real question")

        # The cap is per minute: once the flood's minute is over, ordinary customers are answered again.
        clock.advance(timedelta(minutes=2))
        await still_flowing(running, sink)


async def test_no_ack_when_trusted_mta_says_forged(hostile_config: Callable[..., Config], sink: Sink) -> None:
    async with started(hostile_config(smtp=TRUST_LOOPBACK)) as running:
        await _no_ack_when_trusted_mta_says_forged(running, sink)


async def test_a_verdict_from_an_untrusted_peer_changes_nothing(hostile: Running, sink: Sink) -> None:
    """Our own authserv-id, but the mail came straight from the internet: a sender can write any verdict."""
    raw = by_mta(mail(sender="erin@customer.test", subject="Self-accused", message_id="<erin@customer.test>"),
                 "spf=fail smtp.mailfrom=customer.test")
    await send_many(hostile.smtp_port, [("erin@customer.test", raw)])
    await settle(hostile)
    await wait_mail(sink, "erin@customer.test", "Self-accused")


async def _no_ack_when_trusted_mta_says_forged(hostile: Running, sink: Sink) -> None:
    spam = []
    for i in range(30):
        sender = f"victim{i}@forged.test"
        verdict = "spf=fail smtp.mailfrom=forged.test" if i % 2 else "dmarc=fail header.from=forged.test"
        spam.append((sender, by_mta(mail(sender=sender, subject=f"Win {i}", message_id=f"<auth{i}@forged.test>"),
                                    verdict)))
    spam.append(("spam@spam.test", mail(sender="spam@spam.test", subject="Flagged", message_id="<flag@spam.test>",
                                         headers={"X-Spam-Flag": "YES"})))
    await send_many(hostile.smtp_port, spam)
    await settle(hostile)
    assert await _count(hostile, "SELECT COUNT(*) FROM tickets") == 31  # stored and visible to agents
    assert await _count(hostile, "SELECT COUNT(*) FROM outbox WHERE kind = 'ack'") == 0
    reasons = await _count(hostile, "SELECT COUNT(*) FROM events WHERE kind = 'ack.suppressed'"
                           " AND (data LIKE '%spf=fail%' OR data LIKE '%dmarc=fail%' OR data LIKE '%spam%')")
    assert reasons == 31
    # A forged Authentication-Results from an untrusted authserv-id changes nothing: the customer is answered.
    raw = mail(sender="dave@customer.test", subject="Untrusted verdict", message_id="<dave@customer.test>",
               headers={"Authentication-Results": "evil.test; spf=fail smtp.mailfrom=customer.test"})
    await send_many(hostile.smtp_port, [("dave@customer.test", raw)])
    await settle(hostile)
    await wait_mail(sink, "dave@customer.test", "Untrusted verdict")
    await still_flowing(hostile, sink)


async def test_storm_config_defaults_keep_old_configs_working(tmp_path: Path) -> None:
    from mailgate import config as config_mod

    from ..conftest import write_config

    config = config_mod.load(write_config(tmp_path))
    assert config.storms.sender_mails_per_hour == 20 and config.storms.acks_per_minute == 60


async def test_verdict_helpers_read_only_what_they_should() -> None:
    """Unit checks behind the SMTP tests: a DMARC verdict on another domain and an untrusted A-R count for nothing."""
    from mailgate.mail.parse import parse
    from mailgate.models import ParsedMail

    def parsed(*headers: str) -> ParsedMail:
        # As the MTA in front writes them: on top, above everything the sender wrote.
        return parse("".join(h + "\r\n" for h in headers).encode() + mail(sender="eve@forged.test"))

    assert loops.auth_failed(parsed(f"Authentication-Results: {TRUSTED}; dmarc=fail header.from=forged.test"),
                             (TRUSTED,), 1) == "dmarc=fail"
    assert loops.auth_failed(parsed(f"Authentication-Results: {TRUSTED}; dmarc=fail header.from=other.test"),
                             (TRUSTED,), 1) is None
    assert loops.auth_failed(parsed("Authentication-Results: evil.test; spf=fail smtp.mailfrom=forged.test"),
                             (TRUSTED,), 1) is None
    assert loops.spam_flagged(parsed("X-Spam-Status: Yes, score=12.1"), ("X-Spam-Status",)) == "X-Spam-Status"
    assert loops.spam_flagged(parsed("X-Spam-Status: No, score=0.1"), ("X-Spam-Status",)) is None
