"""Customer replies through real SMTP: what the ticket keeps as reply text, and what `parse --json` says was cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailgate.config import Config
from mailgate.daemon import Running

from .conftest import Cli, mail, send, settle

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

CUSTOMER = "Anna Kowalska <anna@customer.test>"


async def reply_texts(cli: Cli, running: Running) -> list[str]:
    shown = (await cli("tickets", "show", "1000", "--json", config=running)).json
    return [m["reply_text"] for m in shown["messages"]]


async def test_inline_answers_and_a_mobile_signoff_reach_the_ticket_as_written(daemon, cli: Cli) -> None:
    await send(daemon.smtp_port, mail(sender=CUSTOMER, subject="Zamówienie", message_id="<o1@customer.test>",
                                      body="Dzień dobry,\n\nzamówienie nie dotarło.\n\nAnna\n"))  # fmt: skip
    await settle(daemon)
    # An inline answer from the iPhone, in Polish: the questions stay, the sign-off goes.
    body = (
        "W dniu 3.05.2024 o 10:00, Help Desk <support@example.test> pisze:\n"
        "> Jaki jest numer zamówienia?\n\n"
        "A-12345\n\n"
        "> Jaki kolor?\n\n"
        "Niebieski.\n\n"
        "Wysłane z iPhone'a\n"
    )
    await send(daemon.smtp_port, mail(sender=CUSTOMER, subject="Re: Zamówienie", body=body,
                                      message_id="<o2@customer.test>", in_reply_to="<o1@customer.test>",
                                      references="<o1@customer.test>"))  # fmt: skip
    await settle(daemon)
    first, second = await reply_texts(cli, daemon)
    assert first == "Dzień dobry,\n\nzamówienie nie dotarło.\n\nAnna"
    assert second == "> Jaki jest numer zamówienia?\n\nA-12345\n\n> Jaki kolor?\n\nNiebieski."


async def test_top_posted_reply_loses_its_outlook_history(daemon, cli: Cli) -> None:
    await send(daemon.smtp_port, mail(sender=CUSTOMER, subject="Lieferung", message_id="<d1@customer.test>"))
    await settle(daemon)
    body = (
        "Danke, die Lieferung ist angekommen.\n\n"
        "Von meinem iPhone gesendet\n\n"
        "________________________________\n"
        "Von: Help Desk <support@example.test>\n"
        "Gesendet: Freitag, 3. Mai 2024 10:00\n"
        "An: Anna <anna@customer.test>\n"
        "Betreff: Lieferung\n\n"
        "Ihre Lieferung ist unterwegs.\n"
    )
    await send(daemon.smtp_port, mail(sender=CUSTOMER, subject="AW: Lieferung", body=body,
                                      message_id="<d2@customer.test>", in_reply_to="<d1@customer.test>"))  # fmt: skip
    await settle(daemon)
    assert (await reply_texts(cli, daemon))[-1] == "Danke, die Lieferung ist angekommen."


async def test_parse_json_names_the_cut_signature_and_the_quote_style(config: Config, cli: Cli, tmp_path: Path) -> None:
    body = (
        "Yes, Tuesday works.\n\n"
        "Sent from Outlook Mobile<https://aka.ms/blhgte>\n\n"
        "On Fri, May 3, 2024 at 10:00 AM Help Desk <support@example.test> wrote:\n"
        "> Would Tuesday suit you?\n"
    )
    eml = tmp_path / "reply.eml"
    eml.write_bytes(mail(sender=CUSTOMER, subject="Re: Visit", body=body))
    parsed = (await cli("parse", "--json", str(eml), config=config)).json
    assert parsed["reply_text"] == "Yes, Tuesday works."
    assert parsed["signature"] == "Sent from Outlook Mobile<https://aka.ms/blhgte>"
    assert parsed["quote_style"] == "top"
    assert {"text", "html", "reply_text", "attachments", "kind", "defects"} <= set(parsed)

    eml.write_bytes(mail(sender=CUSTOMER, subject="Hello", body="Hello,\n\nthe printer is on fire.\n"))
    parsed = (await cli("parse", "--json", str(eml), config=config)).json
    assert (parsed["signature"], parsed["quote_style"]) == (None, "none")
