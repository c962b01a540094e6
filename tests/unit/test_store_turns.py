"""The store's lock hands itself on by priority: intake, then processing, then the rest; nobody starves."""

from __future__ import annotations

import asyncio

import pytest

from mailgate.store.turns import Priority, Turns

pytestmark = pytest.mark.asyncio


async def queue_up(turns: Turns, order: list[str], *waiters: tuple[str, Priority]) -> list[asyncio.Task[None]]:
    """Tasks that wait for the held lock in the given order, note their turn and release at once."""

    async def one(name: str, priority: Priority) -> None:
        await turns.acquire(priority)
        order.append(name)
        turns.release()

    tasks = []
    for name, priority in waiters:
        tasks.append(asyncio.create_task(one(name, priority)))
        await asyncio.sleep(0)  # queued in this order
    return tasks


async def test_an_intake_commit_goes_before_processing_and_delivery_that_waited_longer() -> None:
    turns, order = Turns({Priority.INTAKE: 10.0, Priority.PROCESSING: 10.0, Priority.BACKGROUND: 10.0}), []
    await turns.acquire(Priority.PROCESSING)  # a processing batch holds the store
    tasks = await queue_up(
        turns, order,
        ("sender", Priority.BACKGROUND), ("batch", Priority.PROCESSING),
        ("smtp-1", Priority.INTAKE), ("timers", Priority.BACKGROUND), ("smtp-2", Priority.INTAKE),
    )
    assert turns.waiting(above=Priority.PROCESSING) and not turns.waiting(above=Priority.INTAKE)
    turns.release()
    await asyncio.gather(*tasks)
    assert order == ["smtp-1", "smtp-2", "batch", "sender", "timers"]
    assert not turns.locked()


async def test_a_waiter_past_the_starvation_bound_goes_next_whatever_its_class() -> None:
    turns, order = Turns({Priority.INTAKE: 10.0, Priority.PROCESSING: 10.0, Priority.BACKGROUND: 0.05}), []
    await turns.acquire(Priority.INTAKE)
    tasks = await queue_up(turns, order, ("sender", Priority.BACKGROUND))
    await asyncio.sleep(0.06)  # the sender has waited past the bound under a stream of intake
    tasks += await queue_up(turns, order, ("smtp", Priority.INTAKE))
    turns.release()
    await asyncio.gather(*tasks)
    assert order == ["sender", "smtp"]


async def test_a_cancelled_waiter_neither_takes_the_lock_nor_loses_it() -> None:
    turns, order = Turns(), []
    await turns.acquire(Priority.BACKGROUND)
    gone = await queue_up(turns, order, ("timed-out", Priority.INTAKE))
    rest = await queue_up(turns, order, ("batch", Priority.PROCESSING))
    gone[0].cancel()  # an SMTP session's wait ran out (smtp.busy_timeout): 451, never the lock
    turns.release()
    await asyncio.gather(*rest)
    assert order == ["batch"] and gone[0].cancelled()
    # Handed the lock and cancelled before it ran: it passes the lock on instead of keeping it.
    await turns.acquire(Priority.BACKGROUND)
    handed = await queue_up(turns, order, ("handed", Priority.INTAKE))
    after = await queue_up(turns, order, ("after", Priority.PROCESSING))
    turns.release()
    handed[0].cancel()
    await asyncio.gather(*after)
    assert order == ["batch", "after"] and not turns.locked()
