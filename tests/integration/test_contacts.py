"""Contacts through a real daemon and the CLI: fields, phones, linking and detaching addresses, notes by their authors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailgate.daemon import Running
from mailgate.ops import contacts

from .conftest import AGENTS, Cli, MakeDaemon, mail, send, settle

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]


async def ok(cli: Cli, *args: str) -> Any:
    result = await cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return result.json


async def refused(cli: Cli, *args: str) -> str:
    result = await cli(*args, "--json")
    assert result.exit_code == 1, result.output
    answer = result.json
    assert answer["ok"] is False
    return str(answer["error"])


async def snapshot(running: Running) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a contact operation may touch, to prove a refusal left nothing behind."""
    out = {}
    async with running.store.read() as tx:
        for table in ("contacts", "contact_addresses", "contact_phones", "contact_notes", "ticket_parties", "events"):
            out[table] = [tuple(r) for r in await tx.all(f"SELECT * FROM {table} ORDER BY 1, 2")]
        out["tickets"] = [tuple(r) for r in await tx.all("SELECT id, number, contact_id FROM tickets ORDER BY id")]
    return out


async def customer_mail(running: Running, sender: str, message_id: str, subject: str = "Help") -> None:
    await send(running.smtp_port, mail(sender=sender, message_id=message_id, subject=subject),
               sender=sender.split("<")[-1].rstrip(">"))
    await settle(running)


async def test_unknown_sender_becomes_a_contact_with_fields_and_phones(make_daemon: MakeDaemon, cli: Cli) -> None:
    running = await make_daemon(AGENTS, relay=False)
    await customer_mail(running, "Alice Customer <alice@customer.test>", "<k1@customer.test>")
    [row] = await ok(cli, "contacts", "list")
    assert row["name"] == "Alice Customer" and row["addresses"] == ["alice@customer.test"] and row["tickets"] == 1
    data = await ok(cli, "contacts", "edit", "alice@customer.test", "--organization", "Acme Oy",
                    "--department", "Finance", "--title", "Controller", "--add-phone", "+358 40 123 4567",
                    "--phone-label", "mobile")
    contact = data["contact"]
    assert (contact["organization"], contact["department"], contact["title"]) == ("Acme Oy", "Finance", "Controller")
    assert contact["phones"] == [{"phone": "+358 40 123 4567", "label": "mobile"}]
    assert [t["number"] for t in contact["tickets"]] == [1000]
    assert [r["id"] for r in await ok(cli, "contacts", "list", "--search", "acme")] == [row["id"]]
    assert await ok(cli, "contacts", "list", "--search", "nobody") == []
    # One bad value refuses the whole edit: the new title does not stay either.
    before = await snapshot(running)
    error = await refused(cli, "contacts", "edit", str(row["id"]), "--title", "CFO", "--add-phone", "call me")
    assert "not a phone number" in error
    error = await refused(cli, "contacts", "edit", str(row["id"]), "--name", "Alice\r\nBcc: x@evil.test")
    assert "no line breaks" in error
    assert await snapshot(running) == before
    assert "no contact 'nobody@x.test'" in await refused(cli, "contacts", "show", "nobody@x.test")


async def test_add_address_and_link_refuse_another_contacts_address(make_daemon: MakeDaemon, cli: Cli) -> None:
    running = await make_daemon(AGENTS, relay=False)
    await customer_mail(running, "Alice <alice@customer.test>", "<l1@customer.test>")
    await customer_mail(running, "Alice at home <alice@home.test>", "<l2@home.test>", subject="Second")
    alice = (await ok(cli, "contacts", "show", "alice@customer.test"))["id"]
    home = (await ok(cli, "contacts", "show", "alice@home.test"))["id"]
    assert alice != home
    before = await snapshot(running)
    error = await refused(cli, "contacts", "add-address", str(alice), "alice@home.test")
    assert f"belongs to contact {home}" in error and "--move" in error
    error = await refused(cli, "contacts", "link", "alice@home.test", str(alice))
    assert f"belongs to contact {home}; add --move" in error
    assert "not a mail address" in await refused(cli, "contacts", "link", "not-an-address", str(alice))
    assert await snapshot(running) == before
    # A fresh address is simply added; linking an address twice changes nothing.
    await ok(cli, "contacts", "add-address", str(alice), "Alice@Work.test")
    result = await ok(cli, "contacts", "link", "alice@work.test", str(alice))
    assert result["moved_tickets"] == [] and result["from"] == alice
    # With --move the address and its tickets move; the emptied automatic contact goes.
    result = await ok(cli, "contacts", "link", "alice@home.test", "alice@customer.test", "--move")
    assert result["moved_tickets"] == [1001] and result["removed_contact"] == home
    data = await ok(cli, "contacts", "show", str(alice))
    assert data["addresses"] == ["alice@customer.test", "alice@home.test", "alice@work.test"]
    assert sorted(t["number"] for t in data["tickets"]) == [1000, 1001]
    async with running.store.read() as tx:
        event = await tx.one("SELECT actor, data FROM events WHERE kind = 'ticket.contact_changed'")
    assert event["actor"] == "cli" and json.loads(event["data"]) == {"from": home, "to": alice,
                                                                     "address": "alice@home.test"}
    # New mail from the linked address belongs to the same contact.
    await customer_mail(running, "Alice <alice@home.test>", "<l3@home.test>", subject="Third")
    data = await ok(cli, "contacts", "show", str(alice))
    assert sorted(t["number"] for t in data["tickets"]) == [1000, 1001, 1002]


