"""A real Postfix set up from `mailgate postfix-config --lmtp`, as an operator would paste it.

customer ──SMTP──▶ Postfix ──LMTP──▶ mailgate ──SMTP (relay)──▶ Postfix ──LMTP──▶ Dovecot ◀──IMAP── test

Every mailgate-related line of the private Postfix (main.cf, the master.cf service, the transport
map with the bounce address) is what the command prints for the test's config; only the map's
path moves into the instance's folder. The instance keeps the fixture's safety: loopback only, no
DNS, and every domain without a numeric next hop refused.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from mailgate import config as config_mod
from mailgate.config import bounce_address
from mailgate.daemon import started

from .conftest import SUPPORT, write_config
from .dovecot import Dovecot, find_dovecot, free_port
from .postfix import Postfix, find_postfix, postfix_missing
from .sink import AGENTS, relay_section
from .test_e2e_postfix import AINO, PASSWORD, SHAPES, WORDS, Chain, Notice, customer_mail, text_of

on_chain = pytest.mark.asyncio(loop_scope="module")

CUSTOMER = "carla@customer.test"
GHOST = "ghost@gone.test"  # gone.test's mail server knows nobody: its recipients bounce
CLIENT = "thunderbird-top"  # a plain top-posted answer
MAIN_CF = "/etc/postfix/main.cf"
MASTER_CF = "/etc/postfix/master.cf"


@dataclass(frozen=True)
class Printed:
    """postfix-config's output, by the file each section belongs in."""

    main: dict[str, str]
    master: list[str]
    maps: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Printed:
        sections: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in text.splitlines():
            header = re.match(r"# --- (\S+)", line)
            if header:
                current = sections.setdefault(header.group(1), [])
            elif current is not None and line.strip() and not line.startswith("#"):
                current.append(line)
        main = dict(tuple(part.strip() for part in line.split("=", 1)) for line in sections.pop(MAIN_CF))
        master = sections.pop(MASTER_CF)
        return cls(main, master, {path: "".join(f"{line}\n" for line in lines) for path, lines in sections.items()})

    def transport(self) -> dict[str, str]:
        """The transport map's entries: address → transport:nexthop."""
        (text,) = self.maps.values()
        return dict(tuple(line.split()) for line in text.splitlines())  # type: ignore[misc]


