"""The store modules behind ticket data care: typed values out, the store's clock in every timestamp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from mailgate import config as config_mod
from mailgate.clock import ManualClock, iso
from mailgate.ops import tickets
from mailgate.store import Store, contacts, parties, retention, sla, store_for, watchers

from .conftest import write_config

# The store and pipeline behave the same on both engines (SQLite and PostgreSQL).
pytestmark = [pytest.mark.asyncio, pytest.mark.engines]

T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def opened(tmp_path: Path) -> AsyncIterator[tuple[Store, ManualClock, int]]:
    """A store on a ManualClock with one ticket in it."""
    clock = ManualClock(T0)
    async with store_for(config_mod.load(write_config(tmp_path)), clock) as store:
        async with store.txn() as tx:
            ref = await tickets.open_ticket(tx, subject="Printer", contact_id=None, first_number=1000, actor="test")
        yield store, clock, ref.id


async def test_read_state_follows_the_agent_and_the_customer(opened: tuple[Store, ManualClock, int]) -> None:
    store, clock, ticket = opened
    async with store.txn() as tx:
        assert await watchers.watch(tx, ticket, "aino") is None
        assert await watchers.is_following(tx, ticket, "aino") is None
        await watchers.mark(tx, ticket, "aino", read=False)
        never = await watchers.watch(tx, ticket, "aino")
        assert never is not None and never.unread and never.read_at is None  # never read counts as unread
        clock.advance(timedelta(minutes=5))
        await watchers.acted(tx, ticket, "pekka")
        [pekka] = [w for w in await watchers.watches(tx, ticket) if w.agent == "pekka"]
        assert pekka.following and not pekka.unread and pekka.read_at == iso(clock.now())
        await watchers.customer_wrote(tx, ticket)
        again = await watchers.watch(tx, ticket, "pekka")
        assert again is not None and again.unread and again.read_at == iso(clock.now())  # when they last read it
        await watchers.set_following(tx, ticket, "pekka", False)
        # Only Pekka said [unfollow]; Aino's marking it unread said nothing about following.
        assert await watchers.followers(tx, ticket) == ([], {"pekka"})


async def test_a_pending_party_is_raised_but_a_requester_is_never_lowered(opened: tuple[Store, ManualClock, int]) -> None:
    store, _, ticket = opened
    async with store.txn() as tx:
        await parties.put(tx, ticket, "alice@customer.test", "requester")
        await parties.put(tx, ticket, "alice@customer.test", "pending")
        await parties.put(tx, ticket, "bob@customer.test", "pending")
        await parties.put(tx, ticket, "bob@customer.test", "cc")
        assert await parties.roles(tx, ticket) == {"alice@customer.test": "requester", "bob@customer.test": "cc"}
        await parties.remove(tx, ticket, "bob@customer.test")
        assert await parties.role_of(tx, ticket, "bob@customer.test") is None


async def test_contact_rows_come_back_as_values_with_the_stores_time(opened: tuple[Store, ManualClock, int]) -> None:
    store, clock, _ = opened
    async with store.txn() as tx:
        contact_id = await contacts.find_or_create(tx, "Alice@Customer.test", "Alice")
        assert await contacts.find_or_create(tx, "alice@customer.test", "Someone Else") == contact_id
        clock.advance(timedelta(hours=1))
        note = await contacts.add_note(tx, contact_id, "aino", "prefers mail")
        await contacts.set_fields(tx, contact_id, {"organization": "Example Oy"})
        found = await contacts.get(tx, contact_id)
        assert found is not None and (found.name, found.organization) == ("Alice", "Example Oy")
        [summary] = await contacts.search(tx, "example", 10)
        assert summary.addresses == ("alice@customer.test",) and summary.tickets == 0
        [stored] = await contacts.notes(tx, contact_id)
        assert stored.id == note and stored.created_at == iso(T0 + timedelta(hours=1))
        assert await contacts.owner(tx, "alice@customer.test") == contact_id


async def test_only_the_four_flag_columns_can_be_set(opened: tuple[Store, ManualClock, int]) -> None:
    store, _, ticket = opened
    async with store.txn() as tx:
        with pytest.raises(ValueError, match="no SLA flag"):
            await sla.flag(tx, ticket, "resolution = NULL, queue", "warning", T0)
        with pytest.raises(KeyError):
            await retention.count_aged(tx, "tickets", iso(T0))