async def test_detach_a_customer_from_a_ticket(make_daemon: MakeDaemon, cli: Cli) -> None:
    running = await make_daemon(AGENTS, relay=False)
    await customer_mail(running, "Alice <alice@customer.test>", "<d1@customer.test>", subject="Broken")
    before = await snapshot(running)
    assert "not a customer on ticket #1000" in await refused(cli, "contacts", "detach", "1000", "bob@x.test")
    assert "no ticket #999" in await refused(cli, "contacts", "detach", "999", "alice@customer.test")
    assert await snapshot(running) == before
    result = await ok(cli, "contacts", "detach", "1000", "alice@customer.test")
    assert result["was"] == "requester" and result["contact"] is None
    async with running.store.read() as tx:
        assert await tx.value("SELECT contact_id FROM tickets WHERE number = 1000") is None
        assert await tx.value("SELECT COUNT(*) FROM ticket_parties") == 0
        assert await tx.value("SELECT COUNT(*) FROM events WHERE kind = 'ticket.customer_detached'") == 1
    # Detached means detached: her mail with the subject tag no longer joins the ticket.
    await customer_mail(running, "Alice <alice@customer.test>", "<d2@customer.test>", subject="Re: [#1000] Broken")
    async with running.store.read() as tx:
        assert await tx.value("SELECT t.number FROM messages m JOIN tickets t ON t.id = m.ticket_id"
                              " WHERE m.message_id = 'd2@customer.test'") == 1001


async def test_notes_newest_first_and_only_their_author_edits(make_daemon: MakeDaemon, cli: Cli) -> None:
    running = await make_daemon(AGENTS, relay=False)
    await customer_mail(running, "Alice <alice@customer.test>", "<n1@customer.test>")
    first = (await ok(cli, "contacts", "note", "add", "alice@customer.test", "Prefers phone.", "--as", "aino"))
    second = (await ok(cli, "contacts", "note", "add", "alice@customer.test", "VIP since 2024.",
                       "--as", "bartek"))
    notes = (await ok(cli, "contacts", "show", "alice@customer.test"))["notes"]
    assert [(n["id"], n["author"]) for n in notes] == [(second["note"], "bartek"), (first["note"], "aino")]
    before = await snapshot(running)
    error = await refused(cli, "contacts", "note", "edit", str(first["note"]), "Hacked", "--as", "bartek")
    assert error == f"note {first['note']} was written by aino; only its author may edit it"
    error = await refused(cli, "contacts", "note", "delete", str(first["note"]), "--as", "bartek")
    assert error == f"note {first['note']} was written by aino; only its author may delete it"
    assert "no agent 'mallory'" in await refused(cli, "contacts", "note", "add", "alice@customer.test", "x",
                                                 "--as", "mallory")
    assert "needs some text" in await refused(cli, "contacts", "note", "add", "alice@customer.test", "  ",
                                              "--as", "aino")
    assert "no note 4242" in await refused(cli, "contacts", "note", "edit", "4242", "x", "--as", "aino")
    assert await snapshot(running) == before
    await ok(cli, "contacts", "note", "edit", str(first["note"]), "Prefers phone, mornings.", "--as", "aino")
    await ok(cli, "contacts", "note", "delete", str(second["note"]), "--as", "bartek")
    notes = (await ok(cli, "contacts", "show", "alice@customer.test"))["notes"]
    assert [(n["author"], n["text"]) for n in notes] == [("aino", "Prefers phone, mornings.")]
    result = await cli("contacts", "show", "alice@customer.test")
    assert "note" in result.output and "| Prefers phone, mornings." in result.output


async def test_domain_refusal_inside_a_larger_transaction_rolls_back(make_daemon: MakeDaemon, cli: Cli) -> None:
    """The functions check before they write; a caller's transaction that fails still leaves nothing."""
    running = await make_daemon(AGENTS, relay=False)
    await customer_mail(running, "Alice <alice@customer.test>", "<t1@customer.test>")
    before = await snapshot(running)
    with pytest.raises(contacts.ContactError):
        async with running.store.txn() as tx:
            contact_id = await contacts.resolve(tx, "alice@customer.test")
            await contacts.add_note(tx, running.config, contact_id, "aino", "kept?")
            await contacts.add_phone(tx, contact_id, "12")  # refused: too short
    assert await snapshot(running) == before
