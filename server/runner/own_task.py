"""Drive an async iterator in a task of its own, so that a consumer that goes away can stop
it for sure.

Starlette streams responses inside an anyio cancel scope; once a client disconnects, every
further await in that scope is cancelled at once, so an `aclose()` of the graph run would
never get to cancel the run's tools. A separate task is cancelled with a plain, synchronous
`task.cancel()`, and cleans up on its own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

T = TypeVar("T")

_END = object()
# The pumps each consumer task started, so a consumer that cancelled its run can wait
# until the run has really stopped (its last checkpoint write included) before undoing it.
_pumps: weakref.WeakKeyDictionary[asyncio.Task[object], set[asyncio.Task[None]]] = \
    weakref.WeakKeyDictionary()


async def settled() -> None:
    """Return once every run the current task drove through `in_own_task` has ended."""
    current = asyncio.current_task()
    pending = set(_pumps.get(current, ())) if current is not None else set()
    if pending:
        await asyncio.wait(pending)


async def in_own_task(source: AsyncIterator[T], *, buffer: int = 64) -> AsyncGenerator[T]:
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=buffer)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put(item)
        except Exception as exc:
            await queue.put(_Failure(exc))
        else:
            await queue.put(_END)

    task = asyncio.create_task(pump())
    consumer = asyncio.current_task()
    if consumer is not None:
        _pumps.setdefault(consumer, set()).add(task)
        task.add_done_callback(_pumps[consumer].discard)
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        task.cancel()


class _Failure:
    def __init__(self, error: Exception) -> None:
        self.error = error