def postfix_config(config: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "mailgate", "--config", str(config), "postfix-config", "--lmtp"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def chain(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Chain]:
    dovecot_binary = find_dovecot()
    if dovecot_binary is None:
        pytest.skip("dovecot is not installed (.ci/run installs dovecot-imapd and dovecot-lmtpd)")
    if not Path("/usr/lib/dovecot/lmtp").exists():
        pytest.skip("Dovecot's LMTP server is not installed (.ci/run installs dovecot-lmtpd)")
    missing = postfix_missing()
    if missing is not None:
        pytest.skip(missing)
    postfix_binary = find_postfix()
    assert postfix_binary is not None
    postfix_port, lmtp_port = free_port(), free_port()
    folder = tmp_path_factory.mktemp("e2e-config")
    path = write_config(folder, relay_section(postfix_port, send_delay=0.2) + AGENTS,
                        smtp='lmtp = true\ntrusted_peers = ["127.0.0.1"]')
    # postfix-config reads the next hop from the listen address, so it must be a fixed port.
    path.write_text(path.read_text().replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{lmtp_port}"'))
    config = config_mod.load(path)
    printed = Printed.parse(await asyncio.to_thread(postfix_config, path))
    # The printed next hop is the listener Postfix must reach, the bounce address is routed too.
    entries = printed.transport()
    assert set(entries) == {*config.gateway.addresses, bounce_address(config)}, entries
    assert set(entries.values()) == {f"mailgate:inet:127.0.0.1:{lmtp_port}"}, entries

    dovecot = Dovecot(dovecot_binary, {AINO: PASSWORD, CUSTOMER: PASSWORD}, lmtp=True)
    postfix: Postfix | None = None
    try:
        await asyncio.to_thread(dovecot.start)
        async with started(config) as running:
            assert running.smtp_port == lmtp_port
            mailbox = f"lmtp:inet:127.0.0.1:{dovecot.lmtp_port}"
            routes = {"agents.test": mailbox, "customer.test": mailbox, "gone.test": mailbox}
            postfix = Postfix(postfix_binary, routes, port=postfix_port,
                              main=printed.main, master=printed.master, maps=printed.maps)
            await asyncio.to_thread(postfix.start)
            yield Chain(running, postfix, dovecot)
    finally:
        if postfix is not None:
            await asyncio.to_thread(postfix.cleanup)
        await asyncio.to_thread(dovecot.cleanup)


def _relay(chain: Chain) -> str:
    """Postfix's log of a delivery to mailgate's listener (Dovecot listens on another port)."""
    return re.escape(f"relay=127.0.0.1[127.0.0.1]:{chain.running.smtp_port},")


@on_chain
async def test_customer_mail_and_agent_reply_through_the_printed_postfix_lines(chain: Chain) -> None:
    subject = "Scanner jams on every page"
    await chain.send(customer_mail(CUSTOMER, subject, "<carla.1@customer.test>"), [SUPPORT], CUSTOMER)

    ack = await chain.wait_mail(CUSTOMER, subject)
    assert ack["From"].addresses[0].addr_spec == SUPPORT
    assert "[#" in str(ack["Subject"])
    notice = Notice.of(await chain.wait_mail(AINO, subject))
    assert notice.reply_to.startswith("support+") and notice.reply_to.endswith("@example.test")

    # support+token@ is not in the transport map: recipient_delimiter must find it under support@.
    await chain.send(SHAPES[CLIENT](notice, WORDS[CLIENT]), [notice.reply_to], AINO)
    confirmation = await chain.wait_mail(AINO, subject, count=2)
    assert str(confirmation["Subject"]).startswith("Done"), f"{confirmation['Subject']}\n{text_of(confirmation)}"
    answer = await chain.wait_mail(CUSTOMER, subject, count=2)
    assert str(answer["In-Reply-To"]) == "<carla.1@customer.test>"
    said = re.split(r"\n-- ?\n", text_of(answer), maxsplit=1)[0]
    assert " ".join(said.split()) == " ".join(WORDS[CLIENT].split()), said
    # It went the printed way: the transport map's next hop, mailgate's own listener.
    assert re.search(rf"to=<{re.escape(notice.reply_to)}>, {_relay(chain)}.*status=sent", chain.postfix.logs())


@on_chain
async def test_postfix_dsn_reaches_the_bounce_address_from_the_printed_map(chain: Chain) -> None:
    subject = "Where did my parcel go"
    await chain.send(customer_mail(GHOST, subject, "<ghost.1@gone.test>"), [SUPPORT], GHOST)
    notice = Notice.of(await chain.wait_mail(AINO, subject))
    number = int(re.search(r"\[#(\d+)\]", notice.subject).group(1))  # type: ignore[union-attr]

    failed = await chain.wait_mail(AINO, f"[#{number}]", count=2)
    assert "Delivery failed" in str(failed["Subject"]), failed["Subject"]
    assert GHOST in text_of(failed) and "5.1.1" in text_of(failed)
    bounced = await chain.rows(
        "SELECT t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.kind = 'bounce'"
    )
    assert [b["number"] for b in bounced] == [number]
    [ack] = await chain.rows("SELECT o.state, o.last_error FROM outbox o JOIN tickets t ON t.id = o.ticket_id"
                             " WHERE o.kind = 'ack' AND t.number = ?", (number,))
    assert ack["state"] == "failed" and "5.1.1" in ack["last_error"]
    assert re.search(rf"to=<bounces\+[^>]+@example\.test>, {_relay(chain)}.*status=sent", chain.postfix.logs())


@pytest.mark.parametrize("key", ["default_transport", "inet_interfaces", "disable_dns_lookups"])
def test_postfix_fixture_keeps_its_safety_settings(key: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        Postfix("/usr/sbin/postfix", {}, main={key: "smtp"})


@on_chain
async def test_printed_lines_refuse_unknown_gateway_addresses_and_raise_no_warnings(chain: Chain) -> None:
    """An unknown address at the gateway domain is refused at RCPT: never accepted, then bounced."""
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(chain.postfix.send, customer_mail(CUSTOMER, "Hello?", "<carla.2@customer.test>"),
                                ["nobody@example.test"], CUSTOMER)
    [(code, text)] = refused.value.recipients.values()
    # In production relay_recipient_maps refuses it ("User unknown in relay recipient table");
    # here the instance's error relay_transport may answer first: both are a 550 at RCPT.
    assert code == 550 and b"5.1.1" in text, (code, text)
    # Nothing in the printed lines is a setting this Postfix does not know (a misspelt
    # mailgate_destination_concurrency_limit would be ignored silently but for this warning).
    postconf = Path(chain.postfix.binary).with_name("postconf")
    checked = await asyncio.to_thread(subprocess.run, [str(postconf), "-c", str(chain.postfix.config), "-n"],
                                      capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0 and "warning" not in checked.stderr, checked.stderr
    assert "mailgate_destination_concurrency_limit = " in checked.stdout, checked.stdout
