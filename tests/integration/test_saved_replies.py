"""Saved replies: [use:NAME] under the agent's own words, [list:replies], the replies CLI, check-config;
real SMTP into a real daemon, the relay an aiosmtpd sink."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mailgate import config as config_mod
from mailgate import tokens
from mailgate.config import Config
from mailgate.daemon import started

from .conftest import SECRET, SUPPORT, mail, send, settle, write_config
from .conftest import run_cli as cli
from .sink import AGENTS, Sink, relay_section, to, wait_mail
from .test_agent_mail import AINO, CUSTOMER, EXTRA, agent_sends, assert_nothing_internal, open_ticket, reply

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

REFUND_EN = """\
Dear {{ customer_name }},

your refund for {{ tag }} "{{ subject }}" is on its way: 3-5 working days.
{% if queue == "billing" %}Billing will send the credit note separately.{% endif %}

Best regards,
{{ agent_name }}
"""
REFUND_FI = """\
Hei {{ customer_name }},

hyvitys tukipyyntöön {{ tag }} on matkalla.

Terveisin {{ agent_name }}
"""
BILLING_REFUND = "Dear {{ customer_name }}, billing has refunded ticket {{ number }}.\n"
SHIPPING_EN = "Hello {{ customer_name }},\n\nyour parcel left our warehouse today.\n"


def saved(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / "replies" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def repliesconfig(tmp_path: Path, sink: Sink) -> Callable[..., Config]:
    def make() -> Config:
        saved(tmp_path, {"refund.en.j2": REFUND_EN, "refund.fi.j2": REFUND_FI, "shipping.en.j2": SHIPPING_EN,
                         "billing/refund.en.j2": BILLING_REFUND})
        extra = relay_section(sink.port, send_delay=0.2) + AGENTS + EXTRA
        return config_mod.load(write_config(tmp_path, extra))

    return make


async def test_use_sends_the_agents_words_then_the_saved_reply(sink: Sink, repliesconfig: Callable[..., Config]) -> None:
    async with started(repliesconfig()) as running:
        notice = await open_ticket(running, sink)
        raw, rcpt = reply(notice, "So sorry about the smoke!", subject=f"Re: [use:refund] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        answer = await wait_mail(sink, CUSTOMER, "Re: Printer on fire 1")
        text = answer.text()
        assert text.index("So sorry about the smoke!") < text.index("Dear Alice Customer,")
        assert 'your refund for [#1000] "Printer on fire 1" is on its way' in text
        assert "Best regards,\r\nAino Agent" in text and "Billing will send" not in text and "{{" not in text
        assert_nothing_internal(answer)
        done = await wait_mail(sink, AINO, "Done [#1000]")
        assert CUSTOMER in done.text()


async def test_use_alone_and_in_the_tickets_language(sink: Sink, repliesconfig: Callable[..., Config]) -> None:
    async with started(repliesconfig()) as running:
        raw = mail(sender="Matti Meikäläinen <matti@customer.test>", subject="Tulostin ei toimi",
                   message_id="<fi1@customer.test>",
                   body="Hei,\n\ntulostin ei toimi enää ollenkaan. Se pitää kovaa ääntä ja paperi juuttuu aina"
                        " kiinni. Voisitteko auttaa minua, kiitos?\n\nTerveisin Matti\n")
        await send(running.smtp_port, raw, [SUPPORT], sender="matti@customer.test")
        await settle(running)
        notice = await wait_mail(sink, AINO, "Tulostin ei toimi")
        raw, rcpt = reply(notice, "", subject=f"Re: [use:refund] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        answer = await wait_mail(sink, "matti@customer.test", "Vs: Tulostin ei toimi")  # Finnish "Re:"
        assert answer.text().lstrip().startswith("Hei Matti Meikäläinen,")
        assert "hyvitys tukipyyntöön [#1000] on matkalla" in answer.text()


async def test_unknown_or_broken_saved_reply_is_refused_and_nothing_reaches_the_customer(
    tmp_path: Path, sink: Sink, repliesconfig: Callable[..., Config]
) -> None:
    config = repliesconfig()
    saved(tmp_path, {"broken.en.j2": "Dear {{ customer_nam }},\n"})
    async with started(config) as running:
        notice = await open_ticket(running, sink)
        before = len(to(sink, CUSTOMER))
        for n, name in enumerate(("nosuch", "broken"), 1):
            raw, rcpt = reply(notice, "Here is what you asked for.", subject=f"Re: [use:{name}] {notice.header('Subject')}")
            await agent_sends(running, raw, rcpt)
            refused = await wait_mail(sink, AINO, "Not done [#1000]", count=n)
            assert f"[use:{name}]" in refused.text()
        assert "no saved reply 'nosuch' for queue 'support' (known: broken, refund, shipping" in \
            to(sink, AINO, "Not done")[0].text()
        assert "broken.en.j2:1: UndefinedError" in to(sink, AINO, "Not done")[1].text()
        # A note cannot carry one either: a saved reply is for the customer.
        raw, rcpt = reply(notice, "internal", subject=f"Re: [note] [use:refund] {notice.header('Subject')}")
        await agent_sends(running, raw, rcpt)
        await wait_mail(sink, AINO, "Not done [#1000]", count=3)
        await settle(running)
        assert len(to(sink, CUSTOMER)) == before


async def test_list_replies_by_mail_and_the_replies_cli(sink: Sink, repliesconfig: Callable[..., Config]) -> None:
    async with started(repliesconfig()) as running:
        rcpt = tokens.reply_address(SECRET.encode(), SUPPORT, tokens.Token("a", 0, "aino"))
        await agent_sends(running, mail(sender=AINO, to=rcpt, subject="[list:replies]", body="",
                                        message_id="<l1@agents.test>"), rcpt)
        listing = (await wait_mail(sink, AINO, "Done: replies")).text()
        assert "Saved replies (4), sent with [use:NAME]:" in listing
        assert "refund (en): Dear {{ customer_name }}," in listing
        assert "refund (fi): Hei {{ customer_name }}," in listing
        assert "refund (en, queue billing): Dear {{ customer_name }}, billing has refunded" in listing

        every = json.loads((await cli(running, "replies", "list", "--json")).stdout)
        assert [(r["name"], r["language"], r["queue"]) for r in every] == [
            ("refund", "en", None), ("refund", "fi", None), ("shipping", "en", None), ("refund", "en", "billing")]
        support = json.loads((await cli(running, "replies", "list", "--queue", "support", "--json")).stdout)
        assert {r["queue"] for r in support} == {None}
        shown = await cli(running, "replies", "show", "refund", "--lang", "fi")
        assert shown.exit_code == 0 and "Hei Zoë Łukasiewicz-Ådahl," in shown.stdout
        billing = json.loads((await cli(running, "replies", "show", "refund", "--queue", "billing", "--json")).stdout)
        assert billing["file"] == "billing/refund.en.j2" and "billing has refunded ticket 1042" in billing["text"]
        missing = await cli(running, "replies", "show", "refund", "--lang", "pl")
        assert missing.exit_code == 1


async def test_check_config_renders_every_saved_reply_in_a_sandbox(
    tmp_path: Path, repliesconfig: Callable[..., Config]
) -> None:
    config = repliesconfig()
    ok = await cli(config, "check-config", "--dev")
    assert ok.exit_code == 0, ok.output
    saved(tmp_path, {"escape.en.j2": "Dear {{ customer_name }},\n\n{{ ''.__class__.__mro__ }}\n",
                     "typo.fi.j2": "Hei {{ custmer_name }}\n", "nolang.j2": "Hello\n"})
    bad = await cli(config, "check-config", "--dev")
    assert bad.exit_code == 1
    assert f"{tmp_path / 'replies' / 'escape.en.j2'}:3: SecurityError" in bad.stderr
    assert f"{tmp_path / 'replies' / 'typo.fi.j2'}:1: UndefinedError: 'custmer_name' is undefined" in bad.stderr
    assert "nolang.j2: not <name>.<language>.j2" in bad.stderr
