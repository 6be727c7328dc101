"""The turn slots (server/admission.py): taken at once while free, waited for in order
once taken, refused with Overloaded when none frees up in time."""

from __future__ import annotations

import asyncio

import pytest

from server.admission import Overloaded, TurnSlots


async def test_free_slots_are_taken_and_given_back() -> None:
    slots = TurnSlots(limit=3, wait_seconds=0.1)
    first, second = await slots.acquire(), await slots.acquire(2)
    assert slots.in_use == 3
    await second.release()
    await second.release()  # once, however often it is called
    assert slots.in_use == 1
    await first.release()
    assert slots.in_use == 0


async def test_a_full_server_refuses_after_the_wait() -> None:
    slots = TurnSlots(limit=1, wait_seconds=0.05)
    held = await slots.acquire()
    with pytest.raises(Overloaded) as refused:
        await slots.acquire()
    assert (refused.value.limit, refused.value.retry_after) == (1, 1)
    with pytest.raises(Overloaded):
        await slots.acquire(2)  # more than there are: refused at once
    await held.release()
    assert slots.in_use == 0  # the refused requests took nothing
    await (await slots.acquire()).release()


async def test_a_released_slot_goes_to_the_request_waiting_for_it() -> None:
    slots = TurnSlots(limit=1, wait_seconds=5)
    held = await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    # A newcomer while someone waits queues behind them instead of taking the slot first.
    newcomer = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0.01)
    await held.release()
    second = await asyncio.wait_for(waiting, 1)
    assert slots.in_use == 1 and not newcomer.done()
    await second.release()
    third = await asyncio.wait_for(newcomer, 1)
    assert slots.in_use == 1
    await third.release()
    assert slots.in_use == 0


async def test_a_batch_waits_until_enough_slots_are_free() -> None:
    slots = TurnSlots(limit=2, wait_seconds=5)
    one = await slots.acquire()
    batch = asyncio.create_task(slots.acquire(2))
    await asyncio.sleep(0.01)
    assert not batch.done() and slots.in_use == 1
    await one.release()
    both = await asyncio.wait_for(batch, 1)
    assert slots.in_use == 2
    await both.release()
    assert slots.in_use == 0
