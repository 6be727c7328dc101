"""A per-process limit on concurrent turns. A turn takes a slot before anything of it
starts and keeps it until its response ends; a request that finds none free waits a
bounded time, then is refused with 503 and Retry-After, so a burst is answered clearly
instead of by failures deep inside (exhausted connection pools, timeouts). The stores'
connection pools are sized from the same limit (server/platform.py)."""

from __future__ import annotations

import asyncio
import math


class Overloaded(Exception):
    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"all {limit} turn slots are taken")
        self.limit = limit
        self.retry_after = retry_after


class TurnSlots:
    def __init__(self, limit: int, wait_seconds: float) -> None:
        if limit < 1:
            raise ValueError("the turn limit must be at least 1")
        self.limit = limit
        self.wait_seconds = wait_seconds
        self._free = limit
        self._waiting = 0  # requests waiting for slots, in the condition's queue
        self._changed: asyncio.Condition | None = None  # made on the serving loop

    @property
    def in_use(self) -> int:
        return self.limit - self._free

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def acquire(self, count: int = 1) -> TurnSlot:
        """`count` slots (a LangServe batch takes one per input), waiting at most
        `wait_seconds` for them; raises Overloaded when they do not free up."""
        if count > self.limit:
            raise Overloaded(self.limit, retry_after=1)
        if self._free >= count and not self._waiting:
            # Free slots and nobody queued before this request: taken at once. The timed
            # wait below costs a task of its own per call (asyncio.wait_for), on every turn.
            self._free -= count
            return TurnSlot(self, count)
        changed = self._condition()
        self._waiting += 1
        try:
            async with changed:
                try:
                    await asyncio.wait_for(changed.wait_for(lambda: self._free >= count),
                                           self.wait_seconds)
                except TimeoutError:
                    raise Overloaded(self.limit, self._retry_after()) from None
                self._free -= count
        finally:
            self._waiting -= 1
        return TurnSlot(self, count)

    def _retry_after(self) -> int:
        return max(1, math.ceil(self.wait_seconds / 2))

    async def _release(self, count: int) -> None:
        self._free += count
        if self._waiting:
            changed = self._condition()
            async with changed:
                changed.notify_all()


class TurnSlot:
    def __init__(self, slots: TurnSlots, count: int) -> None:
        self._slots = slots
        self._count = count

    async def release(self) -> None:
        count, self._count = self._count, 0  # once, however often it is called
        if count:
            await self._slots._release(count)
